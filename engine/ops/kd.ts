// Fused knowledge-distillation losses (softmax KD and multi-label sigmoid KD).
//
// Forward: one kernel computes every sample's (or element's) weighted loss AND its gradient
// w.r.t. the student logits (shaders/kd_softmax.wgsl, kd_multilabel.wgsl); a one-workgroup
// kernel reduces to the scalar loss and the normaliser 1 / sum(w) (kd_reduce.wgsl). The
// gradient rows are saved, so backward is one elementwise scale by the incoming gradient
// (kd_grad.wgsl). The teacher, labels/targets and weights get no gradient.
import { defineOp, expectDtype, expectRank, type Meta } from '../op.ts';
import { Tensor, ShapeError, fmt } from '../tensor.ts';
import { dispatch, groupsFor } from '../program.ts';

export interface KdOptions {
  /** temperature, > 0 */
  T: number;
  /** weight of the soft (distillation) term in [0, 1]; the hard term gets 1 - alpha */
  alpha: number;
  /** per-sample weights [N] (multi-label also accepts per-element [N, C]); the mean becomes sum(w l) / sum(w) */
  weights?: Tensor;
  /** zt holds teacher probabilities instead of logits */
  teacherIsProb?: boolean;
}

interface KdParams {
  T: number;
  alpha: number;
  hasW: boolean;
  teacherIsProb: boolean;
}


function checkOptions(op: string, o: KdOptions): void {
  if (!(Number.isFinite(o.T) && o.T > 0)) throw new RangeError(`${op}: temperature T must be a positive number, got ${o.T}`);
  if (!(o.alpha >= 0 && o.alpha <= 1)) throw new RangeError(`${op}: alpha must lie in [0, 1], got ${o.alpha}`);
}

function checkLogits(op: string, zs: Meta, zt: Meta): [number, number] {
  expectDtype(op, zs, 'f32', 'student logits zs');
  expectDtype(op, zt, 'f32', 'teacher zt');
  expectRank(op, zs, 2, 'student logits zs [N, C]');
  if (zt.shape.length !== 2 || zt.shape[0] !== zs.shape[0] || zt.shape[1] !== zs.shape[1])
    throw new ShapeError(`${op}: teacher zt ${fmt(zt.shape)} does not match student logits zs ${fmt(zs.shape)}`);
  const [N, C] = zs.shape;
  if (N === 0 || C === 0) throw new ShapeError(`${op}: logits ${fmt(zs.shape)} are empty`);
  return [N, C];
}

/** Sums the per-item losses into the scalar loss and the gradient normaliser. */
function reduceLoss(loss: Tensor, weights: Tensor | null, wscale: number): { out: Tensor; scale: Tensor } {
  const out = new Tensor([], 'f32');
  const scale = new Tensor([1], 'f32');
  dispatch(
    { name: 'kd_reduce', shader: 'kd_reduce' },
    { n: loss.size, m: weights ? weights.size : 0, hasW: !!weights, wscale },
    [loss.binding, (weights ?? loss).binding, out.binding, scale.binding],
    1,
  );
  return { out, scale };
}

function scaleGrad(grad: Tensor, g: Tensor, scale: Tensor): Tensor {
  const dzs = new Tensor(grad.shape, 'f32');
  dispatch({ name: 'kd_grad', shader: 'kd_grad' }, { n: grad.size }, [grad.binding, g.binding, scale.binding, dzs.binding], groupsFor(grad.size));
  return dzs;
}

function finish(ctx: { needsGrad: boolean; save(...t: Tensor[]): void }, loss: Tensor, grad: Tensor, red: { out: Tensor; scale: Tensor }): Tensor {
  if (ctx.needsGrad) ctx.save(grad, red.scale);
  loss.dispose();
  grad.dispose();
  red.scale.dispose();
  return red.out;
}

const kdOp = defineOp<KdParams>({
  name: 'kdLoss',
  shape([zs, zt, labels, weights], p) {
    const [N] = checkLogits('kdLoss', zs, zt);
    if (labels.dtype !== 'i32') throw new TypeError(`kdLoss: labels must be i32, got ${fmt(labels.shape)} ${labels.dtype}`);
    if (labels.shape.length !== 1 || labels.shape[0] !== N) throw new ShapeError(`kdLoss: labels ${fmt(labels.shape)} do not match logits ${fmt(zs.shape)} (expected [${N}])`);
    if (p.hasW) {
      expectDtype('kdLoss', weights, 'f32', 'weights');
      if (weights.shape.length !== 1 || weights.shape[0] !== N) throw new ShapeError(`kdLoss: weights ${fmt(weights.shape)} do not match logits ${fmt(zs.shape)} (expected [${N}])`);
    }
    return { shape: [], dtype: 'f32' };
  },
  forward([zs, zt, labels, weights], p, ctx) {
    const [N, C] = zs.shape;
    const loss = new Tensor([N], 'f32');
    const grad = new Tensor([N, C], 'f32');
    dispatch(
      { name: 'kd_softmax', shader: 'kd_softmax', defines: { TEACHER_PROB: p.teacherIsProb ? 1 : 0 } },
      { N, C, T: p.T, alpha: p.alpha, hasW: p.hasW, nan: NaN },
      [zs.binding, zt.binding, labels.binding, (p.hasW ? weights : zs).binding, loss.binding, grad.binding],
      groupsFor(N, 64),
    );
    return finish(ctx, loss, grad, reduceLoss(loss, p.hasW ? weights : null, 1));
  },
  backward(g, { saved: [grad, scale], inputShapes }) {
    return [scaleGrad(grad, g, scale), ...inputShapes.slice(1).map(() => null)];
  },
});

/**
 * Softmax knowledge-distillation loss (a scalar):
 *   L = sum_i w_i [(1 - alpha) CE(zs_i, y_i) + alpha T^2 KL(softmax(zt_i / T) || softmax(zs_i / T))] / sum_i w_i
 * (w_i = 1 without weights: the mean over N). zs, zt: [N, C] f32; labels: [N] i32.
 * teacherIsProb: zt holds probabilities p and the tempered teacher is softmax(log(p) / T).
 * Only zs gets a gradient. An out-of-range label makes the loss NaN (checked on the GPU, no sync).
 */
export function kdLoss(zs: Tensor, zt: Tensor, labels: Tensor, o: KdOptions): Tensor {
  checkOptions('kdLoss', o);
  const inputs = [zs, zt, labels, ...(o.weights ? [o.weights] : [])];
  return kdOp(inputs, { T: o.T, alpha: o.alpha, hasW: !!o.weights, teacherIsProb: !!o.teacherIsProb });
}

const kdMultiOp = defineOp<KdParams>({
  name: 'kdLossMultiLabel',
  shape([zs, zt, targets, weights], p) {
    const [N, C] = checkLogits('kdLossMultiLabel', zs, zt);
    expectDtype('kdLossMultiLabel', targets, 'f32', 'targets');
    if (targets.shape.length !== 2 || targets.shape[0] !== N || targets.shape[1] !== C)
      throw new ShapeError(`kdLossMultiLabel: targets ${fmt(targets.shape)} do not match logits ${fmt(zs.shape)}`);
    if (p.hasW) {
      expectDtype('kdLossMultiLabel', weights, 'f32', 'weights');
      const perSample = weights.shape.length === 1 && weights.shape[0] === N;
      const perElement = weights.shape.length === 2 && weights.shape[0] === N && weights.shape[1] === C;
      if (!perSample && !perElement) throw new ShapeError(`kdLossMultiLabel: weights ${fmt(weights.shape)} must be [${N}] or [${N}, ${C}] for logits ${fmt(zs.shape)}`);
    }
    return { shape: [], dtype: 'f32' };
  },
  forward([zs, zt, targets, weights], p, ctx) {
    const [, C] = zs.shape;
    const wmode = !p.hasW ? 0 : weights.shape.length === 1 ? 1 : 2;
    const loss = new Tensor([zs.size], 'f32');
    const grad = new Tensor(zs.shape, 'f32');
    dispatch(
      { name: 'kd_multilabel', shader: 'kd_multilabel', defines: { TEACHER_PROB: p.teacherIsProb ? 1 : 0, WMODE: wmode } },
      { n: zs.size, C, T: p.T, alpha: p.alpha },
      [zs.binding, zt.binding, targets.binding, (p.hasW ? weights : zs).binding, loss.binding, grad.binding],
      groupsFor(zs.size),
    );
    return finish(ctx, loss, grad, reduceLoss(loss, p.hasW ? weights : null, wmode === 1 ? C : 1));
  },
  backward(g, { saved: [grad, scale], inputShapes }) {
    return [scaleGrad(grad, g, scale), ...inputShapes.slice(1).map(() => null)];
  },
});

/**
 * Multi-label KD loss (a scalar) over N*C independent binary problems:
 *   L = mean_e w_e [(1 - alpha) BCEwithLogits(zs_e, t_e) + alpha T^2 binKL(sigmoid(zt_e/T) || sigmoid(zs_e/T))]
 * (weighted: sum(w_e l_e) / sum(w_e), with per-sample weights [N] shared by a row's C classes or
 * per-element weights [N, C]). targets: [N, C] f32 in {0, 1} (soft targets in [0, 1] work too).
 * teacherIsProb: zt holds probabilities (tempered through their logit). Only zs gets a gradient.
 */
export function kdLossMultiLabel(zs: Tensor, zt: Tensor, targets: Tensor, o: KdOptions): Tensor {
  checkOptions('kdLossMultiLabel', o);
  const inputs = [zs, zt, targets, ...(o.weights ? [o.weights] : [])];
  return kdMultiOp(inputs, { T: o.T, alpha: o.alpha, hasW: !!o.weights, teacherIsProb: !!o.teacherIsProb });
}
