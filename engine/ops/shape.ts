// Shape ops: reshape (a free view) and permute/transpose (a copy through a kernel).
import { defineOp, axisOf } from '../op.ts';
import { Tensor, ShapeError, fmt, numel, type Shape } from '../tensor.ts';
import { dispatch, groupsFor } from '../program.ts';

const reshapeOp = defineOp<{ shape: number[] }>({
  name: 'reshape',
  shape([x], { shape }) {
    if (numel(shape) !== numel(x.shape)) throw new ShapeError(`reshape: cannot reshape ${fmt(x.shape)} (${numel(x.shape)} elements) to ${fmt(shape)}`);
    return { shape, dtype: x.dtype };
  },
  forward: ([x], { shape }) => x.view(shape),
  backward: (g, { inputShapes: [s] }) => [g.view(s)],
});

/** Reshape (a view: no copy). One dimension may be -1. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const known = shape.filter((d) => d !== -1);
  const inferred = shape.length - known.length;
  if (inferred > 1) throw new ShapeError(`reshape: more than one -1 in ${fmt(shape)}`);
  const full = inferred ? shape.map((d) => (d === -1 ? x.size / Math.max(1, numel(known)) : d)) : [...shape];
  if (full.some((d) => !Number.isInteger(d))) throw new ShapeError(`reshape: cannot reshape ${x.describe()} to ${fmt(shape)}`);
  return reshapeOp([x], { shape: full });
}

export const flatten = (x: Tensor, startDim = 1): Tensor => reshape(x, [...x.shape.slice(0, startDim), -1]);

const MAX_RANK = 8;
function launchPermute(x: Tensor, perm: readonly number[]): Tensor {
  const shape = perm.map((p) => x.shape[p]);
  const strides: number[] = [];
  let acc = 1;
  for (let i = x.shape.length - 1; i >= 0; i--) {
    strides[i] = acc;
    acc *= x.shape[i];
  }
  const out = new Tensor(shape, x.dtype);
  const u = { n: out.size, rank: shape.length, shape, in_strides: perm.map((p) => strides[p]) };
  dispatch({ name: 'permute', shader: 'permute' }, u, [x.binding, out.binding], groupsFor(out.size));
  return out;
}

const permuteOp = defineOp<{ perm: number[] }>({
  name: 'permute',
  shape([x], { perm }) {
    const r = x.shape.length;
    if (r > MAX_RANK) throw new ShapeError(`permute: rank ${r} exceeds ${MAX_RANK}`);
    if (perm.length !== r || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) throw new ShapeError(`permute: ${fmt(perm)} is not a permutation of the axes of ${fmt(x.shape)}`);
    return { shape: perm.map((p) => x.shape[p]), dtype: x.dtype };
  },
  forward: ([x], { perm }) => (perm.every((p, i) => p === i) ? x.view(x.shape) : launchPermute(x, perm)),
  backward(g, { params: { perm } }) {
    const inv = new Array<number>(perm.length);
    perm.forEach((p, i) => (inv[p] = i));
    return [inv.every((p, i) => p === i) ? g.view(g.shape) : launchPermute(g, inv)];
  },
});

export function permute(x: Tensor, perm: readonly number[]): Tensor {
  return permuteOp([x], { perm: perm.map((p) => axisOf('permute', p, x.shape.length)) });
}

/** Swaps two axes (default: the last two). */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const r = x.shape.length;
  const perm = [...Array(r).keys()];
  const i = axisOf('transpose', a, r);
  const j = axisOf('transpose', b, r);
  [perm[i], perm[j]] = [perm[j], perm[i]];
  return permute(x, perm);
}
