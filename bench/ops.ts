// The roskd ops the bench drives. Several are written by other engineers while this harness
// exists, so every op is looked up on the `rk` namespace when a case starts: a missing op (or
// one whose backward is still 'not-differentiable') makes its cases SKIP with a reason instead
// of failing. `overrides` lets bench/selftest.ts substitute a deliberately wrong kernel to
// prove that a wrong fast kernel FAILs the bench.
import * as rk from '../engine/index.ts';

type Fn = (...args: never[]) => unknown;
const R = rk as unknown as Record<string, unknown>;

/** Test hook: stand-ins by op name (bench/selftest.ts). */
export const overrides: { matmul?: typeof rk.matmul; conv2d?: typeof rk.conv2d } = {};

export function op(name: string): Fn | undefined {
  const f = (overrides as Record<string, unknown>)[name] ?? R[name];
  return typeof f === 'function' ? (f as Fn) : undefined;
}

/** Skip reason when an op (or its gradient) is not available yet, else null. */
export function missing(...names: string[]): string | null {
  const gone = names.filter((n) => !op(n));
  return gone.length ? `rk.${gone.join(', rk.')} not available yet` : null;
}
export function missingGrad(name: string, registryName = name): string | null {
  const spec = rk.registry.get(registryName) as { backward?: unknown } | undefined;
  return missing(name) ?? (spec && spec.backward === 'not-differentiable' ? `rk.${name} backward not implemented yet` : null);
}

export function matmul(a: rk.Tensor, b: rk.Tensor): rk.Tensor {
  return (overrides.matmul ?? rk.matmul)(a, b);
}

export interface ConvArgs {
  stride: number;
  padding: number;
  groups: number;
}
export function conv2d(x: rk.Tensor, w: rk.Tensor, o: ConvArgs): rk.Tensor {
  return (overrides.conv2d ?? rk.conv2d)(x, w, null, { stride: o.stride, padding: o.padding, groups: o.groups });
}

export interface BnState {
  gamma: rk.Tensor;
  beta: rk.Tensor;
  runMean: rk.Tensor;
  runVar: rk.Tensor;
}
/** Training-mode batch norm (batch statistics; running stats updated in place). */
export function batchNorm2dTrain(x: rk.Tensor, s: BnState, eps = 1e-5): rk.Tensor {
  return rk.batchNorm2d(x, s.gamma, s.beta, s.runMean, s.runVar, { training: true, momentum: 0.1, eps });
}

/** Softmax KD loss, mean over the batch (test/reference/kd.ts's definition). */
export function kdLoss(zs: rk.Tensor, zt: rk.Tensor, labels: rk.Tensor, T: number, alpha: number): rk.Tensor {
  return rk.kdLoss(zs, zt, labels, { T, alpha });
}

export interface AdamWHyper {
  lr: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
}
export function adamW(params: rk.Tensor[], o: AdamWHyper): rk.optim.AdamW {
  return new rk.optim.AdamW(params, { lr: o.lr, betas: [o.beta1, o.beta2], eps: o.eps, weightDecay: o.weightDecay });
}
export const haveAdamW = (): boolean => typeof (rk.optim as Record<string, unknown>).AdamW === 'function';

export interface SgdHyper {
  lr: number;
  momentum: number;
  weightDecay: number;
}
export function sgd(params: rk.Tensor[], o: SgdHyper): rk.optim.SGD {
  return new rk.optim.SGD(params, { lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay });
}
export const haveSGD = (): boolean => typeof (rk.optim as Record<string, unknown>).SGD === 'function';
