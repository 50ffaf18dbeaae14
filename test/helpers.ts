// Shared test helpers: device init with poisoned buffers, GPU vs float64 comparisons.
import * as rk from '../engine/index.ts';
import { relL2, maxAbsDiff } from './reference/gradcheck.ts';

/** Opens the device and poisons every new buffer with NaN so unwritten outputs fail. */
export async function gpuInit(): Promise<void> {
  await rk.init();
  rk.setPoison(true);
}

export async function read64(t: rk.Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.toArray());
}

/**
 * Throws with a readable message unless rel. L2 error < tol (or, when `atol` is given, every
 * element is within atol: tiny values carry float32 rounding of the inputs) and no NaN/Inf appears.
 */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string, atol = 0): void {
  if (got.length !== want.length) throw new Error(`${what}: length ${got.length} != ${want.length}`);
  for (let i = 0; i < got.length; i++)
    if (!Number.isFinite(got[i]) && Number.isFinite(want[i])) throw new Error(`${what}: element ${i} is ${got[i]} (expected ${want[i]}): unwritten or overflowed`);
  const g = Float64Array.from(got);
  const w = Float64Array.from(want);
  const e = relL2(g, w);
  if (!(e < tol) && !(maxAbsDiff(g, w) < atol)) throw new Error(`${what}: rel. L2 error ${e.toExponential(2)} >= ${tol} (max abs diff ${maxAbsDiff(g, w).toExponential(2)})`);
}

export { rk };
