// Linear: y = x W^T + b with W [out, in] (PyTorch layout and default init).
import { Tensor, Rng } from '../tensor.ts';
import * as mm from '../ops/matmul.ts';
import { Module } from './module.ts';
import { defaultWeight, defaultBias } from './init.ts';

export interface LinearOptions {
  bias?: boolean;
  /** private generator for the init (default: the global one, see rk.manualSeed) */
  rng?: Rng;
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: LinearOptions = {},
  ) {
    super();
    for (const [k, v] of [['inFeatures', inFeatures], ['outFeatures', outFeatures]] as const)
      if (!Number.isInteger(v) || v <= 0) throw new RangeError(`Linear: ${k} must be a positive integer, got ${v}`);
    this.weight = this.param('weight', defaultWeight(new Tensor([outFeatures, inFeatures], 'f32'), opts));
    this.bias = opts.bias ?? true ? this.param('bias', defaultBias(new Tensor([outFeatures], 'f32'), inFeatures, opts)) : null;
  }

  override forward(x: Tensor): Tensor {
    return mm.linear(x, this.weight, this.bias ?? undefined);
  }
}
