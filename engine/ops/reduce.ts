// Reductions over any set of axes as differentiable ops: sum, mean, max, var (the kernel launch
// is in reduce-kernel.ts).
import { defineOp, axisOf } from '../op.ts';
import { Tensor, zeros, fmt, type Shape } from '../tensor.ts';
import { add, sub, mul, div, eq } from './binary.ts';
import { mulScalar } from './unary.ts';
import { reduceRaw } from './reduce-kernel.ts';

function normAxes(op: string, axes: number | readonly number[] | undefined, rank: number): number[] {
  const list = axes === undefined ? [...Array(rank).keys()] : typeof axes === 'number' ? [axes] : [...axes];
  const norm = [...new Set(list.map((a) => axisOf(op, a, rank)))].sort((a, b) => a - b);
  return norm;
}

function outShape(shape: Shape, axes: number[], keepdim: boolean): number[] {
  return keepdim ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

interface ReduceParams {
  axes: number[];
  keepdim: boolean;
}

function makeReduce(name: 'sum' | 'mean' | 'max') {
  return defineOp<ReduceParams>({
    name,
    shape([x], { axes, keepdim }) {
      if (x.dtype !== 'f32') throw new TypeError(`${name}: input must be f32, got ${fmt(x.shape)} ${x.dtype}`);
      return { shape: outShape(x.shape, axes, keepdim), dtype: 'f32' };
    },
    forward([x], { axes, keepdim }, ctx) {
      const flat = reduceRaw(x, axes, name === 'max' ? 'max' : 'sum', name === 'mean');
      const out = flat.view(outShape(x.shape, axes, keepdim));
      flat.dispose();
      if (ctx.needsGrad && name === 'max') ctx.save(x, out);
      return out;
    },
    backward(g, { params: { axes }, inputShapes: [s], saved }) {
      const gk = g.view(outShape(s, axes, true)); // broadcastable against the input
      const r = axes.reduce((a, ax) => a * s[ax], 1);
      if (name === 'sum') return [expandTo(gk, s)];
      if (name === 'mean') return [mulScalar(expandTo(gk, s), 1 / r)];
      // max: split the gradient evenly between tied maxima (like torch.amax)
      const [x, y] = saved;
      const mask = eq(x, y.view(outShape(s, axes, true)));
      const count = reduceRaw(mask, axes, 'sum', false).view(outShape(s, axes, true));
      return [mul(mask, div(gk, count))];
    },
  });
}

const ops = { sum: makeReduce('sum'), mean: makeReduce('mean'), max: makeReduce('max') };

/** Broadcast g (same rank, size-1 dims) to shape s by adding zeros: cheap enough and autograd-free. */
function expandTo(g: Tensor, s: Shape): Tensor {
  if (g.shape.every((d, i) => d === s[i])) return g.view(s);
  const z = zeros(s);
  const out = add(z, g);
  z.dispose();
  return out;
}

export interface ReduceOptions {
  keepdim?: boolean;
}
export const sum = (x: Tensor, axes?: number | readonly number[], o: ReduceOptions = {}): Tensor =>
  ops.sum([x], { axes: normAxes('sum', axes, x.shape.length), keepdim: o.keepdim ?? false });
export const mean = (x: Tensor, axes?: number | readonly number[], o: ReduceOptions = {}): Tensor =>
  ops.mean([x], { axes: normAxes('mean', axes, x.shape.length), keepdim: o.keepdim ?? false });
export const max = (x: Tensor, axes?: number | readonly number[], o: ReduceOptions = {}): Tensor =>
  ops.max([x], { axes: normAxes('max', axes, x.shape.length), keepdim: o.keepdim ?? false });

/** Variance over axes; biased (population) by default, `unbiased: true` divides by n - 1. */
export function variance(x: Tensor, axes?: number | readonly number[], o: ReduceOptions & { unbiased?: boolean } = {}): Tensor {
  const ax = normAxes('var', axes, x.shape.length);
  const n = ax.reduce((a, i) => a * x.shape[i], 1);
  const m = mean(x, ax, { keepdim: true });
  const d = sub(x, m);
  const sq = mul(d, d);
  const s = sum(sq, ax, { keepdim: o.keepdim ?? false });
  const out = mulScalar(s, 1 / Math.max(1, n - (o.unbiased ? 1 : 0)));
  for (const t of [m, d, sq, s]) t.dispose();
  return out;
}
