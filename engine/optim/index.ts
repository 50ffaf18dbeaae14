// rk.optim: optimizers (in-place WGSL updates), LR schedules, gradient clipping.
export { Optimizer, optimTuning, type OptimizerStateDict, type Hyper, type ParamGroup, type Params } from './optimizer.ts';
export { SGD, type SGDOptions } from './sgd.ts';
export { AdamW, type AdamWOptions } from './adamw.ts';
export { stepLR, multiStepLR, cosineWithWarmup, type Schedule } from './schedule.ts';
export { clipGradNorm, clipGradNormTensor } from './clip.ts';
