// Correctness checks run before any timing: float64 CPU references at the bench shapes.
// Big outputs are judged on a random subset of elements (plus the first and last ones, where
// edge bugs live) computed directly from the definition; every output is also scanned whole
// for NaN/Inf, so an unwritten element (or a kernel that skips a tail) fails too.
import { relL2, maxAbsDiff, seededRandom, type Rng } from '../test/reference/gradcheck.ts';

export interface Check {
  ok: boolean;
  detail: string;
}

export const pass = (detail: string): Check => ({ ok: true, detail });
export const fail = (detail: string): Check => ({ ok: false, detail });

/** Indices to verify: first, last, and `k` random ones (deduplicated, sorted). */
export function sampleIndices(n: number, k: number, rng: Rng): number[] {
  const s = new Set<number>([0, n - 1]);
  while (s.size < Math.min(n, k + 2)) s.add(Math.floor(rng.uniform() * n));
  return [...s].sort((a, b) => a - b);
}

/** Compares got[idx[i]] with want[i]; tolerance on the relative L2 error of the sample. */
export function compareSampled(what: string, got: ArrayLike<number>, idx: readonly number[], want: ArrayLike<number>, tol: number): Check {
  for (let i = 0; i < got.length; i++)
    if (!Number.isFinite(got[i])) return fail(`${what}: element ${i} of ${got.length} is ${got[i]} (unwritten or overflowed)`);
  const g = Float64Array.from(idx, (i) => got[i]);
  const w = Float64Array.from(want);
  const e = relL2(g, w);
  const msg = `${what}: rel. L2 ${e.toExponential(1)} on ${idx.length === got.length ? 'all' : idx.length} of ${got.length} elements`;
  return e < tol ? pass(msg) : fail(`${msg} >= ${tol} (max abs diff ${maxAbsDiff(g, w).toExponential(2)})`);
}

/** Compares whole arrays. */
export function compareAll(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number): Check {
  if (got.length !== want.length) return fail(`${what}: ${got.length} elements, expected ${want.length}`);
  return compareSampled(what, got, Array.from({ length: got.length }, (_, i) => i), want, tol);
}

export function all(...checks: Check[]): Check {
  const bad = checks.find((c) => !c.ok);
  return bad ?? pass(checks.map((c) => c.detail).join('; '));
}

/** Host data for an input: f32 values (what the GPU sees) and the same values in f64. */
export function randomData(n: number, rng: Rng, scale = 1): { f32: Float32Array; f64: Float64Array } {
  const f32 = new Float32Array(n);
  for (let i = 0; i < n; i++) f32[i] = scale * rng.normal();
  return { f32, f64: Float64Array.from(f32) };
}

export { seededRandom, type Rng };

// ---- sampled references ---------------------------------------------------------------------

/** (A @ B)[i, j] for row-major A [M, K], B [K, N]. */
export function matmulAt(a: Float64Array, b: Float64Array, K: number, N: number, flat: number): number {
  const i = Math.floor(flat / N);
  const j = flat % N;
  let s = 0;
  for (let k = 0; k < K; k++) s += a[i * K + k] * b[k * N + j];
  return s;
}

export interface ConvGeom {
  N: number;
  Cin: number;
  H: number;
  W: number;
  Cout: number;
  k: number;
  stride: number;
  pad: number;
  groups: number;
}
export const convOut = (g: ConvGeom): [number, number] => [Math.floor((g.H + 2 * g.pad - g.k) / g.stride) + 1, Math.floor((g.W + 2 * g.pad - g.k) / g.stride) + 1];

/** y[n, co, oh, ow] (NCHW, weights [Cout, Cin/groups, k, k], no bias). */
export function convAt(g: ConvGeom, x: Float64Array, w: Float64Array, flat: number): number {
  const [oH, oW] = convOut(g);
  const ow = flat % oW;
  const oh = Math.floor(flat / oW) % oH;
  const co = Math.floor(flat / (oW * oH)) % g.Cout;
  const n = Math.floor(flat / (oW * oH * g.Cout));
  const cinG = g.Cin / g.groups;
  const ci0 = Math.floor(co / (g.Cout / g.groups)) * cinG;
  let s = 0;
  for (let ci = 0; ci < cinG; ci++)
    for (let kh = 0; kh < g.k; kh++) {
      const ih = oh * g.stride - g.pad + kh;
      if (ih < 0 || ih >= g.H) continue;
      for (let kw = 0; kw < g.k; kw++) {
        const iw = ow * g.stride - g.pad + kw;
        if (iw < 0 || iw >= g.W) continue;
        s += x[((n * g.Cin + ci0 + ci) * g.H + ih) * g.W + iw] * w[((co * cinG + ci) * g.k + kh) * g.k + kw];
      }
    }
  return s;
}

/** dx[n, ci, ih, iw] given gy (the gradient of y). */
export function convDxAt(g: ConvGeom, w: Float64Array, gy: Float64Array, flat: number): number {
  const [oH, oW] = convOut(g);
  const iw = flat % g.W;
  const ih = Math.floor(flat / g.W) % g.H;
  const ci = Math.floor(flat / (g.W * g.H)) % g.Cin;
  const n = Math.floor(flat / (g.W * g.H * g.Cin));
  const cinG = g.Cin / g.groups;
  const coutG = g.Cout / g.groups;
  const grp = Math.floor(ci / cinG);
  const cl = ci - grp * cinG;
  let s = 0;
  for (let co = grp * coutG; co < (grp + 1) * coutG; co++)
    for (let kh = 0; kh < g.k; kh++) {
      const th = ih + g.pad - kh;
      if (th < 0 || th % g.stride !== 0 || th / g.stride >= oH) continue;
      const oh = th / g.stride;
      for (let kw = 0; kw < g.k; kw++) {
        const tw = iw + g.pad - kw;
        if (tw < 0 || tw % g.stride !== 0 || tw / g.stride >= oW) continue;
        s += gy[((n * g.Cout + co) * oH + oh) * oW + tw / g.stride] * w[((co * cinG + cl) * g.k + kh) * g.k + kw];
      }
    }
  return s;
}

/** dw[co, ci, kh, kw] given gy. */
export function convDwAt(g: ConvGeom, x: Float64Array, gy: Float64Array, flat: number): number {
  const [oH, oW] = convOut(g);
  const kw = flat % g.k;
  const kh = Math.floor(flat / g.k) % g.k;
  const cinG = g.Cin / g.groups;
  const cl = Math.floor(flat / (g.k * g.k)) % cinG;
  const co = Math.floor(flat / (g.k * g.k * cinG));
  const ci = Math.floor(co / (g.Cout / g.groups)) * cinG + cl;
  let s = 0;
  for (let n = 0; n < g.N; n++)
    for (let oh = 0; oh < oH; oh++) {
      const ih = oh * g.stride - g.pad + kh;
      if (ih < 0 || ih >= g.H) continue;
      const yRow = ((n * g.Cout + co) * oH + oh) * oW;
      const xRow = ((n * g.Cin + ci) * g.H + ih) * g.W;
      for (let ow = 0; ow < oW; ow++) {
        const iw = ow * g.stride - g.pad + kw;
        if (iw < 0 || iw >= g.W) continue;
        s += gy[yRow + ow] * x[xRow + iw];
      }
    }
  return s;
}
