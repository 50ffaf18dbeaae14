// The optimizer of a training run: SGD (Nesterov) or AdamW with 1-D parameters optionally in their
// own weight-decay group, and the learning-rate schedule (linear warm-up, then cosine or constant).
import * as rk from '../engine/index.ts';

export interface OptimConfig {
  optimizer: 'sgd' | 'adamw';
  lr: number;
  momentum: number;
  weightDecay: number;
  /** weight decay of 1-D parameters (norm scales/shifts, biases); negative or absent: weightDecay */
  normBiasDecay?: number;
  warmupEpochs: number;
  schedule: 'cosine' | 'constant';
}

/** Learning rate at a fractional epoch position t in [0, epochs). */
export function lrAt(c: OptimConfig, t: number, epochs: number): number {
  if (c.warmupEpochs > 0 && t < c.warmupEpochs) return (c.lr * (t + 1e-3)) / c.warmupEpochs;
  if (c.schedule === 'constant') return c.lr;
  const span = Math.max(1e-9, epochs - c.warmupEpochs);
  const p = Math.min(1, Math.max(0, (t - c.warmupEpochs) / span));
  return 0.5 * c.lr * (1 + Math.cos(Math.PI * p));
}

export function makeOptimizer(all: rk.Tensor[], c: OptimConfig): rk.optim.Optimizer {
  // 1-D tensors are batch-norm scales/shifts and biases: their own group when they decay differently
  const own = c.normBiasDecay !== undefined && c.normBiasDecay >= 0 && c.normBiasDecay !== c.weightDecay;
  const params: rk.optim.Params = own
    ? [{ params: all.filter((p) => p.shape.length > 1) }, { params: all.filter((p) => p.shape.length <= 1), weightDecay: c.normBiasDecay }]
    : all;
  if (c.optimizer === 'adamw') return new rk.optim.AdamW(params, { lr: c.lr, weightDecay: c.weightDecay });
  return new rk.optim.SGD(params, { lr: c.lr, momentum: c.momentum, nesterov: c.momentum > 0, weightDecay: c.weightDecay });
}
