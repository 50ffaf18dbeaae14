// Reductions over any set of axes: sum, mean, max, var (shaders/reduce.wgsl).
// The input is viewed as [outer, R, inner]; non-adjacent reduced axes are permuted together first.
import { defineOp, axisOf } from '../op.ts';
import { Tensor, ShapeError, fmt, type Shape } from '../tensor.ts';
import { dispatch, f32, grid } from '../program.ts';
import { permute, reshape } from './shape.ts';
import { add, sub, mul, div, eq } from './binary.ts';
import { mulScalar } from './unary.ts';

type Kind = 'sum' | 'max';
const KERNEL: Record<Kind, { INIT: string; ACC: string }> = {
  sum: { INIT: '0.0', ACC: 'acc + v' },
  max: { INIT: '-0x1.fffffep+127f', ACC: 'max(acc, v)' },
};

/** Reduces [outer, r, inner] over r. Long reductions with few outputs go in two passes (chunks of 1024, the last one partial) so work spreads over threads. */
function reduce3(x: Tensor, outer: number, r: number, inner: number, kind: Kind, scale: number): Tensor {
  if (outer * inner < 4096 && r > 2048) {
    const chunk = 1024;
    const nchunks = Math.ceil(r / chunk);
    const partial = new Tensor([outer * nchunks * inner], 'f32');
    dispatch({ name: `reduce_${kind}`, shader: 'reduce', defines: KERNEL[kind] }, [outer, r, inner, f32(1), chunk, nchunks], [x.binding, partial.binding], grid(Math.ceil(partial.size / 256)));
    const out = reduce3(partial, outer, nchunks, inner, kind, scale);
    partial.dispose();
    return out;
  }
  const out = new Tensor([outer * inner], 'f32');
  dispatch({ name: `reduce_${kind}`, shader: 'reduce', defines: KERNEL[kind] }, [outer, r, inner, f32(scale), r, 1], [x.binding, out.binding], grid(Math.ceil((outer * inner) / 256)));
  return out;
}

function normAxes(op: string, axes: number | readonly number[] | undefined, rank: number): number[] {
  const list = axes === undefined ? [...Array(rank).keys()] : typeof axes === 'number' ? [axes] : [...axes];
  const norm = [...new Set(list.map((a) => axisOf(op, a, rank)))].sort((a, b) => a - b);
  return norm;
}

function outShape(shape: Shape, axes: number[], keepdim: boolean): number[] {
  return keepdim ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

/** Runs the kernel for any axis set (no autograd). */
function reduceRaw(x: Tensor, axes: number[], kind: Kind, mean: boolean): Tensor {
  const s = x.shape;
  let src = x;
  let permuted: Tensor | null = null;
  const contiguous = axes.every((a, i) => i === 0 || a === axes[i - 1] + 1);
  let first = axes[0] ?? 0;
  if (!contiguous) {
    const keepAxes = s.map((_, i) => i).filter((i) => !axes.includes(i));
    permuted = permute(x, [...keepAxes, ...axes]);
    src = permuted;
    first = keepAxes.length;
  }
  const srcShape = src.shape;
  const r = axes.reduce((a, ax) => a * s[ax], 1);
  const outer = srcShape.slice(0, first).reduce((a, b) => a * b, 1);
  const inner = src.size / Math.max(1, outer * r);
  if (r === 0) throw new ShapeError(`${kind}: cannot reduce over an empty axis of ${fmt(s)}`);
  const out = reduce3(src, outer, r, inner || 1, kind, mean ? 1 / r : 1);
  permuted?.dispose();
  return out;
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
  const z = new Tensor(s, 'f32');
  dispatch({ name: 'fill', shader: 'fill' }, [z.size, 0], [z.binding], grid(Math.ceil(z.size / 256)));
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

/** Sums a broadcast result back to `shape` (the gradient rule of broadcasting). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g.view(shape);
  const lead = g.shape.length - shape.length;
  const axes: number[] = [];
  g.shape.forEach((d, i) => {
    if (i < lead || (shape[i - lead] === 1 && d !== 1)) axes.push(i);
  });
  const s = sum(g, axes, { keepdim: true });
  const out = reshape(s, shape);
  s.dispose();
  return out;
}
