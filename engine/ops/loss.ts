// Fused classification losses: crossEntropy (softmax + NLL) and bceWithLogits.
//
// Each forward is one kernel producing the per-sample (per-element) weighted loss, followed by
// the reduction; each backward is one kernel. Optional weights: the loss is
// sum(w_i * l_i) / sum(w_i) for 'mean', sum(w_i * l_i) for 'sum', w_i * l_i for 'none'.
// Weights receive a gradient too (they are often computed, e.g. per-sample KD weights).
import { defineOp, expectDtype, expectRank, type Meta } from '../op.ts';
import { Tensor, ShapeError, fmt, numel, type Shape } from '../tensor.ts';
import { noGrad } from '../autograd.ts';
import { dispatch, groupsFor } from '../program.ts';
import { sum } from './reduce.ts';
import { mul, sub, div } from './binary.ts';
import { mulScalar } from './unary.ts';
import { gather } from './gather.ts';

export type Reduction = 'mean' | 'sum' | 'none';
/** How the backward kernels scale the upstream gradient: 0: g per item, 1: scalar g, 2: scalar g / sum(w) */
const gradMode = (r: Reduction, w: Tensor | null): number => (r === 'none' ? 0 : r === 'mean' && w ? 2 : 1);
/** Constant factor: 1 / count for an unweighted mean. */
const gradScale = (r: Reduction, w: Tensor | null, count: number): number => (r === 'mean' && !w ? 1 / Math.max(1, count) : 1);

export interface LossOptions {
  /** per-sample weights [N] (bceWithLogits also accepts per-element weights of the logits' shape) */
  weights?: Tensor | null;
  /** default 'mean' */
  reduction?: Reduction;
}

function checkReduction(op: string, r: string): Reduction {
  if (r !== 'mean' && r !== 'sum' && r !== 'none') throw new RangeError(`${op}: reduction must be 'mean', 'sum' or 'none', got '${r}'`);
  return r;
}

/** Reduces weighted per-item losses; returns [loss, sum of weights or null] (no graph). */
function reduceLosses(losses: Tensor, r: Reduction, weights: Tensor | null, perWeight: number): [Tensor, Tensor | null] {
  return noGrad(() => {
    if (r === 'none') return [losses.detach(), null];
    const s = sum(losses);
    if (r === 'sum') return [s, null];
    if (!weights) {
      const m = mulScalar(s, 1 / losses.size);
      s.dispose();
      return [m, null];
    }
    const ws = sum(weights);
    const W = perWeight === 1 ? ws : mulScalar(ws, perWeight);
    if (W !== ws) ws.dispose();
    const m = div(s, W);
    s.dispose();
    return [m, W];
  });
}

/** d loss / d weights from the unweighted per-item losses l (summed to per-sample weights when wShape is [N]). */
function weightGrad(g: Tensor, l: Tensor, r: Reduction, out: Tensor, W: Tensor | null, wShape: Shape): Tensor {
  // 'none' and 'sum': dw = g * l;  'mean': L = sum(w l) / W, so dw = g * (l - L) / W
  const t = r === 'mean' ? div(mul(g, sub(l, out)), W!) : mul(g, l);
  if (t.size === numel(wShape)) return t.view(wShape);
  return sum(t.view([wShape[0], t.size / wShape[0]]), 1);
}

// ---- cross-entropy ------------------------------------------------------------------------

interface LossParams {
  reduction: Reduction;
  weighted: boolean;
}

const crossEntropyOp = defineOp<LossParams>({
  name: 'crossEntropy',
  shape(inputs, { reduction }): Meta {
    const [z, y, w] = inputs;
    expectDtype('crossEntropy', z, 'f32', 'logits');
    expectRank('crossEntropy', z, 2, 'logits');
    expectDtype('crossEntropy', y, 'i32', 'labels');
    if (y.shape.length !== 1 || y.shape[0] !== z.shape[0]) throw new ShapeError(`crossEntropy: labels ${fmt(y.shape)} do not match logits ${fmt(z.shape)} (expected [${z.shape[0]}])`);
    if (z.shape[1] === 0) throw new ShapeError(`crossEntropy: logits ${fmt(z.shape)} have no classes`);
    if (w) {
      expectDtype('crossEntropy', w, 'f32', 'weights');
      if (w.shape.length !== 1 || w.shape[0] !== z.shape[0]) throw new ShapeError(`crossEntropy: weights ${fmt(w.shape)} do not match logits ${fmt(z.shape)} (expected [${z.shape[0]}])`);
    }
    return { shape: reduction === 'none' ? [z.shape[0]] : [], dtype: 'f32' };
  },
  forward(inputs, { reduction }, ctx) {
    const [z, y, w = null] = inputs;
    const [N, C] = z.shape;
    const losses = new Tensor([N], 'f32');
    const stats = new Tensor([N, 2], 'f32'); // per sample: max logit, log-sum-exp of the shifted logits
    if (N > 0)
      dispatch({ name: 'cross_entropy', shader: 'cross_entropy' }, { n: N, c: C, hasw: !!w, nan: NaN }, [z.binding, y.binding, (w ?? z).binding, losses.binding, stats.binding], groupsFor(N, 64));
    const [out, W] = reduceLosses(losses, reduction, w, 1);
    losses.dispose();
    if (ctx.needsGrad) ctx.save(z, y, stats, out, ...(w ? [w] : []), ...(W ? [W] : []));
    stats.dispose();
    W?.dispose();
    return out;
  },
  backward(g, { saved, params: { reduction, weighted }, inputNeedsGrad }) {
    const [z, y, stats, out] = saved;
    const w = weighted ? saved[4] : null;
    const W = weighted && reduction === 'mean' ? saved[5] : null;
    const [N, C] = z.shape;
    let dz: Tensor | null = null;
    if (inputNeedsGrad[0]) {
      dz = new Tensor([N, C], 'f32');
      if (dz.size > 0)
        dispatch({ name: 'cross_entropy_grad', shader: 'cross_entropy_grad' }, { n: N, c: C, hasw: !!w, mode: gradMode(reduction, w), scale: gradScale(reduction, w, N) }, [z.binding, y.binding, stats.binding, g.binding, (w ?? z).binding, (W ?? g).binding, dz.binding], groupsFor(dz.size));
    }
    let dw: Tensor | null = null;
    if (w && inputNeedsGrad[2]) {
      const lse = sum(stats, 1); // m + ls
      const l = sub(lse, gather(z, y.view([N, 1]), 1).view([N])); // unweighted per-sample losses
      dw = weightGrad(g, l, reduction, out, W, w.shape);
    }
    return [dz, null, dw];
  },
});

/**
 * Cross-entropy of logits [N, C] against integer labels [N] (i32, each in [0, C): the GPU cannot
 * check this; a label out of range makes that sample's loss NaN), computed from a max-shifted
 * log-sum-exp in one kernel. reduction 'mean' (default) gives sum(w_i l_i) / sum(w_i) (plain
 * mean without weights), 'sum' gives sum(w_i l_i), 'none' gives w_i l_i per sample.
 */
export function crossEntropy(logits: Tensor, labels: Tensor, opts: LossOptions = {}): Tensor {
  const reduction = checkReduction('crossEntropy', opts.reduction ?? 'mean');
  const w = opts.weights ?? null;
  return crossEntropyOp(w ? [logits, labels, w] : [logits, labels], { reduction, weighted: w !== null });
}

// ---- binary cross-entropy with logits -----------------------------------------------------

/** Elements per weight: 1 for per-element weights, numel / N for per-sample weights [N]. */
function weightStride(op: string, x: Meta, w: Meta): number {
  const n = numel(x.shape);
  if (w.shape.length === x.shape.length && w.shape.every((d, i) => d === x.shape[i])) return 1;
  if (w.shape.length === 1 && x.shape.length >= 1 && w.shape[0] === x.shape[0]) return x.shape[0] === 0 ? 1 : n / x.shape[0];
  throw new ShapeError(`${op}: weights ${fmt(w.shape)} fit neither logits ${fmt(x.shape)} (per element) nor [${x.shape[0] ?? '?'}] (per sample)`);
}

function bceRaw(x: Tensor, t: Tensor, w: Tensor | null, per: number): Tensor {
  const out = new Tensor(x.shape, 'f32');
  if (out.size > 0) dispatch({ name: 'bce', shader: 'bce' }, { n: x.size, hasw: !!w, per }, [x.binding, t.binding, (w ?? x).binding, out.binding], groupsFor(x.size));
  return out;
}

const bceOp = defineOp<LossParams>({
  name: 'bceWithLogits',
  shape(inputs, { reduction }): Meta {
    const [x, t, w] = inputs;
    expectDtype('bceWithLogits', x, 'f32', 'logits');
    expectDtype('bceWithLogits', t, 'f32', 'targets');
    if (t.shape.length !== x.shape.length || t.shape.some((d, i) => d !== x.shape[i])) throw new ShapeError(`bceWithLogits: targets ${fmt(t.shape)} do not match logits ${fmt(x.shape)}`);
    if (w) {
      expectDtype('bceWithLogits', w, 'f32', 'weights');
      weightStride('bceWithLogits', x, w);
    }
    return { shape: reduction === 'none' ? x.shape : [], dtype: 'f32' };
  },
  forward(inputs, { reduction }, ctx) {
    const [x, t, w = null] = inputs;
    const per = w ? weightStride('bceWithLogits', x, w) : 1;
    const losses = bceRaw(x, t, w, per);
    const [out, W] = reduceLosses(losses, reduction, w, per);
    losses.dispose();
    if (ctx.needsGrad) ctx.save(x, t, out, ...(w ? [w] : []), ...(W ? [W] : []));
    W?.dispose();
    return out;
  },
  backward(g, { saved, params: { reduction, weighted }, inputNeedsGrad }) {
    const [x, t, out] = saved;
    const w = weighted ? saved[3] : null;
    const W = weighted && reduction === 'mean' ? saved[4] : null;
    const per = w ? weightStride('bceWithLogits', x, w) : 1;
    let dx: Tensor | null = null;
    let dt: Tensor | null = null;
    if (inputNeedsGrad[0] || inputNeedsGrad[1]) {
      dx = new Tensor(x.shape, 'f32');
      if (inputNeedsGrad[1]) dt = new Tensor(x.shape, 'f32');
      const defines = dt
        ? { DT_BINDING: '@group(0) @binding(7) var<storage, read_write> dt: array<f32>;', DT_STORE: 'dt[i] = -coef * v;' }
        : { DT_BINDING: '', DT_STORE: '' };
      const bindings = [x, t, g, w ?? x, W ?? g, dx, ...(dt ? [dt] : [])].map((b) => b.binding);
      const u = { n: x.size, hasw: !!w, per, mode: gradMode(reduction, w), scale: gradScale(reduction, w, x.size) };
      if (x.size > 0) dispatch({ name: 'bce_grad', shader: 'bce_grad', defines }, u, bindings, groupsFor(x.size));
      if (!inputNeedsGrad[0]) dx = null; // computed alongside dt; the tidy around backward frees it
    }
    let dw: Tensor | null = null;
    if (w && inputNeedsGrad[2]) dw = weightGrad(g, bceRaw(x, t, null, 1), reduction, out, W, w.shape);
    return [dx, dt, dw];
  },
});

/**
 * Binary cross-entropy on logits x with float targets t of the same shape, in the stable form
 * max(x, 0) - x t + log(1 + exp(-|x|)). Weights are per element (x's shape) or per sample
 * ([N], broadcast over the rest); 'mean' gives sum(w_e l_e) / sum(w_e) over elements.
 * Targets receive a gradient (-x times the weight) when they require one (soft targets).
 */
export function bceWithLogits(logits: Tensor, targets: Tensor, opts: LossOptions = {}): Tensor {
  const reduction = checkReduction('bceWithLogits', opts.reduction ?? 'mean');
  const w = opts.weights ?? null;
  return bceOp(w ? [logits, targets, w] : [logits, targets], { reduction, weighted: w !== null });
}
