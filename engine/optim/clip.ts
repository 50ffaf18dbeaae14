// Global L2 gradient clipping (torch.nn.utils.clip_grad_norm_), all on the GPU: per-gradient
// partial sums of squares into one buffer, a one-workgroup total (norm and clip coefficient),
// then an in-place scale of every gradient by the coefficient read from GPU memory, so the
// scaling never waits for the CPU.
import { Tensor, fillTensor } from '../tensor.ts';
import { dispatch, groupsFor } from '../program.ts';

const CHUNK = 256;

/** Clips the gradients in place and returns the total norm (before clipping) as a 1-element tensor, without a readback. */
export function clipGradNormTensor(params: Iterable<Tensor>, maxNorm: number): Tensor {
  if (!(maxNorm >= 0)) throw new RangeError(`clipGradNorm: maxNorm must be >= 0, got ${maxNorm}`);
  const grads = [...new Set(params)].flatMap((p) => (p.grad && p.grad.size > 0 ? [p.grad] : []));
  const norm = new Tensor([], 'f32');
  if (grads.length === 0) {
    fillTensor(norm, 0);
    return norm;
  }
  const counts = grads.map((g) => Math.ceil(g.size / CHUNK));
  const total = counts.reduce((a, b) => a + b, 0);
  const partial = new Tensor([total], 'f32');
  const coef = new Tensor([1], 'f32');
  let offset = 0;
  grads.forEach((g, k) => {
    dispatch({ name: 'grad_norm_sumsq', shader: 'grad_norm_clip_sumsq', defines: { CHUNK } }, { n: g.size, offset }, [g.binding, partial.binding], groupsFor(counts[k], 64));
    offset += counts[k];
  });
  dispatch({ name: 'grad_norm_total', shader: 'grad_norm_clip_total' }, { count: total, maxNorm }, [partial.binding, norm.binding, coef.binding], 1);
  // autograd may hand two parameters gradient handles on one storage (e.g. both inputs of an
  // add): count each in the norm, but scale each storage once
  const storages = new Set(grads.map((g) => g.storage));
  if (maxNorm !== Infinity)
    for (const g of grads) if (storages.delete(g.storage)) dispatch({ name: 'grad_norm_scale', shader: 'grad_norm_clip_scale' }, { n: g.size }, [coef.binding, g.binding], groupsFor(g.size));
  partial.dispose();
  coef.dispose();
  return norm;
}

/** Clips the gradients in place to a global L2 norm of at most maxNorm; resolves to the total norm before clipping. */
export async function clipGradNorm(params: Iterable<Tensor>, maxNorm: number): Promise<number> {
  const norm = clipGradNormTensor(params, maxNorm);
  try {
    return await norm.item();
  } finally {
    norm.dispose();
  }
}
