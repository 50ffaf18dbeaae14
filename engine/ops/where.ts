// where(mask, a, b): elementwise select with NumPy broadcasting of all three (shaders/where.wgsl).
import { defineOp, expectDtype } from '../op.ts';
import { Tensor, ShapeError, fmt, full, type Shape } from '../tensor.ts';
import { dispatch, groupsFor } from '../program.ts';
import { broadcastShapes } from './binary.ts';
import { sumTo } from './sum-to.ts';

const MAX_RANK = 8;

function strides(s: Shape, out: Shape): number[] {
  const st = new Array<number>(MAX_RANK).fill(0);
  let acc = 1;
  for (let i = s.length - 1; i >= 0; i--) {
    st[out.length - s.length + i] = s[i] === 1 ? 0 : acc;
    acc *= s[i];
  }
  return st;
}

function outShape(m: Shape, a: Shape, b: Shape): number[] {
  try {
    return broadcastShapes('where', broadcastShapes('where', m, a), b);
  } catch {
    throw new ShapeError(`where: mask ${fmt(m)}, a ${fmt(a)} and b ${fmt(b)} do not broadcast together`);
  }
}

function whereRaw(mask: Tensor, a: Tensor, b: Tensor): Tensor {
  const shape = outShape(mask.shape, a.shape, b.shape);
  const out = new Tensor(shape, 'f32');
  if (out.size === 0) return out;
  const u = { n: out.size, rank: shape.length, shape, sm: strides(mask.shape, shape), sa: strides(a.shape, shape), sb: strides(b.shape, shape) };
  dispatch({ name: 'where', shader: 'where' }, u, [mask.binding, a.binding, b.binding, out.binding], groupsFor(out.size));
  return out;
}

const whereOp = defineOp<Record<string, never>>({
  name: 'where',
  shape([m, a, b]) {
    expectDtype('where', m, 'f32', 'mask');
    expectDtype('where', a, 'f32', 'a');
    expectDtype('where', b, 'f32', 'b');
    return { shape: outShape(m.shape, a.shape, b.shape), dtype: 'f32' };
  },
  forward([m, a, b], _p, ctx) {
    if (ctx.needsGrad) ctx.save(m);
    return whereRaw(m, a, b);
  },
  backward(g, { saved: [m], inputShapes, inputNeedsGrad }) {
    const zero = full([], 0);
    const ga = inputNeedsGrad[1] ? sumTo(whereRaw(m, g, zero), inputShapes[1]) : null;
    const gb = inputNeedsGrad[2] ? sumTo(whereRaw(m, zero, g), inputShapes[2]) : null;
    return [null, ga, gb]; // the mask is not differentiable
  },
});

/** mask != 0 ? a : b elementwise (mask is an f32 0/1 tensor, e.g. from rk.gt); all three broadcast. */
export function where(mask: Tensor, a: Tensor, b: Tensor): Tensor {
  return whereOp([mask, a, b], {});
}
