// The reduction kernel (shaders/reduce.wgsl) over any set of axes, without autograd: used by
// the ops in reduce.ts and by sumTo. The input is viewed as [outer, R, inner]; non-adjacent
// reduced axes are permuted together first.
import { Tensor, ShapeError, fmt } from '../tensor.ts';
import { dispatch, groupsFor } from '../program.ts';
import { permute } from './shape.ts';

export type Kind = 'sum' | 'max';
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
    dispatch({ name: `reduce_${kind}`, shader: 'reduce', defines: KERNEL[kind] }, { outer, r, inner, scale: 1, chunk, nchunks }, [x.binding, partial.binding], groupsFor(partial.size));
    const out = reduce3(partial, outer, nchunks, inner, kind, scale);
    partial.dispose();
    return out;
  }
  const out = new Tensor([outer * inner], 'f32');
  dispatch({ name: `reduce_${kind}`, shader: 'reduce', defines: KERNEL[kind] }, { outer, r, inner, scale, chunk: r, nchunks: 1 }, [x.binding, out.binding], groupsFor(outer * inner));
  return out;
}

/** Runs the kernel for any axis set (no autograd). */
export function reduceRaw(x: Tensor, axes: number[], kind: Kind, mean: boolean): Tensor {
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
