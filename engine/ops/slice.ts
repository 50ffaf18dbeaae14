// concat / slice / split along any axis (shaders/concat.wgsl, shaders/slice.wgsl).
// Around an axis a tensor is viewed as [outer, len * inner]: concat copies each input's rows
// into a column window of the output (one launch per input, no chain of pairwise concats) and
// slice reads a column window. Each is the other's backward. Both copy raw words (f32 or i32).
import { defineOp, axisOf, type Meta } from '../op.ts';
import { Tensor, ShapeError, fmt, numel, zeros, type Shape } from '../tensor.ts';
import { dispatch, groupsFor } from '../program.ts';

const innerOf = (s: Shape, axis: number): number => numel(s.slice(axis + 1));

/** [count, row, other row, offset] in vec4s when all are multiples of 4, else unchanged (words). */
const words = (u: number[]): number[] => (u.every((v) => v % 4 === 0) ? u.map((v) => v / 4) : u);

/** Copies src into dst at offset `at` along `axis` (dst matches src on every other axis). */
export function writeAt(dst: Tensor, src: Tensor, axis: number, at: number): void {
  if (src.size === 0) return;
  const inner = innerOf(src.shape, axis);
  const [n, ...u] = words([src.size, src.shape[axis] * inner, dst.shape[axis] * inner, at * inner]);
  dispatch({ name: 'concat', shader: 'concat', defines: { E: n === src.size ? 'u32' : 'vec4u' } }, { n, row: u[0], out_row: u[1], at: u[2] }, [src.binding, dst.binding], groupsFor(n));
}

/** The window [start, start + len) of x along `axis`, as a new tensor. */
export function readAt(x: Tensor, axis: number, start: number, len: number): Tensor {
  const shape = [...x.shape];
  shape[axis] = len;
  const out = new Tensor(shape, x.dtype);
  if (out.size === 0) return out;
  const inner = innerOf(x.shape, axis);
  const [n, ...u] = words([out.size, len * inner, x.shape[axis] * inner, start * inner]);
  dispatch({ name: 'slice', shader: 'slice', defines: { E: n === out.size ? 'u32' : 'vec4u' } }, { n, row: u[0], in_row: u[1], at: u[2] }, [x.binding, out.binding], groupsFor(n));
  return out;
}

// ---- concat -------------------------------------------------------------------------------

const concatOp = defineOp<{ axis: number }>({
  name: 'concat',
  shape(inputs, { axis }): Meta {
    if (inputs.length === 0) throw new ShapeError('concat: needs at least one tensor');
    const first = inputs[0];
    const shape = [...first.shape];
    shape[axis] = 0;
    for (const [i, t] of inputs.entries()) {
      if (t.dtype !== first.dtype) throw new TypeError(`concat: input ${i} is ${fmt(t.shape)} ${t.dtype} but input 0 is ${fmt(first.shape)} ${first.dtype}`);
      if (t.shape.length !== first.shape.length || t.shape.some((d, k) => k !== axis && d !== first.shape[k]))
        throw new ShapeError(`concat: input ${i} ${fmt(t.shape)} does not match input 0 ${fmt(first.shape)} outside axis ${axis}`);
      shape[axis] += t.shape[axis];
    }
    return { shape, dtype: first.dtype };
  },
  forward(inputs, { axis }) {
    const shape = [...inputs[0].shape];
    shape[axis] = inputs.reduce((s, t) => s + t.shape[axis], 0);
    const out = new Tensor(shape, inputs[0].dtype);
    let at = 0;
    for (const t of inputs) {
      writeAt(out, t, axis, at);
      at += t.shape[axis];
    }
    return out;
  },
  backward(g, { params: { axis }, inputShapes, inputNeedsGrad }) {
    let at = 0;
    return inputShapes.map((s, i) => {
      const start = at;
      at += s[axis];
      return inputNeedsGrad[i] ? readAt(g, axis, start, s[axis]) : null;
    });
  },
});

/** Joins tensors along `axis` (negative counts from the end); all other dims must match. */
export function concat(tensors: readonly Tensor[], axis: number): Tensor {
  if (tensors.length === 0) throw new ShapeError('concat: needs at least one tensor');
  return concatOp(tensors, { axis: axisOf('concat', axis, tensors[0].shape.length) });
}

// ---- slice --------------------------------------------------------------------------------

interface SliceParams {
  axis: number;
  start: number;
  end: number;
}

const sliceOp = defineOp<SliceParams>({
  name: 'slice',
  shape([x], { axis, start, end }) {
    const shape = [...x.shape];
    shape[axis] = end - start;
    return { shape, dtype: x.dtype };
  },
  forward: ([x], { axis, start, end }) => readAt(x, axis, start, end - start),
  backward(g, { params: { axis, start }, inputShapes: [s] }) {
    const dx = zeros(s);
    writeAt(dx, g, axis, start);
    return [dx];
  },
});

/**
 * Elements [start, end) along `axis`, Python style: negative indices count from the end and
 * out-of-range bounds are clamped (an empty range gives a size-0 axis). `end` defaults to the end.
 */
export function slice(x: Tensor, axis: number, start: number, end?: number): Tensor {
  const ax = axisOf('slice', axis, x.shape.length);
  const len = x.shape[ax];
  if (!Number.isInteger(start) || (end !== undefined && !Number.isInteger(end))) throw new RangeError(`slice: bounds must be integers, got start ${start}, end ${end}`);
  const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + len : v, 0), len);
  const s = clamp(start);
  const e = Math.max(clamp(end ?? len), s);
  return sliceOp([x], { axis: ax, start: s, end: e });
}

/**
 * Splits x along `axis` into chunks of `sizes` elements (a number: equal chunks of that size,
 * the last one smaller; a list: those sizes, which must add up to the axis length).
 */
export function split(x: Tensor, sizes: number | readonly number[], axis = 0): Tensor[] {
  const ax = axisOf('split', axis, x.shape.length);
  const len = x.shape[ax];
  let list: number[];
  if (typeof sizes === 'number') {
    if (!Number.isInteger(sizes) || sizes <= 0) throw new RangeError(`split: chunk size must be a positive integer, got ${sizes}`);
    list = [];
    for (let at = 0; at < len; at += sizes) list.push(Math.min(sizes, len - at));
  } else {
    list = [...sizes];
    if (list.some((n) => !Number.isInteger(n) || n < 0) || list.reduce((a, b) => a + b, 0) !== len)
      throw new ShapeError(`split: sizes ${fmt(list)} do not add up to ${len}, the length of axis ${ax} of ${x.describe()}`);
  }
  let at = 0;
  return list.map((n) => {
    const t = sliceOp([x], { axis: ax, start: at, end: at + n });
    at += n;
    return t;
  });
}
