// rk.nn: PyTorch-like modules and initialisers.
export { Module, IntBuffer, type AnyModule, type LoadResult, type StateValue } from './module.ts';
export { Linear, type LinearOptions } from './linear.ts';
export { Sequential } from './containers.ts';
export { ReLU, ReLU6, Sigmoid, Tanh, Identity, Flatten } from './activation.ts';
export { Dropout, dropout, dropoutSeed, type DropoutOptions } from './dropout.ts';
export { Conv2d, type Conv2dOptions, type Pair } from './conv.ts';
export { BatchNorm2d, type BatchNorm2dOptions } from './batchnorm.ts';
export { MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, type PoolOptions } from './pool.ts';
export { withFrozenModel } from './frozen.ts';
export * as init from './init.ts';
