// Pooling modules over NCHW inputs.
import type { Tensor } from '../tensor.ts';
import * as pl from '../ops/pool.ts';
import { Module } from './module.ts';
import type { Pair } from './conv.ts';

export interface PoolOptions {
  /** default: the kernel size */
  stride?: Pair;
  padding?: Pair;
}

export class MaxPool2d extends Module {
  readonly stride: Pair;
  readonly padding: Pair;
  constructor(
    readonly kernel: Pair,
    opts: PoolOptions = {},
  ) {
    super();
    this.stride = opts.stride ?? kernel;
    this.padding = opts.padding ?? 0;
  }
  override forward(x: Tensor): Tensor {
    return pl.maxPool2d(x, { kernel: this.kernel, stride: this.stride, padding: this.padding });
  }
}

export class AvgPool2d extends Module {
  readonly stride: Pair;
  readonly padding: Pair;
  readonly countIncludePad: boolean;
  constructor(
    readonly kernel: Pair,
    opts: PoolOptions & { countIncludePad?: boolean } = {},
  ) {
    super();
    this.stride = opts.stride ?? kernel;
    this.padding = opts.padding ?? 0;
    this.countIncludePad = opts.countIncludePad ?? true;
  }
  override forward(x: Tensor): Tensor {
    return pl.avgPool2d(x, { kernel: this.kernel, stride: this.stride, padding: this.padding, countIncludePad: this.countIncludePad });
  }
}

export class AdaptiveAvgPool2d extends Module {
  readonly outputSize: [number, number];
  constructor(outputSize: Pair = 1) {
    super();
    this.outputSize = typeof outputSize === 'number' ? [outputSize, outputSize] : [outputSize[0], outputSize[1]];
  }
  override forward(x: Tensor): Tensor {
    return pl.adaptiveAvgPool2d(x, this.outputSize);
  }
}
