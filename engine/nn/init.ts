// In-place parameter initialisers (torch.nn.init), seeded: pass `rng` for a private stream,
// otherwise the global generator set by rk.manualSeed() is used.
import { Tensor, ShapeError, Rng, rand, randn, fillTensor } from '../tensor.ts';
import { copyInto } from '../ops/inplace.ts';

export type Nonlinearity = 'linear' | 'conv' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';
export type FanMode = 'fan_in' | 'fan_out';
export interface RngOption {
  rng?: Rng;
}

/** torch.nn.init.calculate_gain. */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear':
    case 'conv':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu': {
      const a = param ?? 0.01;
      return Math.sqrt(2 / (1 + a * a));
    }
    case 'selu':
      return 3 / 4;
  }
}

/** fan_in = shape[1] * receptive field, fan_out = shape[0] * receptive field (weights of rank >= 2). */
export function fans(t: Tensor): { fanIn: number; fanOut: number } {
  if (t.shape.length < 2) throw new ShapeError(`init: fan in/out need a weight of rank >= 2, got ${t.describe()}`);
  const rf = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: t.shape[1] * rf, fanOut: t.shape[0] * rf };
}

function assign(t: Tensor, src: Tensor): Tensor {
  copyInto(t, src);
  src.dispose();
  return t;
}

export function uniform(t: Tensor, low = 0, high = 1, o: RngOption = {}): Tensor {
  return assign(t, rand(t.shape, { low, high, rng: o.rng }));
}

export function normal(t: Tensor, mean = 0, std = 1, o: RngOption = {}): Tensor {
  return assign(t, randn(t.shape, { mean, std, rng: o.rng }));
}

export function constant(t: Tensor, value: number): Tensor {
  fillTensor(t, t.dtype === 'i32' ? value | 0 : value);
  return t;
}
export const zeros = (t: Tensor): Tensor => constant(t, 0);
export const ones = (t: Tensor): Tensor => constant(t, 1);

export interface KaimingOptions extends RngOption {
  /** negative slope of leaky_relu (default 0) */
  a?: number;
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
}

function kaimingStd(t: Tensor, o: KaimingOptions): number {
  const { fanIn, fanOut } = fans(t);
  const fan = (o.mode ?? 'fan_in') === 'fan_in' ? fanIn : fanOut;
  return calculateGain(o.nonlinearity ?? 'leaky_relu', o.a ?? 0) / Math.sqrt(fan);
}

/** U(-b, b), b = gain * sqrt(3 / fan) (torch defaults: a = 0, fan_in, leaky_relu). */
export function kaimingUniform(t: Tensor, o: KaimingOptions = {}): Tensor {
  const b = Math.sqrt(3) * kaimingStd(t, o);
  return uniform(t, -b, b, o);
}

/** N(0, gain / sqrt(fan)); ResNet convs use { mode: 'fan_out', nonlinearity: 'relu' }. */
export function kaimingNormal(t: Tensor, o: KaimingOptions = {}): Tensor {
  return normal(t, 0, kaimingStd(t, o), o);
}

/** U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)). */
export function xavierUniform(t: Tensor, o: RngOption & { gain?: number } = {}): Tensor {
  const { fanIn, fanOut } = fans(t);
  const b = (o.gain ?? 1) * Math.sqrt(6 / (fanIn + fanOut));
  return uniform(t, -b, b, o);
}

/** N(0, gain * sqrt(2 / (fan_in + fan_out))). */
export function xavierNormal(t: Tensor, o: RngOption & { gain?: number } = {}): Tensor {
  const { fanIn, fanOut } = fans(t);
  return normal(t, 0, (o.gain ?? 1) * Math.sqrt(2 / (fanIn + fanOut)), o);
}

/** PyTorch's default for Linear/Conv weights: kaiming_uniform(a = sqrt 5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
export function defaultWeight(t: Tensor, o: RngOption = {}): Tensor {
  return kaimingUniform(t, { a: Math.sqrt(5), rng: o.rng });
}

/** PyTorch's default for Linear/Conv biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the weight's fan_in. */
export function defaultBias(b: Tensor, fanIn: number, o: RngOption = {}): Tensor {
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return uniform(b, -bound, bound, o);
}
