// In-place kernels outside autograd: gradient accumulation and copies.
import { Tensor, ShapeError } from '../tensor.ts';
import { dispatch, groupsFor } from '../program.ts';
import { launchUnary } from './unary.ts';

/** y += alpha * x (same element count). */
export function axpyInPlace(y: Tensor, x: Tensor, alpha = 1): void {
  if (y.size !== x.size) throw new ShapeError(`axpy: ${x.describe()} does not match ${y.describe()}`);
  const n = y.size % 4 === 0 ? y.size / 4 : y.size;
  dispatch({ name: 'axpy', shader: 'axpy', defines: { E: n === y.size ? 'f32' : 'vec4f' } }, { n, alpha }, [x.binding, y.binding], groupsFor(n));
}

/** dst <- src (same element count), recorded in order with the kernels. */
export function copyInto(dst: Tensor, src: Tensor): void {
  if (dst.size !== src.size) throw new ShapeError(`copy: ${src.describe()} does not match ${dst.describe()}`);
  launchUnary('copy', 'x', src, dst);
}

/** A fresh copy with its own storage. */
export function clone(x: Tensor): Tensor {
  const out = new Tensor(x.shape, x.dtype);
  copyInto(out, x);
  return out;
}

/**
 * Gradient accumulation used by autograd: `into + g`, in place when `into` owns its storage
 * alone (no other handle can observe the write), else into a new tensor.
 */
export function accumulate(into: Tensor | null, g: Tensor): Tensor {
  if (!into) return g.detach();
  if (into.storage.refs === 1) {
    axpyInPlace(into, g);
    return into;
  }
  const out = clone(into);
  axpyInPlace(out, g);
  return out;
}
