// Shared pieces of the torchvision model ports: options, rounding rules, seeded init.
import { Rng, type Tensor } from '../engine/tensor.ts';
import * as nn from '../engine/nn/index.ts';

/** Options every model accepts (see test/fixtures/torch/README.md for their exact meaning). */
export interface ModelOptions {
  /** classifier outputs (default 1000) */
  numClasses?: number;
  /** input channels of the first conv (default 3; 1 = grayscale) */
  inChannels?: number;
  /** CIFAR-style stem for small images: 3x3 stride-1 first conv, no stem max-pool (default false) */
  smallInput?: boolean;
  /** width multiplier (default 1): ResNet base planes round(64w), DenseNet growth round(32w), MobileNetV2 width_mult */
  width?: number;
  /** seed of the private init generator (default 0); ignored when `rng` is given */
  seed?: number;
  /** init generator (takes precedence over seed) */
  rng?: Rng;
}

export interface ResolvedOptions {
  numClasses: number;
  inChannels: number;
  smallInput: boolean;
  width: number;
  rng: Rng;
}

export function resolveOptions(model: string, o: ModelOptions = {}): ResolvedOptions {
  const r: ResolvedOptions = {
    numClasses: o.numClasses ?? 1000,
    inChannels: o.inChannels ?? 3,
    smallInput: o.smallInput ?? false,
    width: o.width ?? 1,
    rng: o.rng ?? new Rng(o.seed ?? 0),
  };
  for (const k of ['numClasses', 'inChannels'] as const)
    if (!Number.isInteger(r[k]) || r[k] < 1) throw new RangeError(`${model}: ${k} must be a positive integer, got ${r[k]}`);
  if (!(r.width > 0 && Number.isFinite(r.width))) throw new RangeError(`${model}: width must be a positive number, got ${r.width}`);
  return r;
}

/** Python's round(): half to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** torchvision's _make_divisible(v, 8): round to a multiple of 8, at least 8, never more than 10% below v. */
export function makeDivisible(v: number, divisor = 8): number {
  let n = Math.max(divisor, Math.floor(Math.floor(v + divisor / 2) / divisor) * divisor);
  if (n < 0.9 * v) n += divisor;
  return n;
}

/** Every Conv2d / BatchNorm2d / Linear below `root`, in registration order. */
export function modulesOf<T extends nn.AnyModule>(root: nn.Module, cls: abstract new (...a: never[]) => T): T[] {
  return root.namedModules().flatMap(([, m]) => (m instanceof cls ? [m as T] : []));
}

/** Re-initialises convs with N(0, sqrt(2 / fan)) (kaiming_normal_, relu gain) and zeroes conv biases; BN weight 1, bias 0. */
export function initConvBn(root: nn.Module, mode: 'fan_in' | 'fan_out', rng: Rng): void {
  for (const c of modulesOf(root, nn.Conv2d)) {
    nn.init.kaimingNormal(c.weight, { mode, nonlinearity: 'relu', rng });
    if (c.bias) nn.init.zeros(c.bias);
  }
  for (const b of modulesOf(root, nn.BatchNorm2d)) {
    if (b.weight) nn.init.ones(b.weight);
    if (b.bias) nn.init.zeros(b.bias);
  }
}

/** Runs fns in order on x, disposing each intermediate (never x) as soon as it is consumed. */
export function chain(x: Tensor, ...fns: ((t: Tensor) => Tensor)[]): Tensor {
  let h = x;
  for (const f of fns) {
    const y = f(h);
    if (h !== x && y !== h) h.dispose();
    h = y;
  }
  return h;
}
