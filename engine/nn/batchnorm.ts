// BatchNorm2d: per-channel affine normalisation; batch statistics (and a running-stat update)
// in training, running statistics in eval. Buffers in PyTorch order: running_mean,
// running_var, num_batches_tracked.
import { Tensor, full } from '../tensor.ts';
import * as bn from '../ops/batchnorm.ts';
import { Module, type IntBuffer } from './module.ts';

export interface BatchNorm2dOptions {
  eps?: number;
  /** running-stat factor (default 0.1); null: cumulative average 1 / num_batches_tracked */
  momentum?: number | null;
  /** learnable weight and bias (default true) */
  affine?: boolean;
  /** fused activation applied after the affine transform */
  activation?: 'relu' | 'relu6';
}

export class BatchNorm2d extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  private readonly tracked: IntBuffer;
  readonly eps: number;
  momentum: number | null;
  readonly activation?: 'relu' | 'relu6';

  constructor(
    readonly numFeatures: number,
    opts: BatchNorm2dOptions = {},
  ) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures <= 0) throw new RangeError(`BatchNorm2d: numFeatures must be a positive integer, got ${numFeatures}`);
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum === undefined ? 0.1 : opts.momentum;
    this.activation = opts.activation;
    const affine = opts.affine ?? true;
    this.weight = affine ? this.param('weight', full([numFeatures], 1)) : null;
    this.bias = affine ? this.param('bias', full([numFeatures], 0)) : null;
    this.runningMean = this.buffer('running_mean', full([numFeatures], 0));
    this.runningVar = this.buffer('running_var', full([numFeatures], 1));
    this.tracked = this.buffer('num_batches_tracked', 0);
  }

  get numBatchesTracked(): number {
    return this.tracked.value;
  }
  set numBatchesTracked(n: number) {
    this.tracked.value = n;
  }

  override forward(x: Tensor): Tensor {
    const c = this.nextCall();
    return bn.batchNorm2d(x, this.weight, this.bias, this.runningMean, this.runningVar, c);
  }

  /**
   * The settings of one forward pass, counting it (num_batches_tracked += 1 in training): for
   * fused ops that run this module's maths themselves (models/densenet.ts's dense blocks).
   */
  nextCall(): bn.BnCall {
    let momentum = this.momentum ?? 0;
    if (this.training) {
      this.tracked.value++;
      if (this.momentum === null) momentum = 1 / this.tracked.value;
    }
    return { training: this.training, momentum, eps: this.eps, activation: this.activation ?? null, runningMean: this.runningMean, runningVar: this.runningVar };
  }
}
