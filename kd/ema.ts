// Weight copies between two models of the same architecture, and the exponential moving average
// of a student's weights (--ema) that is evaluated and saved instead of the raw weights.
import * as rk from '../engine/index.ts';

export type Module = rk.nn.Module;

/** Copies all of src's parameters and buffers into dst (same architecture). */
export function copyWeights(dst: Module, src: Module): void {
  const s = new Map([...src.namedParameters(), ...src.namedBuffers()]);
  for (const [n, t] of [...dst.namedParameters(), ...dst.namedBuffers()]) rk.copyInto(t, s.get(n)!);
  const si = new Map(src.namedIntBuffers());
  for (const [n, b] of dst.namedIntBuffers()) b.value = si.get(n)!.value;
}

/** ema <- d ema + (1 - d) model for parameters; buffers copied. */
export function emaUpdate(ema: Module, model: Module, d: number): void {
  const m = new Map(model.namedParameters());
  rk.noGrad(() =>
    rk.tidy(() => {
      for (const [n, e] of ema.namedParameters()) rk.axpyInPlace(e, rk.sub(m.get(n)!, e), 1 - d);
      const b = new Map(model.namedBuffers());
      for (const [n, e] of ema.namedBuffers()) rk.copyInto(e, b.get(n)!);
    }),
  );
  const mi = new Map(model.namedIntBuffers());
  for (const [n, x] of ema.namedIntBuffers()) x.value = mi.get(n)!.value;
}
