// Conv2d: weight [out, in / groups, kh, kw], PyTorch default init (kaiming_uniform a = sqrt 5).
import { Tensor, Rng } from '../tensor.ts';
import * as cv from '../ops/conv.ts';
import { Module } from './module.ts';
import { defaultWeight, defaultBias } from './init.ts';

export type Pair = number | readonly [number, number];
const pair = (what: string, v: Pair): [number, number] => {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (!p.every((d) => Number.isInteger(d) && d >= 0)) throw new RangeError(`Conv2d: ${what} must be non-negative integers, got ${String(v)}`);
  return p;
};

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
  rng?: Rng;
}

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    opts: Conv2dOptions = {},
  ) {
    super();
    this.kernelSize = pair('kernelSize', kernelSize);
    this.stride = pair('stride', opts.stride ?? 1);
    this.padding = pair('padding', opts.padding ?? 0);
    this.dilation = pair('dilation', opts.dilation ?? 1);
    this.groups = opts.groups ?? 1;
    const g = this.groups;
    if (!Number.isInteger(g) || g < 1 || inChannels % g !== 0 || outChannels % g !== 0)
      throw new RangeError(`Conv2d: groups ${g} must divide inChannels ${inChannels} and outChannels ${outChannels}`);
    if ([...this.kernelSize, ...this.stride, ...this.dilation].some((d) => d < 1)) throw new RangeError(`Conv2d: kernel size, stride and dilation must be >= 1`);
    const [kh, kw] = this.kernelSize;
    this.weight = this.param('weight', defaultWeight(new Tensor([outChannels, inChannels / g, kh, kw], 'f32'), opts));
    this.bias = opts.bias ?? true ? this.param('bias', defaultBias(new Tensor([outChannels], 'f32'), (inChannels / g) * kh * kw, opts)) : null;
  }

  override forward(x: Tensor): Tensor {
    return cv.conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
  }
}
