// gather along an axis, torch.gather semantics (shaders/gather.wgsl, gather_grad.wgsl).
import { defineOp, axisOf, expectDtype } from '../op.ts';
import { Tensor, ShapeError, fmt, type Shape } from '../tensor.ts';
import { dispatch, groupsFor } from '../program.ts';

const MAX_RANK = 8;

function stridesOf(s: Shape): number[] {
  const st = new Array<number>(s.length);
  let acc = 1;
  for (let i = s.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

const gatherOp = defineOp<{ axis: number }>({
  name: 'gather',
  shape([x, index], { axis }) {
    expectDtype('gather', x, 'f32', 'input');
    expectDtype('gather', index, 'i32', 'index');
    if (x.shape.length > MAX_RANK) throw new ShapeError(`gather: rank ${x.shape.length} exceeds ${MAX_RANK}`);
    if (index.shape.length !== x.shape.length || index.shape.some((d, k) => k !== axis && d > x.shape[k]))
      throw new ShapeError(`gather: index ${fmt(index.shape)} must have the rank of input ${fmt(x.shape)} and no larger dims outside axis ${axis}`);
    return { shape: index.shape, dtype: 'f32' };
  },
  forward([x, index], { axis }, ctx) {
    const out = new Tensor(index.shape, 'f32');
    if (ctx.needsGrad) ctx.save(index);
    if (out.size === 0) return out;
    const u = { n: out.size, rank: x.shape.length, axis, len: x.shape[axis], nan: NaN, shape: index.shape, xs: stridesOf(x.shape) };
    dispatch({ name: 'gather', shader: 'gather' }, u, [x.binding, index.binding, out.binding], groupsFor(out.size));
    return out;
  },
  backward(g, { saved: [index], params: { axis }, inputShapes: [xs], inputNeedsGrad }) {
    if (!inputNeedsGrad[0]) return [null, null];
    const dx = new Tensor(xs, 'f32');
    if (dx.size === 0) return [dx, null];
    const u = { n: dx.size, rank: xs.length, axis, ilen: index.shape[axis], xshape: xs, ishape: index.shape, istr: stridesOf(index.shape) };
    dispatch({ name: 'gather_grad', shader: 'gather_grad' }, u, [g.binding, index.binding, dx.binding], groupsFor(dx.size));
    return [dx, null];
  },
});

/**
 * torch.gather: out[i][j][k] = x[i][index[i][j][k]][k] for axis 1 (likewise for any axis).
 * `index` is i32 with x's rank and dims no larger than x's outside `axis`; the output has its
 * shape. Indices must lie in [0, x.shape[axis]): one outside gives NaN (a GPU cannot throw).
 * The gradient flows to x (index is not differentiable). Row pick x[i, idx[i]]: gather(x, idx [N, 1], 1).
 */
export function gather(x: Tensor, index: Tensor, axis: number): Tensor {
  return gatherOp([x, index], { axis: axisOf('gather', axis, x.shape.length) });
}

