// BatchNorm2d (NCHW) with an optional fused ReLU/ReLU6, forward and backward
// (shaders/batchnorm_*.wgsl).
//
// Training forward: a two-level per-channel reduction (batchnorm_stats: P partial shifted sums
// per channel; batchnorm_finalize: mean, biased variance, in-place running-stat update, and the
// per-channel mean, invstd, gamma * invstd, beta), then one elementwise pass
// y = act((x - mean) * gamma * invstd + beta). Eval forward: finalize from the running
// statistics, then the same elementwise pass. Backward: one partial reduction of
// (g', g'(x - mean)) with g' = g * act'(z), per-channel dgamma/dbeta, then one elementwise dx
// pass (through the batch statistics in training mode); both recompute the activation's input
// z from x and the stats rather than reading the forward's output (one read stream less).
// Elementwise kernels and reductions read vec4s when H*W % 4 == 0, other plane sizes (7x7, 3x3)
// aligned vec4s of the flat buffers with masks (the *_flat kernels) where the layout allows, and
// each invocation handles a contiguous run of elements (lavapipe runs every load lane by lane, so
// loads per element and per-lane setup are what cost; bench/NOTES.md, speed round 4).
import { defineOp, expectDtype, expectRank } from '../op.ts';
import { Tensor, ShapeError, fmt } from '../tensor.ts';
import { dispatch, groupsFor, type Binding } from '../program.ts';

export type BnActivation = 'relu' | 'relu6' | null;

export interface BatchNormOptions {
  training: boolean;
  /** running-stat momentum (PyTorch default 0.1) */
  momentum?: number;
  eps?: number;
  /** fused activation applied after the affine transform */
  activation?: BnActivation;
}

interface BnParams {
  training: boolean;
  momentum: number;
  eps: number;
  activation: BnActivation;
  hasW: boolean;
  hasB: boolean;
  runningMean: Tensor;
  runningVar: Tensor;
}

type ActName = 'none' | 'relu' | 'relu6';

/**
 * WGSL for the element type V (f32, or vec4f when H*W % 4 == 0 so that planes split into whole
 * vec4s): the activation act(z), its derivative dact(z) (the backward kernels evaluate it at the
 * activation's input z, which passes the same sign tests as its output), a horizontal sum.
 */
function typed(act: ActName, v: 1 | 4): Record<string, string> {
  const V = v === 4 ? 'vec4f' : 'f32';
  const k = (c: number) => `${V}(${c.toFixed(1)})`;
  const ACT = { none: 'z', relu: `max(z, ${k(0)})`, relu6: `clamp(z, ${k(0)}, ${k(6)})` }[act];
  const DACT = { none: k(1), relu: `select(${k(0)}, ${k(1)}, z > ${k(0)})`, relu6: `select(${k(0)}, ${k(1)}, (z > ${k(0)}) & (z < ${k(6)}))` }[act];
  return { V, ACT, DACT, TOTAL: v === 4 ? 'dot(v, vec4f(1.0))' : 'v' };
}

/**
 * Defines objects memoised by content: program.ts then finds the pipeline by the object's
 * identity instead of building and hashing a key string on every dispatch.
 */
const definesMemo = new Map<string, Record<string, string | number>>();
function memo(key: string, make: () => Record<string, string | number>): Record<string, string | number> {
  let d = definesMemo.get(key);
  if (!d) definesMemo.set(key, (d = make()));
  return d;
}

/** vec4 elements when every plane splits into whole vec4s. */
const widthOf = (HW: number): 1 | 4 => (HW % 4 === 0 ? 4 : 1);

/** V-elements one lane of batchnorm_stats sums (a plane segment, or several whole small planes). */
const STATS_RUN = 128;
/**
 * Rough cap on partial sums per channel (batchnorm_finalize / dparams add them up one lane per
 * channel): more planes per lane beyond it; P stays below MAX_PARTIALS + segs.
 */
const MAX_PARTIALS = 512;

/**
 * How batchnorm_stats splits a channel's N planes of hw V-elements among lanes: each lane takes
 * one segment of S V-elements (segs per plane) of G consecutive planes, so lanes walk contiguous
 * memory with equal trip counts. P = ceil(N / G) * segs partial sums per channel.
 */
export function statsSplit(N: number, hw: number, run = STATS_RUN): { P: number; segs: number; S: number; G: number } {
  const segs = Math.ceil(hw / run);
  const S = Math.ceil(hw / segs);
  let G = Math.max(1, Math.floor(run / S));
  if (Math.ceil(N / G) * segs > MAX_PARTIALS) G = Math.ceil((N * segs) / MAX_PARTIALS);
  G = Math.min(G, N);
  return { P: Math.ceil(N / G) * segs, segs, S, G };
}

/** Elements one lane of batchnorm_stats_flat sums (13-14 vec4 loads per 49-element plane). */
export const STATS_RUN_FLAT = 256;

/** A tensor's buffer bound as whole vec4s (its byte size rounded up to 16), or null where the buffer is too short. */
function vec4View(t: Tensor): Binding | null {
  const size = Math.ceil((t.size * 4) / 16) * 16;
  return t.buffer.size >= size ? { buffer: t.buffer, size } : null;
}

/** Runs batchnorm_stats over the first C channels of x; returns the [C * P] vec2 partial sums. */
function channelPartials(mode: 0 | 1, act: ActName, x: Tensor, C: number, g: Tensor, stats: Tensor): { part: Tensor; P: number } {
  const [N, xc, H, W] = x.shape;
  const v = widthOf(H * W);
  const hw = (H * W) / v;
  // planes not a multiple of 4: aligned vec4 loads of the flat buffers with masks, when they fit
  const xv = v === 1 ? vec4View(x) : null;
  const gv = mode === 1 ? (xc === C ? vec4View(g) : null) : xv;
  if (xv && gv) {
    const { P, segs, S, G } = statsSplit(N, hw, STATS_RUN_FLAT);
    const part = new Tensor([C * P * 2], 'f32');
    dispatch(
      { name: mode === 0 ? 'batchnorm_stats_flat' : `batchnorm_grad_stats_flat_${act}`, shader: 'batchnorm_stats_flat', defines: memo(`stats flat ${mode} ${act}`, () => ({ MODE: mode, ...typed(act, 4) })) },
      { N, C, hw, P, segs, S, G, xc },
      [xv, gv, stats.binding, part.binding],
      groupsFor(C * P, 64),
    );
    return { part, P };
  }
  const { P, segs, S, G } = statsSplit(N, hw);
  const part = new Tensor([C * P * 2], 'f32');
  dispatch(
    { name: mode === 0 ? 'batchnorm_stats' : `batchnorm_grad_stats_${act}`, shader: 'batchnorm_stats', defines: memo(`stats ${mode} ${act} ${v}`, () => ({ MODE: mode, ...typed(act, v) })) },
    { N, C, hw, P, segs, S, G, xc },
    [x.binding, g.binding, stats.binding, part.binding],
    groupsFor(C * P, 64),
  );
  return { part, P };
}

/**
 * Whether the elementwise kernels take the flat vec4 path (batchnorm_{apply,grad}_flat.wgsl):
 * planes whose size is not a multiple of 4 (7x7, 3x3, ...) but at least 4, in contiguous tensors
 * (no channel stride) whose size is a multiple of 4. Otherwise such planes go element by element.
 */
export function flatPlanes(N: number, C: number, HW: number, ...channelStrides: number[]): boolean {
  return HW % 4 !== 0 && HW >= 4 && (N * C * HW) % 4 === 0 && channelStrides.every((s) => s === C);
}

/** Lanes of the elementwise kernels: one per run of up to RUN V-elements inside a plane. */
const RUN = 16;
function planeRuns(planes: number, hw: number): { runs: number; groups: [number, number] } {
  const runs = Math.ceil(hw / RUN);
  return { runs, groups: groupsFor(planes * runs, 64) };
}

/** The settings of one batch-norm call (the op's params minus which inputs exist). */
export interface BnCall {
  training: boolean;
  momentum: number;
  eps: number;
  activation: BnActivation;
  runningMean: Tensor;
  runningVar: Tensor;
}

/**
 * Forward over the first C channels of x [N, xc >= C, H, W] (all of them for the op; a prefix
 * of DenseNet's growing feature buffer for models/densenet.ts): y [N, C, H, W] and the
 * per-channel stats [C, 8] that the backward needs. Updates the running statistics in training.
 */
export function bnForwardRaw(x: Tensor, C: number, w: Tensor | null, b: Tensor | null, p: BnCall): { y: Tensor; stats: Tensor } {
  const [N, xc, H, W] = x.shape;
  const HW = H * W;
  const M = N * HW;
  const stats = new Tensor([C, 8], 'f32'); // two vec4 per channel, see batchnorm_finalize.wgsl
  let part: Tensor;
  let P = 1;
  if (p.training) ({ part, P } = channelPartials(0, 'none', x, C, x, stats));
  else part = new Tensor([2], 'f32'); // unused in eval
  dispatch(
    { name: p.training ? 'batchnorm_finalize' : 'batchnorm_finalize_eval', shader: 'batchnorm_finalize', defines: memo(`finalize ${p.training}`, () => ({ TRAIN: p.training ? 1 : 0 })) },
    { C, HW, P, M, eps: p.eps, momentum: p.momentum, hasW: w !== null, hasB: b !== null },
    [x.binding, part.binding, (w ?? x).binding, (b ?? x).binding, p.runningMean.binding, p.runningVar.binding, stats.binding], // x stands in for absent parameters (never read)
    groupsFor(C, 64),
  );
  part.dispose();
  const act = p.activation ?? 'none';
  const y = new Tensor([N, C, H, W], 'f32');
  if (flatPlanes(N, C, HW, xc)) {
    const n4 = (N * C * HW) / 4;
    dispatch({ name: `batchnorm_apply_flat_${act}`, shader: 'batchnorm_apply_flat', defines: memo(`apply flat ${act}`, () => ({ ...typed(act, 4), RUN })) }, { n4, C, hw: HW }, [x.binding, stats.binding, y.binding], groupsFor(Math.ceil(n4 / RUN), 64));
    return { y, stats };
  }
  const v = widthOf(HW);
  const { runs, groups } = planeRuns(N * C, HW / v);
  dispatch({ name: `batchnorm_apply_${act}`, shader: 'batchnorm_apply', defines: memo(`apply ${act} ${v}`, () => ({ ...typed(act, v), RUN })) }, { planes: N * C, C, hw: HW / v, runs, xc }, [x.binding, stats.binding, y.binding], groups);
  return { y, stats };
}

/**
 * Backward of bnForwardRaw given g = dL/dy [N, C, H, W], the forward's input x and its stats.
 * dgamma/dbeta when `wantParams` (or always in training, where dx needs them); dx into the first
 * C channels of `dx` [N, dc >= C, H, W], added to what it holds when `accumulate`.
 */
export function bnBackwardRaw(
  g: Tensor,
  x: Tensor,
  stats: Tensor,
  p: BnCall,
  o: { wantParams: boolean; dx: Tensor | null; accumulate: boolean },
): { dgamma: Tensor | null; dbeta: Tensor | null } {
  const act = p.activation ?? 'none';
  const [N, C, H, W] = g.shape;
  const HW = H * W;
  const M = N * HW;
  // Training-mode dx needs the channel sums; eval-mode dx needs them only for dgamma/dbeta.
  let dgamma: Tensor | null = null;
  let dbeta: Tensor | null = null;
  if (p.training || o.wantParams) {
    const { part, P } = channelPartials(1, act, x, C, g, stats);
    dgamma = new Tensor([C], 'f32');
    dbeta = new Tensor([C], 'f32');
    dispatch({ name: 'batchnorm_dparams', shader: 'batchnorm_dparams' }, { C, P }, [part.binding, stats.binding, dgamma.binding, dbeta.binding], groupsFor(C, 64));
    part.dispose();
  }
  if (o.dx && flatPlanes(N, C, HW, x.shape[1], o.dx.shape[1])) {
    const n4 = (N * C * HW) / 4;
    dispatch(
      { name: `batchnorm_dx_flat_${p.training ? 'train' : 'eval'}_${act}${o.accumulate ? '_acc' : ''}`, shader: 'batchnorm_grad_flat', defines: memo(`dx flat ${p.training} ${o.accumulate} ${act}`, () => ({ TRAIN: p.training ? 1 : 0, ACCUM: o.accumulate ? 1 : 0, ...typed(act, 4), RUN })) },
      { n4, C, hw: HW, M },
      [g.binding, x.binding, stats.binding, (dgamma ?? stats).binding, (dbeta ?? stats).binding, o.dx.binding],
      groupsFor(Math.ceil(n4 / RUN), 64),
    );
  } else if (o.dx) {
    const v = widthOf(HW);
    const { runs, groups } = planeRuns(N * C, HW / v);
    dispatch(
      { name: `batchnorm_dx_${p.training ? 'train' : 'eval'}_${act}${o.accumulate ? '_acc' : ''}`, shader: 'batchnorm_grad', defines: memo(`dx ${p.training} ${o.accumulate} ${act} ${v}`, () => ({ TRAIN: p.training ? 1 : 0, ACCUM: o.accumulate ? 1 : 0, ...typed(act, v), RUN })) },
      { planes: N * C, C, hw: HW / v, runs, M, xc: x.shape[1], dc: o.dx.shape[1] },
      [g.binding, x.binding, stats.binding, (dgamma ?? stats).binding, (dbeta ?? stats).binding, o.dx.binding],
      groups,
    );
  }
  return { dgamma, dbeta };
}

const bnOp = defineOp<BnParams>({
  name: 'batchNorm2d',
  shape(inputs, p) {
    const [x] = inputs;
    expectDtype('batchNorm2d', x, 'f32');
    expectRank('batchNorm2d', x, 4);
    const C = x.shape[1];
    const named: [string, readonly number[], string][] = [];
    let k = 1;
    if (p.hasW) named.push(['weight', inputs[k].shape, inputs[k++].dtype]);
    if (p.hasB) named.push(['bias', inputs[k].shape, inputs[k++].dtype]);
    named.push(['runningMean', p.runningMean.shape, p.runningMean.dtype], ['runningVar', p.runningVar.shape, p.runningVar.dtype]);
    for (const [what, s, dt] of named) {
      if (s.length !== 1 || s[0] !== C) throw new ShapeError(`batchNorm2d: ${what} must have shape [${C}] (C of input ${fmt(x.shape)}), got ${fmt(s)}`);
      if (dt !== 'f32') throw new TypeError(`batchNorm2d: ${what} must be f32, got ${dt}`);
    }
    const [N, , H, W] = x.shape;
    if (N * C * H * W === 0) throw new ShapeError(`batchNorm2d: input ${fmt(x.shape)} is empty`);
    if (p.training && N * H * W < 2) throw new ShapeError(`batchNorm2d: expected more than 1 value per channel when training, got input ${fmt(x.shape)}`);
    return { shape: x.shape, dtype: 'f32' };
  },
  forward(inputs, p, ctx) {
    const x = inputs[0];
    const w = p.hasW ? inputs[1] : null;
    const b = p.hasB ? inputs[p.hasW ? 2 : 1] : null;
    const { y, stats } = bnForwardRaw(x, x.shape[1], w, b, p);
    if (ctx.needsGrad) ctx.save(x, stats);
    stats.dispose();
    return y;
  },
  backward(g, { saved, params: p, inputNeedsGrad }) {
    const [x, stats] = saved;
    const wantW = p.hasW && inputNeedsGrad[1];
    const wantB = p.hasB && inputNeedsGrad[p.hasW ? 2 : 1];
    const dx = inputNeedsGrad[0] ? new Tensor(x.shape, 'f32') : null;
    const { dgamma, dbeta } = bnBackwardRaw(g, x, stats, p, { wantParams: wantW || wantB, dx, accumulate: false });
    const grads: (Tensor | null)[] = [dx];
    if (p.hasW) grads.push(wantW ? dgamma : null);
    if (p.hasB) grads.push(wantB ? dbeta : null);
    if (!wantW) dgamma?.dispose();
    if (!wantB) dbeta?.dispose();
    return grads;
  },
});

/**
 * BatchNorm2d over x [N, C, H, W]: y = act(weight * (x - mean) / sqrt(var + eps) + bias).
 * Training: batch statistics (biased variance), and runningMean/runningVar are updated IN PLACE
 * as PyTorch does (new = (1 - momentum) * old + momentum * batch, unbiased variance for
 * runningVar). Eval: the running statistics. weight/bias may be null (affine = false).
 * Differentiable w.r.t. x, weight and bias in both modes; num_batches_tracked is the module's job.
 */
export function batchNorm2d(x: Tensor, weight: Tensor | null, bias: Tensor | null, runningMean: Tensor, runningVar: Tensor, o: BatchNormOptions): Tensor {
  const momentum = o.momentum ?? 0.1;
  const eps = o.eps ?? 1e-5;
  if (!(momentum >= 0 && momentum <= 1)) throw new RangeError(`batchNorm2d: momentum ${momentum} must lie in [0, 1]`);
  if (!(eps > 0)) throw new RangeError(`batchNorm2d: eps ${eps} must be positive`);
  const activation = o.activation ?? null;
  if (activation !== null && activation !== 'relu' && activation !== 'relu6') throw new RangeError(`batchNorm2d: unknown activation ${String(activation)} (relu, relu6 or null)`);
  for (const t of [runningMean, runningVar]) if (t.disposed) throw new Error(`batchNorm2d: running statistic ${t.describe()} was used after it was disposed`);
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  return bnOp(inputs, { training: o.training, momentum, eps, activation, hasW: weight !== null, hasB: bias !== null, runningMean, runningVar });
}
