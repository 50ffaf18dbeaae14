// Adversarial attacks: FGSM and PGD with L-inf or L2 balls (evaluation over a split: robustness.ts).
//
// Where the attack happens: in PIXEL space. Epsilon, step size and the valid range are in
// pixel units on the [0, 1] scale (eps "2/255" = two grey levels). The model eats normalised
// input x = (p - mean_c) / std_c, so every step un-normalises, perturbs the pixels p, projects
// onto the eps-ball around the clean pixels p0, clamps to [0, 1] and re-normalises before the
// next forward. The gradient the engine's autograd returns is d loss / d x; by the chain rule
// d loss / d p = (d loss / d x) / std_c, which is what the L2 attack normalises (the sign used
// by FGSM / L-inf PGD is the same in both spaces because std_c > 0).
//
// The model is put in eval mode (BatchNorm uses its running statistics and does not update
// them, dropout is off), its parameters are taken out of the autograd graph for the duration
// (no weight gradients are computed, their .grad tensors are never touched), and every module's
// training flag and every parameter's requires-grad flag are restored afterwards, also on error.
// Loss: cross-entropy for single-label models, BCE with logits for multi-label models (summed
// over the batch, so a sample's gradient does not depend on the batch size).
//
// The perturbation arithmetic is done on the CPU in float32 (a few hundred kB per batch; the
// forward/backward passes dominate by far); forward and backward run on the GPU.
import * as rk from '../engine/index.ts';
import { Rng } from '../engine/rng.ts';
import { misclassified, sampleLosses } from './metrics.ts';

export type Module = rk.nn.Module;

// ---------------------------------------------------------------- epsilon strings

/** Parses an epsilon in pixel units: "2/255", "0.0078", "8e-3", or a number. Throws RangeError on anything else. */
export function parseEps(s: string | number): number {
  let v: number;
  if (typeof s === 'number') v = s;
  else {
    const t = s.trim();
    const m = /^([0-9]*\.?[0-9]+(?:e[-+]?\d+)?)\s*\/\s*([0-9]*\.?[0-9]+(?:e[-+]?\d+)?)$/i.exec(t);
    if (m) v = Number(m[1]) / Number(m[2]);
    else if (/^[0-9]*\.?[0-9]+(?:e[-+]?\d+)?$/i.test(t)) v = Number(t);
    else throw new RangeError(`epsilon ${JSON.stringify(s)}: expected a number or a fraction such as 2/255`);
  }
  if (!Number.isFinite(v) || v < 0) throw new RangeError(`epsilon ${JSON.stringify(s)}: must be a finite number >= 0 (pixel units, [0, 1] scale)`);
  if (v > 1) throw new RangeError(`epsilon ${JSON.stringify(s)} = ${v} is larger than the whole pixel range [0, 1]; write 8/255, not 8`);
  return v;
}

/** Comma list of epsilons ("1/255,2/255,4/255"). */
export function parseEpsList(s: string): number[] {
  const parts = s.split(',').map((x) => x.trim()).filter(Boolean);
  if (parts.length === 0) throw new RangeError(`epsilon list ${JSON.stringify(s)} is empty`);
  return parts.map(parseEps);
}

/** "2/255" when eps is (close to) a whole number of grey levels, else a short decimal. */
export function formatEps(eps: number): string {
  const k = eps * 255;
  if (eps === 0) return '0';
  if (Math.abs(k - Math.round(k)) < 1e-6 * Math.max(1, k)) return `${Math.round(k)}/255`;
  if (Math.abs(2 * k - Math.round(2 * k)) < 1e-6 * Math.max(1, k)) return `${(Math.round(2 * k) / 2).toFixed(1)}/255`;
  return Number(eps.toPrecision(3)).toString();
}

// ---------------------------------------------------------------- specs

/** How the model's input relates to pixels p in [lo, hi] (default [0, 1]): x = (p - mean_c) / std_c. */
export interface InputSpace {
  mean: readonly number[];
  std: readonly number[];
  lo?: number;
  hi?: number;
}

export type Norm = 'linf' | 'l2';

export interface AttackSpec {
  kind: 'fgsm' | 'pgd';
  /** pixel units; a string such as "2/255" is parsed */
  eps: number | string;
  /** PGD step (pixel units); default 2.5 eps / steps */
  stepSize?: number | string;
  /** PGD iterations (default 10) */
  steps?: number;
  /** PGD: start from a uniform random point of the ball (default true) */
  randomStart?: boolean;
  /** default 'linf' (FGSM is L-inf only) */
  norm?: Norm;
  seed?: number;
  /** PGD: per sample, return the strongest iterate (misclassified first, then highest loss) instead of the last (default true) */
  keepBest?: boolean;
}

/** A resolved spec: numbers only. */
export interface ResolvedAttack {
  kind: 'fgsm' | 'pgd';
  eps: number;
  stepSize: number;
  steps: number;
  randomStart: boolean;
  norm: Norm;
  seed: number;
  keepBest: boolean;
}

export function resolveAttack(s: AttackSpec): ResolvedAttack {
  if (s.kind !== 'fgsm' && s.kind !== 'pgd') throw new RangeError(`attack: unknown kind ${JSON.stringify(s.kind)} (fgsm or pgd)`);
  const eps = parseEps(s.eps);
  const norm = s.norm ?? 'linf';
  if (norm !== 'linf' && norm !== 'l2') throw new RangeError(`attack: norm must be linf or l2, got ${JSON.stringify(norm)}`);
  if (s.kind === 'fgsm') {
    if (norm !== 'linf') throw new RangeError('fgsm is an L-inf attack; use pgd with norm l2 (and steps 1 for a single step)');
    return { kind: 'fgsm', eps, stepSize: eps, steps: 1, randomStart: false, norm, seed: s.seed ?? 0, keepBest: false };
  }
  const steps = s.steps ?? 10;
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`pgd: steps must be a positive integer, got ${steps}`);
  const stepSize = s.stepSize === undefined ? (2.5 * eps) / steps : typeof s.stepSize === 'number' ? s.stepSize : parseEps(s.stepSize);
  if (!(stepSize >= 0) || !Number.isFinite(stepSize)) throw new RangeError(`pgd: invalid step size ${s.stepSize}`);
  return { kind: 'pgd', eps, stepSize, steps, randomStart: s.randomStart ?? true, norm, seed: s.seed ?? 0, keepBest: s.keepBest ?? true };
}

/** Short name for tables: "fgsm", "pgd10", "pgd10-l2". */
export function attackName(s: AttackSpec | ResolvedAttack): string {
  const r = resolveAttack(s); // idempotent on a resolved spec
  return r.kind === 'fgsm' ? 'fgsm' : `pgd${r.steps}${r.norm === 'l2' ? '-l2' : ''}`;
}

/** "fgsm 2/255", "pgd10 2/255". */
export function attackLabel(s: AttackSpec | ResolvedAttack): string {
  return `${attackName(s)} ${formatEps(parseEps(s.eps))}`;
}

// ---------------------------------------------------------------- model guard

// ---------------------------------------------------------------- core

/** Labels of a batch: class ids (single-label) or 0/1 targets [B*C] (multi-label). */
export interface Targets {
  labels: Int32Array | null;
  multi: Float32Array | null;
}

function normalise(p: Float32Array, space: InputSpace, C: number, hw: number): Float32Array {
  const x = new Float32Array(p.length);
  for (let o = 0; o < p.length; o += hw) {
    const c = (o / hw) % C;
    const m = space.mean[c];
    const s = 1 / space.std[c];
    for (let k = 0; k < hw; k++) x[o + k] = (p[o + k] - m) * s;
  }
  return x;
}

function unnormalise(x: Float32Array, space: InputSpace, C: number, hw: number, lo: number, hi: number): Float32Array {
  const p = new Float32Array(x.length);
  for (let o = 0; o < x.length; o += hw) {
    const c = (o / hw) % C;
    const m = space.mean[c];
    const s = space.std[c];
    for (let k = 0; k < hw; k++) p[o + k] = Math.min(hi, Math.max(lo, x[o + k] * s + m));
  }
  return p;
}

/** Per-sample loss (CE, or BCE averaged over labels) and misclassification from logits (kd/metrics.ts). */
function perSample(logits: Float32Array, B: number, C: number, t: Targets): { loss: Float64Array; wrong: Uint8Array } {
  const multi = t.multi !== null;
  const labels = t.multi ?? t.labels!;
  return { loss: sampleLosses(logits, B, C, labels, multi), wrong: misclassified(logits, B, C, labels, multi) };
}

/**
 * One forward (and, with wantGrad, backward) at pixels p: logits, and d loss / d p (pixel space).
 * Everything allocated on the GPU is released before returning.
 */
export async function forwardGrad(model: Module, p: Float32Array, shape: readonly number[], space: InputSpace, t: Targets, wantGrad: boolean): Promise<{ logits: Float32Array; grad: Float32Array | null }> {
  const [B, C, H, W] = shape;
  const hw = H * W;
  const xs = normalise(p, space, C, hw);
  const x = rk.tensor(xs, shape);
  let logitsT: rk.Tensor | null = null;
  let loss: rk.Tensor | null = null;
  let yT: rk.Tensor | null = null;
  try {
    if (!wantGrad) {
      logitsT = rk.noGrad(() => model.call(x));
      return { logits: (await logitsT.toArray()) as Float32Array, grad: null };
    }
    x.requireGrad();
    logitsT = model.call(x);
    const K = logitsT.shape[1];
    yT = t.multi ? rk.tensor(t.multi, [B, K]) : rk.tensor(t.labels!, [B], 'i32');
    loss = t.multi ? rk.bceWithLogits(logitsT, yT, { reduction: 'sum' }) : rk.crossEntropy(logitsT, yT, { reduction: 'sum' });
    if (!loss.node) throw new Error('attack: the loss does not depend on the input through differentiable ops (an op on the path, e.g. conv2d, has no backward yet)');
    loss.backward();
    if (!x.grad) throw new Error('attack: the model produced no gradient w.r.t. its input (is every op on the path differentiable?)');
    const [logits, gx] = await Promise.all([logitsT.toArray(), x.grad.toArray()]);
    // chain rule through the normalisation: d/dp = d/dx / std_c
    for (let o = 0; o < gx.length; o += hw) {
      const s = 1 / space.std[(o / hw) % C];
      for (let k = 0; k < hw; k++) gx[o + k] *= s;
    }
    return { logits: logits as Float32Array, grad: gx as Float32Array };
  } finally {
    x.grad?.dispose();
    x.grad = null;
    loss?.dispose();
    yT?.dispose();
    logitsT?.dispose();
    x.dispose();
  }
}

export interface PixelAttackResult {
  /** adversarial pixels, [B*C*H*W] in [lo, hi] */
  pixels: Float32Array;
  /** logits at the adversarial pixels [B*numClasses] */
  logits: Float32Array;
  /** per-sample loss at the adversarial pixels (CE; multi-label: BCE averaged over labels) */
  loss: Float64Array;
  numClasses: number;
}

function checkSpace(space: InputSpace, C: number): void {
  if (space.mean.length !== C || space.std.length !== C) throw new RangeError(`attack: the input space has ${space.mean.length} mean / ${space.std.length} std entries for ${C} channels`);
  for (const s of space.std) if (!(s > 0)) throw new RangeError(`attack: std must be > 0, got ${s}`);
}

/**
 * The attack on clean pixels p0 (NCHW [B, C, H, W] flattened, in [lo, hi]); labels are class
 * ids [B] (Int32Array) or 0/1 targets [B*numClasses] (Float32Array, multi-label).
 */
export async function attackPixels(model: Module, p0: Float32Array, shape: readonly number[], labels: Int32Array | Float32Array, spec: AttackSpec, space: InputSpace): Promise<PixelAttackResult> {
  const a = resolveAttack(spec);
  if (shape.length !== 4) throw new RangeError(`attack: input shape must be [N, C, H, W], got [${shape.join(', ')}]`);
  const [B, C, H, W] = shape;
  if (p0.length !== B * C * H * W) throw new RangeError(`attack: ${p0.length} pixels for shape [${shape.join(', ')}]`);
  checkSpace(space, C);
  const lo = space.lo ?? 0;
  const hi = space.hi ?? 1;
  const t: Targets = labels instanceof Float32Array ? { labels: null, multi: labels } : { labels, multi: null };
  if (t.labels && t.labels.length !== B) throw new RangeError(`attack: ${t.labels.length} labels for a batch of ${B}`);
  if (t.multi && t.multi.length % B !== 0) throw new RangeError(`attack: ${t.multi.length} multi-label targets for a batch of ${B}`);
  const per = C * H * W;

  return rk.nn.withFrozenModel(model, 'attack', async () => {
    const p = Float32Array.from(p0, (v) => Math.min(hi, Math.max(lo, v)));
    const base = Float32Array.from(p);
    const project = (): void => {
      if (a.norm === 'linf') {
        for (let i = 0; i < p.length; i++) p[i] = Math.min(hi, Math.max(lo, Math.min(base[i] + a.eps, Math.max(base[i] - a.eps, p[i]))));
        return;
      }
      for (let b = 0; b < B; b++) {
        let n2 = 0;
        for (let k = b * per; k < (b + 1) * per; k++) n2 += (p[k] - base[k]) ** 2;
        const n = Math.sqrt(n2);
        const f = n > a.eps ? a.eps / n : 1;
        // clamping after the projection moves each coordinate toward base (in [lo, hi]): stays in the ball
        for (let k = b * per; k < (b + 1) * per; k++) p[k] = Math.min(hi, Math.max(lo, base[k] + (p[k] - base[k]) * f));
      }
    };
    const ascend = (g: Float32Array, step: number): void => {
      if (a.norm === 'linf') {
        for (let i = 0; i < p.length; i++) p[i] += step * Math.sign(g[i]);
        return;
      }
      for (let b = 0; b < B; b++) {
        let n2 = 0;
        for (let k = b * per; k < (b + 1) * per; k++) n2 += g[k] * g[k];
        const n = Math.sqrt(n2);
        if (n === 0) continue;
        for (let k = b * per; k < (b + 1) * per; k++) p[k] += (step * g[k]) / n;
      }
    };

    if (a.kind === 'fgsm') {
      const { grad } = await forwardGrad(model, p, shape, space, t, true);
      ascend(grad!, a.eps);
      project();
      const { logits } = await forwardGrad(model, p, shape, space, t, false);
      const K = logits.length / B;
      return { pixels: p, logits, loss: perSample(logits, B, K, t).loss, numClasses: K };
    }

    if (a.randomStart && a.eps > 0) {
      const rng = Rng.keyed('pgd-start', a.seed);
      if (a.norm === 'linf') for (let i = 0; i < p.length; i++) p[i] += a.eps * (2 * rng.next() - 1);
      else
        for (let b = 0; b < B; b++) {
          // uniform in the L2 ball: gaussian direction, radius eps * u^(1/d)
          const d = new Float64Array(per);
          let n2 = 0;
          for (let k = 0; k < per; k++) n2 += (d[k] = rng.normal()) ** 2;
          const r = (a.eps * Math.pow(rng.next(), 1 / per)) / Math.sqrt(n2 || 1);
          for (let k = 0; k < per; k++) p[b * per + k] += r * d[k];
        }
      project();
    }
    let K = 0;
    let best: { pixels: Float32Array; logits: Float32Array; loss: Float64Array; wrong: Uint8Array } | null = null;
    const consider = (logits: Float32Array): void => {
      K = logits.length / B;
      const s = perSample(logits, B, K, t);
      if (!best) {
        best = { pixels: Float32Array.from(p), logits: Float32Array.from(logits), loss: s.loss, wrong: s.wrong };
        return;
      }
      for (let b = 0; b < B; b++) {
        const better = s.wrong[b] > best.wrong[b] || (s.wrong[b] === best.wrong[b] && s.loss[b] > best.loss[b]);
        if (!better) continue;
        best.pixels.set(p.subarray(b * per, (b + 1) * per), b * per);
        best.logits.set(logits.subarray(b * K, (b + 1) * K), b * K);
        best.loss[b] = s.loss[b];
        best.wrong[b] = s.wrong[b];
      }
    };
    for (let s = 0; s < a.steps; s++) {
      const { logits, grad } = await forwardGrad(model, p, shape, space, t, true);
      if (a.keepBest) consider(logits);
      ascend(grad!, a.stepSize);
      project();
    }
    const { logits } = await forwardGrad(model, p, shape, space, t, false);
    K = logits.length / B;
    if (!a.keepBest) return { pixels: p, logits, loss: perSample(logits, B, K, t).loss, numClasses: K };
    consider(logits);
    const r = best!;
    return { pixels: r.pixels, logits: r.logits, loss: r.loss, numClasses: K };
  });
}

// ---------------------------------------------------------------- tensor API

export interface AttackResult extends PixelAttackResult {
  /** the adversarial input, normalised like the model's input (the caller owns it) */
  x: rk.Tensor;
}

async function labelsOf(y: rk.Tensor): Promise<Int32Array | Float32Array> {
  if (y.dtype === 'i32') return y.toInt32Array();
  return (await y.toArray()) as Float32Array;
}

function defaultSpace(C: number): InputSpace {
  return { mean: new Array(C).fill(0), std: new Array(C).fill(1) };
}

async function attackTensor(model: Module, x: rk.Tensor, y: rk.Tensor, spec: AttackSpec, space?: InputSpace): Promise<AttackResult> {
  if (x.shape.length !== 4) throw new RangeError(`attack: x must be [N, C, H, W], got ${x.describe()}`);
  const [, C, H, W] = x.shape;
  const sp = space ?? defaultSpace(C);
  checkSpace(sp, C);
  const p0 = unnormalise((await x.toArray()) as Float32Array, sp, C, H * W, sp.lo ?? 0, sp.hi ?? 1);
  const r = await attackPixels(model, p0, x.shape, await labelsOf(y), spec, sp);
  return { ...r, x: rk.tensor(normalise(r.pixels, sp, C, H * W), x.shape) };
}

/**
 * FGSM: x_adv = clamp(p + eps sign(d loss / d p), 0, 1), re-normalised; x is the model's
 * (normalised) input [N, C, H, W], y class ids (i32 [N]) or multi-label 0/1 targets (f32 [N, C]);
 * eps in pixel units; space: the input normalisation (default: the model eats pixels).
 */
export function fgsm(model: Module, x: rk.Tensor, y: rk.Tensor, opts: { eps: number | string; space?: InputSpace }): Promise<AttackResult> {
  return attackTensor(model, x, y, { kind: 'fgsm', eps: opts.eps }, opts.space);
}

/** PGD (Madry et al.) in pixel space; see AttackSpec for the options and defaults. */
export function pgd(model: Module, x: rk.Tensor, y: rk.Tensor, opts: Omit<AttackSpec, 'kind'> & { space?: InputSpace }): Promise<AttackResult> {
  const { space, ...rest } = opts;
  return attackTensor(model, x, y, { kind: 'pgd', ...rest }, space);
}
