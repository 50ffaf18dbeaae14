// sumTo: the gradient rule of broadcasting (sum a broadcast result back to the input's shape).
// Its own module so that binary.ts (which needs it) and reduce.ts (which needs binary ops) do
// not import each other; it calls the reduction kernel directly (backward runs without autograd).
import { type Tensor, type Shape } from '../tensor.ts';
import { reduceRaw } from './reduce-kernel.ts';

/** Sums a broadcast result back to `shape` (the gradient rule of broadcasting). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g.view(shape);
  const lead = g.shape.length - shape.length;
  const axes: number[] = [];
  g.shape.forEach((d, i) => {
    if (i < lead || (shape[i - lead] === 1 && d !== 1)) axes.push(i);
  });
  const flat = reduceRaw(g, axes, 'sum', false);
  const out = flat.view(shape);
  flat.dispose();
  return out;
}
