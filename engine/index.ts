// roskd's public API: `import * as rk from './engine/index.ts'`.
import { initGpu, type Gpu, type InitOptions } from './device.ts';
import { installAutogradKernels } from './autograd.ts';
import { accumulate } from './ops/inplace.ts';
import { tidy, keep, ones } from './tensor.ts';

installAutogradKernels({ accumulate, ones: (like) => ones(like.shape), tidy, keep: (t) => void keep(t) });

/**
 * Opens the WebGPU device (once). Every program calls this before its first op. Under Node with
 * no options it opens Dawn's adapter (ROSKD_* variables apply); in a browser, `navigator.gpu`.
 */
export function init(options: InitOptions = {}): Promise<Gpu> {
  return initGpu(options);
}

export { getGpu, withErrorScope, gpuWait, GpuError, SETUP_HINT, type Gpu, type InitOptions } from './device.ts';
export { UniformError } from './uniforms.ts';
export { memoryStats, resetPeak, trimPool, type MemoryStats } from './pool.ts';
export { sync, flush, setProfiling, kernelProfile } from './program.ts';
export { Tensor, ShapeError, tidy, tidyAsync, keep, tensor, full, zeros, ones, arange, rand, randn, Rng, manualSeed, setPoison, writeTensor, numel, type DType, type Shape } from './tensor.ts';
export { noGrad, noGradAsync, isGradEnabled } from './autograd.ts';
export { defineOp, registry, type OpSpec, type Op } from './op.ts';
export * from './ops/unary.ts';
export * from './ops/binary.ts';
export * from './ops/reduce.ts';
export * from './ops/sum-to.ts';
export * from './ops/shape.ts';
export { clone, copyInto, axpyInPlace } from './ops/inplace.ts';
export * from './ops/matmul.ts';
export * from './ops/slice.ts';
export * from './ops/softmax.ts';
export * from './ops/gather.ts';
export * from './ops/where.ts';
export * from './ops/loss.ts';
export * from './ops/conv.ts';
export * from './ops/batchnorm.ts';
export { denseBlock, type DenseLayerArgs } from './ops/dense-block.ts';
export * from './ops/pool.ts';
export * from './ops/kd.ts';
export * as nn from './nn/index.ts';
export * as optim from './optim/index.ts';
export * as io from './io/safetensors.ts';
