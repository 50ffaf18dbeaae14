// Winograd F(MxM, 3x3) convolution for stride-1, dilation-1, ungrouped 3x3 convs (Lavin & Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2015): y tile = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d Bᵀᵀ) ] A
// summed over input channels, i.e. T = (M+2)² independent GEMMs V[k] [tiles x Cin] x U[k] [Cin x Cout]
// between an input transform and an output transform. F(2x2) does 16 multiplies per 4 outputs
// where the direct conv does 36 (2.25x fewer), F(4x4) 36 per 16 (4x fewer).
//   1. weight transform (conv2d_winograd_weight): U [T][Cin4][Cout4], once per call;
//   2. input transform (conv2d_winograd_input_direct, reading x with bounds checks; or
//      conv2d_winograd_input on a zero-padded copy, winogradTuning.direct = false): V [T][tiles][Cin4];
//   3. the T GEMMs: the batched matmul kernel (shaders/matmul.wgsl), M [T][tiles][Cout4];
//   4. output transform (+ bias) (conv2d_winograd_output) into y (NCHW).
// Cin4 / Cout4: the channels rounded up to 4 (zero rows / columns), so every operand is read as
// vec4. Backward-data of such a conv is one of these with the filters flipped and transposed
// (the weight transform's TRANSPOSE). Large batches run in chunks of images so that V and M stay
// within one storage binding.
import { Tensor } from '../tensor.ts';
import { dispatch, groupsFor } from '../program.ts';
import { getGpu } from '../device.ts';
import { matmulRaw } from './matmul.ts';
import type { ConvGeometry } from './conv.ts';

type Mat = readonly (readonly number[])[];

/** The transform matrices of F(MxM, 3x3): input Bᵀ (α x α), filter G (α x 3), output Aᵀ (M x α), α = M + 2. */
interface Transforms {
  M: number;
  BT: Mat;
  G: Mat;
  AT: Mat;
}

const F2: Transforms = {
  M: 2,
  BT: [
    [1, 0, -1, 0],
    [0, 1, 1, 0],
    [0, -1, 1, 0],
    [0, 1, 0, -1],
  ],
  G: [
    [1, 0, 0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0, 0, 1],
  ],
  AT: [
    [1, 1, 1, 0],
    [0, 1, -1, -1],
  ],
};

const F4: Transforms = {
  M: 4,
  BT: [
    [4, 0, -5, 0, 1, 0],
    [0, -4, -4, 1, 1, 0],
    [0, 4, -4, -1, 1, 0],
    [0, -2, -1, 2, 1, 0],
    [0, 2, -1, -2, 1, 0],
    [0, 4, 0, -5, 0, 1],
  ],
  G: [
    [1 / 4, 0, 0],
    [-1 / 6, -1 / 6, -1 / 6],
    [-1 / 6, 1 / 6, -1 / 6],
    [1 / 24, 1 / 12, 1 / 6],
    [1 / 24, -1 / 12, 1 / 6],
    [0, 0, 1],
  ],
  AT: [
    [1, 1, 1, 1, 1, 0],
    [0, 1, -1, 2, -2, 0],
    [0, 1, 1, 4, 4, 0],
    [0, 1, -1, 8, -8, 1],
  ],
};

/**
 * Test/bench hooks: `M` picks the output tile (2: F(2x2,3x3), 4: F(4x4,3x3), the default);
 * `chunkBytes` caps V and M below the device's binding limit (tests: forces several chunks).
 */
export const winogradTuning: {
  M?: 2 | 4;
  /** false: the forward does not keep its V for the weight gradient (which then transforms x again) */
  keepV?: boolean;
  chunkBytes?: number;
  /** output tiles per input-transform lane (default 4 / M: one 4-column group) */
  laneTiles?: number;
  /** false: the output transform stores scalars, not whole vec4 tile rows (where Wo % 4 == 0, F(4x4)) */
  vec4Out?: boolean;
  /** false: the input transform reads a zero-padded copy of x (conv2d_pad) instead of x itself */
  direct?: boolean;
} = {};

const transformsFor = (M: number): Transforms => (M === 4 ? F4 : F2);

/** The conv as Winograd runs it: `Cin` -> `Cout` channels, stride 1, 3x3 taps, padding top/left (negative: crop). */
export interface WinogradJob {
  N: number;
  Cin: number;
  H: number;
  W: number;
  Cout: number;
  pt: number;
  pl: number;
  Ho: number;
  Wo: number;
}

// ---- code generation ----------------------------------------------------------------------

const lit = (c: number) => (Number.isInteger(c) ? `${c}.0` : `${c}`);

/** sum_i c[i] * names[i] as WGSL, skipping zero coefficients and multiplies by ±1. */
function lin(c: readonly number[], names: readonly string[]): string {
  let s = '';
  c.forEach((k, i) => {
    if (k === 0) return;
    const mag = Math.abs(k) === 1 ? names[i] : `${lit(Math.abs(k))} * ${names[i]}`;
    s += s === '' ? (k < 0 ? `-${mag}` : mag) : k < 0 ? ` - ${mag}` : ` + ${mag}`;
  });
  return s === '' ? 'vec4f(0.0)' : s;
}

/**
 * Code for out = L X Rᵀ with X the named a x b values (vec4s): `out(i, j)` names entry (i, j) of
 * the result. Returns the statements; the result entries are `let` values named `${p}{i}_{j}`.
 */
function sandwich(L: Mat, X: readonly (readonly string[])[], R: Mat, p: string): string[] {
  const out: string[] = [];
  const tmp = L.map((row, i) => X[0].map((_, c) => `${p}t${i}_${c}`));
  L.forEach((row, i) => X[0].forEach((_, c) => out.push(`let ${tmp[i][c]} = ${lin(row, X.map((r) => r[c]))};`)));
  L.forEach((_, i) => R.forEach((rrow, j) => out.push(`let ${p}${i}_${j} = ${lin(rrow, tmp[i])};`)));
  return out;
}

/**
 * Output tiles per input-transform lane (`winogradTuning.laneTiles`, else 4 / M): TT * M a
 * multiple of 4 columns, so each lane's window starts on a vec4 (padded input) or at the same
 * place in its vec4 in every lane (direct read).
 */
function tilesPerLane(M: number): number {
  const TT = winogradTuning.laneTiles ?? 4 / M;
  if (!Number.isInteger(TT) || TT < 1 || (TT * M) % 4 !== 0) throw new Error(`conv2d: winogradTuning.laneTiles ${TT} with F(${M}x${M}): tiles x ${M} must be a multiple of 4`);
  return TT;
}

function inputBody(t: Transforms): string {
  const a = t.M + 2;
  const TT = tilesPerLane(t.M);
  const NV = Math.ceil((TT * t.M + 2) / 4);
  const L: string[] = [];
  for (let q = 0; q < 4; q++)
    for (let r = 0; r < a; r++)
      for (let v = 0; v < NV; v++) L.push(`let x${q}_${r}_${v} = select(vec4f(0.0), x[xo[${q}] + ${r}u * W4 + ${v}u], ok[${q}] != 0.0);`);
  L.push('let kS = p.P * p.C4;', 'let vb = p0 * p.C4 + c4;');
  for (let tt = 0; tt < TT; tt++) {
    const d = Array.from({ length: a }, (_, r) =>
      Array.from({ length: a }, (_, c) => {
        const col = tt * t.M + c;
        return `vec4f(${[0, 1, 2, 3].map((q) => `x${q}_${r}_${col >> 2}[${col & 3}]`).join(', ')})`;
      }),
    );
    L.push(`if (tw0 + ${tt}u < p.tilesW) {`);
    for (let r = 0; r < a; r++) for (let c = 0; c < a; c++) L.push(`  let d${tt}_${r}_${c} = ${d[r][c]};`);
    const names = d.map((row, r) => row.map((_, c) => `d${tt}_${r}_${c}`));
    for (const s of sandwich(t.BT, names, t.BT, `v${tt}_`)) L.push(`  ${s}`);
    for (let i = 0; i < a; i++) for (let j = 0; j < a; j++) L.push(`  v[vb + ${tt}u * p.C4 + ${i * a + j}u * kS] = v${tt}_${i}_${j};`);
    L.push('}');
  }
  return L.join('\n  ');
}

/**
 * The direct-read input transform (conv2d_winograd_input_direct): loads of the window from x
 * itself, each value zero outside x (row, column or channel out of range). `offs` (vec4 loads,
 * where H * W % 4 == 0): for each window row, where its first value sits in its aligned vec4
 * (0-3, the same for every lane: see inputTransform); the row is read as the vec4s covering it.
 * null: scalar loads. Index arithmetic and masks are computed once per row, not per load: on
 * SwiftShader that took ~28 % off this kernel (lavapipe: neutral; its cost is the loads).
 */
function inputDirectBody(t: Transforms, offs: readonly number[] | null): string {
  const a = t.M + 2;
  const TT = tilesPerLane(t.M);
  const width = TT * t.M + 2;
  const L: string[] = [];
  // validity: per (channel, row) and per column, combined once per value
  for (let q = 0; q < 4; q++) for (let r = 0; r < a; r++) L.push(`let m${q}_${r} = ok[${q}] && ih0 + ${r} >= 0 && ih0 + ${r} < H;`);
  for (let c = 0; c < width; c++) L.push(`let cok${c} = cb0 + ${c} >= 0 && cb0 + ${c} < W;`);
  // loads: the row's first value e + r*W (may lie outside x; u32 of a negative index is huge, so min() clamps both ends)
  if (offs) for (let r = 0; r < a; r++) L.push(`let rw${r} = ${r} * W - ${offs[r]};`);
  for (let q = 0; q < 4; q++) {
    L.push(`let e${q} = xo[${q}] + ih0 * W + cb0;`);
    for (let r = 0; r < a; r++) {
      if (offs) {
        L.push(`let a${q}_${r} = (e${q} + rw${r}) >> 2u;`); // a multiple of 4: exact
        const nv = Math.ceil((offs[r] + width) / 4);
        for (let v = 0; v < nv; v++) L.push(`let x${q}_${r}_${v} = x[min(u32(a${q}_${r} + ${v}), lastU)];`);
      } else {
        L.push(`let a${q}_${r} = e${q} + ${r} * W;`);
        for (let c = 0; c < width; c++) L.push(`let x${q}_${r}_${c} = x[min(u32(a${q}_${r} + ${c}), lastU)];`);
      }
    }
  }
  const el = (q: number, r: number, col: number) => {
    const raw = offs ? `x${q}_${r}_${(offs[r] + col) >> 2}[${(offs[r] + col) & 3}]` : `x${q}_${r}_${col}`;
    return `select(0.0, ${raw}, m${q}_${r} && cok${col})`;
  };
  L.push('let kS = p.P * p.C4;', 'let vb = p0 * p.C4 + c4;');
  for (let tt = 0; tt < TT; tt++) {
    L.push(`if (tw0 + ${tt}u < p.tilesW) {`);
    for (let r = 0; r < a; r++) for (let c = 0; c < a; c++) L.push(`  let d${tt}_${r}_${c} = vec4f(${[0, 1, 2, 3].map((q) => el(q, r, tt * t.M + c)).join(', ')});`);
    const names = Array.from({ length: a }, (_, r) => Array.from({ length: a }, (_, c) => `d${tt}_${r}_${c}`));
    for (const s of sandwich(t.BT, names, t.BT, `v${tt}_`)) L.push(`  ${s}`);
    for (let i = 0; i < a; i++) for (let j = 0; j < a; j++) L.push(`  v[vb + ${tt}u * p.C4 + ${i * a + j}u * kS] = v${tt}_${i}_${j};`);
    L.push('}');
  }
  return L.join('\n  ');
}

/** `vec4Rows`: y bound as vec4s, each tile row one aligned vec4 store (M = 4, Wo % 4 == 0). */
function outputCode(t: Transforms, vec4Rows = false): { BODY: string; STORE: string; Y_ELEM: string } {
  const a = t.M + 2;
  const L: string[] = [];
  const names = Array.from({ length: a }, (_, i) => Array.from({ length: a }, (_, j) => `m${i}_${j}`));
  for (let i = 0; i < a; i++) for (let j = 0; j < a; j++) L.push(`let m${i}_${j} = m[mo + ${i * a + j}u * kStride];`);
  L.push(...sandwich(t.AT, names, t.AT, 'o'));
  const S: string[] = [];
  for (let i = 0; i < t.M; i++) {
    S.push(`if (oh0 + ${i}u < p.Ho) {`);
    if (vec4Rows) S.push(`  y[(yb + ${i}u * p.Wo) / 4u] = vec4f(${Array.from({ length: t.M }, (_, j) => `o${i}_${j}[q]`).join(', ')}) + bv[q];`);
    else for (let j = 0; j < t.M; j++) S.push(`  if (ow0 + ${j}u < p.Wo) { y[yb + ${i}u * p.Wo + ${j}u] = o${i}_${j}[q] + bv[q]; }`);
    S.push('}');
  }
  return { BODY: L.join('\n  '), STORE: S.join('\n    '), Y_ELEM: vec4Rows ? 'vec4f' : 'f32' };
}

function weightBody(t: Transforms): string {
  const a = t.M + 2;
  const L: string[] = [];
  const names = [0, 1, 2].map((kh) => [0, 1, 2].map((kw) => `g${kh}_${kw}`));
  for (let k = 0; k < 9; k++) L.push(`let g${Math.floor(k / 3)}_${k % 3} = vec4f(${[0, 1, 2, 3].map((q) => `tap(ci, co + ${q}u, ${k}u)`).join(', ')});`);
  L.push(...sandwich(t.G, names, t.G, 'u'));
  for (let i = 0; i < a; i++) for (let j = 0; j < a; j++) L.push(`u[uo + ${i * a + j}u * kStride] = u${i}_${j};`);
  return L.join('\n  ');
}

const transpose = (m: Mat): Mat => m[0].map((_, c) => m.map((row) => row[c]));

/** Weight gradient: the gy tile transform A gy Aᵀ (gy read as scalars, zero past Ho / Wo). */
function gyBody(t: Transforms): string {
  const L: string[] = [];
  for (let i = 0; i < t.M; i++)
    for (let j = 0; j < t.M; j++) {
      L.push(`let ok${i}_${j} = oh0 + ${i}u < p.Ho && ow0 + ${j}u < p.Wo; let of${i}_${j} = select(0u, ${i}u * p.Wo + ${j}u, ok${i}_${j});`);
      L.push(`let y${i}_${j} = vec4f(${[0, 1, 2, 3].map((q) => `select(0.0, gy[gb[${q}] + of${i}_${j}], ok${i}_${j} && cok[${q}])`).join(', ')});`);
    }
  const A = transpose(t.AT);
  const names = Array.from({ length: t.M }, (_, i) => Array.from({ length: t.M }, (_, j) => `y${i}_${j}`));
  L.push(...sandwich(A, names, A, 'g'));
  const a = t.M + 2;
  for (let i = 0; i < a; i++) for (let j = 0; j < a; j++) L.push(`gt[go + ${i * a + j}u * kStride] = g${i}_${j};`);
  return L.join('\n  ');
}

/** Weight gradient: dw = Gᵀ dU G per (ci, 4 output channels). */
function dwCode(t: Transforms): { BODY: string; STORE: string } {
  const a = t.M + 2;
  const L: string[] = [];
  for (let i = 0; i < a; i++) for (let j = 0; j < a; j++) L.push(`let d${i}_${j} = du[uo + ${i * a + j}u * kStride];`);
  const GT = transpose(t.G);
  const names = Array.from({ length: a }, (_, i) => Array.from({ length: a }, (_, j) => `d${i}_${j}`));
  L.push(...sandwich(GT, names, GT, 'w'));
  const S: string[] = [];
  for (let kh = 0; kh < 3; kh++) for (let kw = 0; kw < 3; kw++) S.push(`dw[b + ${kh * 3 + kw}u] = w${kh}_${kw}[q];`);
  return { BODY: L.join('\n  '), STORE: S.join(' ') };
}

const codeMemo = new Map<string, Record<string, string | number>>();
/** Generated code by (kernel, M): the same defines object each call, so program.ts finds the pipeline by identity. */
function code(kind: 'input' | 'output' | 'output4' | 'weight' | 'gy' | 'dw', M: number): Record<string, string | number> {
  const key = `${kind} ${M} ${tilesPerLane(M)}`;
  let d = codeMemo.get(key);
  if (!d) {
    const t = transformsFor(M);
    const make = { input: () => ({ TT: tilesPerLane(M), BODY: inputBody(t) }), output: () => outputCode(t), output4: () => outputCode(t, true), weight: () => ({ BODY: weightBody(t) }), gy: () => ({ BODY: gyBody(t) }), dw: () => dwCode(t) };
    d = { M, ...make[kind]() };
    codeMemo.set(key, d);
  }
  return d;
}

/** The direct-read input transform's code by (M, per-row vec4 offsets or null: scalar loads). */
function directCode(M: number, offs: readonly number[] | null): Record<string, string | number> {
  const key = `inputDirect ${M} ${tilesPerLane(M)} ${offs?.join(',') ?? 'scalar'}`;
  let d = codeMemo.get(key);
  if (!d) {
    d = { M, TT: tilesPerLane(M), X_ELEM: offs ? 'vec4f' : 'f32', BODY: inputDirectBody(transformsFor(M), offs) };
    codeMemo.set(key, d);
  }
  return d;
}

// ---- running it ---------------------------------------------------------------------------

/** The matmul kernel picks its own tile, including its 64-row one for products with <= 64 rows
 * (the forward on 4 px images, the 64-channel weight gradient). */
const gemm = (a: Tensor, b: Tensor, tA: boolean) => matmulRaw(a, b, tA, false, null, 'conv2d_winograd_gemm');

const ceilDiv = (a: number, b: number) => Math.ceil(a / b);
const lanesGrid = (lanes: number): [number, number] => groupsFor(lanes, 64);

/** Sizes of the tiling. */
function plan(j: WinogradJob, M: number) {
  const T = (M + 2) * (M + 2);
  const tilesH = ceilDiv(j.Ho, M);
  const tilesW = ceilDiv(j.Wo, M);
  const TT = tilesPerLane(M);
  const groupsW = ceilDiv(tilesW, TT);
  const Cin4 = ceilDiv(j.Cin, 4) * 4;
  const Cout4 = ceilDiv(j.Cout, 4) * 4;
  const Hp = tilesH * M + 2;
  const Wp4 = ((groupsW - 1) * TT * M) / 4 + Math.ceil((TT * M + 2) / 4);
  const tilesPerImage = tilesH * tilesW;
  // images per chunk: V [T][tiles][Cin4] and M [T][tiles][Cout4] must each fit one storage binding
  const limit = Math.min(getGpu().limits.maxStorageBufferBindingSize, winogradTuning.chunkBytes ?? Infinity);
  const perImage = T * tilesPerImage * Math.max(Cin4, Cout4) * 4;
  const chunk = Math.min(j.N, Math.floor(limit / perImage));
  return { T, tilesH, tilesW, TT, groupsW, Cin4, Cout4, Hp, Wp4, tilesPerImage, chunk, paddedBytes: j.N * j.Cin * Hp * Wp4 * 16 };
}

type PadInput = (x: Tensor, top: number, left: number, Hp: number, Wp: number) => Tensor;
type Plan = ReturnType<typeof plan>;

/** The input the input transform reads: x itself (the default), or its zero-padded copy (`winogradTuning.direct = false`). */
function transformSource(x: Tensor, j: WinogradJob, pl: Plan, padInput: PadInput): Tensor {
  return winogradTuning.direct === false ? padInput(x, j.pt, j.pl, pl.Hp, pl.Wp4 * 4) : x;
}

/** V [T][P][Cin4]: the input transform of images n0 .. n0 + nc - 1 of `src` (x, or its padded copy from transformSource). */
function inputTransform(src: Tensor, x: Tensor, j: WinogradJob, pl: Plan, M: number, n0: number, nc: number): Tensor {
  const P = nc * pl.tilesPerImage;
  const v = new Tensor([pl.T, P, pl.Cin4], 'f32');
  const lanes = nc * pl.tilesH * pl.groupsW * (pl.Cin4 / 4);
  const common = { C: j.Cin, C4: pl.Cin4 / 4, groupsW: pl.groupsW, tilesW: pl.tilesW, tilesH: pl.tilesH, P, nLanes: lanes, n0 };
  if (src !== x) {
    const u = { ...common, Hp: pl.Hp, Wp4: pl.Wp4 };
    dispatch({ name: 'conv2d_winograd_input', shader: 'conv2d_winograd_input', defines: code('input', M) }, u, [src.binding, v.binding], lanesGrid(lanes));
    return v;
  }
  // x read directly. Where a plane is a whole number of vec4s (H * W % 4 == 0; and M * W too), the window row r of
  // every lane starts at element plane*H*W + (th*M - pt + r)*W + 4*gw - pl (TT*M = 4 columns per lane
  // group), whose place in its vec4, ((r - pt) * W - pl) mod 4, is the same for every lane: the
  // rows are read as the aligned vec4s covering them (2-3 loads instead of 6 scalar ones).
  const mod4 = (k: number) => ((k % 4) + 4) % 4;
  const offs = (j.H * j.W) % 4 === 0 && (M * j.W) % 4 === 0 ? Array.from({ length: M + 2 }, (_, r) => mod4((r - j.pt) * j.W - j.pl)) : null;
  const u = { ...common, H: j.H, W: j.W, pt: j.pt, pl: j.pl };
  dispatch({ name: 'conv2d_winograd_input', shader: 'conv2d_winograd_input_direct', defines: directCode(M, offs) }, u, [x.binding, v.binding], lanesGrid(lanes));
  return v;
}

/** The output tile in use: `winogradTuning.M`, else 4 (measured faster than 2 on every ResNet shape). */
export const winogradM = (): number => winogradTuning.M ?? 4;

/** Whether the job's operands fit the device's bindings (one image's V and M, the padded input). */
export function winogradFits(j: WinogradJob, M = winogradM()): boolean {
  const p = plan(j, M);
  return p.chunk >= 1 && (winogradTuning.direct !== false || p.paddedBytes <= getGpu().limits.maxStorageBufferBindingSize);
}

/**
 * y = conv3x3(x, w) (+ bias), stride 1, by Winograd. `transpose`: w is [Cin, Cout, 3, 3] used
 * flipped (backward-data: x is gy, y is dx); otherwise w is [Cout, Cin, 3, 3].
 */
export function winogradConv(x: Tensor, w: Tensor, bias: Tensor | null, j: WinogradJob, transpose: boolean, padInput: PadInput, keep?: { v?: Tensor }): Tensor {
  const M = winogradM();
  const pl = plan(j, M);
  const { T, tilesH, tilesW, Cin4, Cout4 } = pl;
  const y = new Tensor([j.N, j.Cout, j.Ho, j.Wo], 'f32');

  const u = new Tensor([T, Cin4, Cout4], 'f32');
  const wLanes = Cin4 * (Cout4 / 4);
  const wu = { Cin: j.Cin, Cout: j.Cout, Cin4, Co4: Cout4 / 4, CinW: w.shape[1], transpose, nLanes: wLanes };
  dispatch({ name: 'conv2d_winograd_weight', shader: 'conv2d_winograd_weight', defines: code('weight', M) }, wu, [w.binding, u.binding], lanesGrid(wLanes));

  const src = transformSource(x, j, pl, padInput);
  const vec4Out = M === 4 && j.Wo % 4 === 0 && winogradTuning.vec4Out !== false;
  for (let n0 = 0; n0 < j.N; n0 += pl.chunk) {
    const nc = Math.min(pl.chunk, j.N - n0);
    const P = nc * pl.tilesPerImage;
    const v = inputTransform(src, x, j, pl, M, n0, nc);
    const m = gemm(v, u, false);
    if (keep && nc === j.N) keep.v = v; // one chunk: V of every image, for the weight gradient
    else v.dispose();
    const outLanes = P * (Cout4 / 4);
    const ou = { Ho: j.Ho, Wo: j.Wo, Cout: j.Cout, Co4: Cout4 / 4, tilesW, tilesH, P, nLanes: outLanes, n0, hasBias: bias !== null };
    dispatch({ name: 'conv2d_winograd_output', shader: 'conv2d_winograd_output', defines: code(vec4Out ? 'output4' : 'output', M) }, ou, [m.binding, (bias ?? m).binding, y.binding], lanesGrid(outLanes));
    m.dispose();
  }
  if (src !== x) src.dispose();
  u.dispose();
  return y;
}

/**
 * dw = Σ over tiles of Gᵀ [(A gy Aᵀ) ⊙ (Bᵀ d B)] G (the transpose of the forward, Lavin & Gray):
 * the forward's input transform V, the gy transform Ĝ, one GEMM per transform element summing
 * over the tiles (dU[k] = V[k]ᵀ Ĝ[k], K = tiles: a long inner dimension), then the filter
 * transform's transpose. All images in one chunk (winogradWeightGradJob checks they fit).
 */
export function winogradWeightGrad(x: Tensor, gy: Tensor, j: WinogradJob, padInput: PadInput): Tensor {
  const M = winogradM();
  const pl = plan(j, M);
  const src = transformSource(x, j, pl, padInput);
  const v = inputTransform(src, x, j, pl, M, 0, j.N);
  if (src !== x) src.dispose();
  const dw = weightGradFromV(v, gy, j, M);
  v.dispose();
  return dw;
}

/** The weight gradient from the input transform V [T][tiles][Cin4] of x (the forward's, kept: see winogradForwardKeepingV). */
function weightGradFromV(v: Tensor, gy: Tensor, j: WinogradJob, M: number): Tensor {
  const pl = plan(j, M);
  const { T, tilesH, tilesW, Cin4, Cout4 } = pl;
  const P = j.N * pl.tilesPerImage;
  const gt = new Tensor([T, P, Cout4], 'f32');
  const gLanes = P * (Cout4 / 4);
  const gu = { Ho: j.Ho, Wo: j.Wo, Cout: j.Cout, Co4: Cout4 / 4, tilesW, tilesH, P, nLanes: gLanes };
  dispatch({ name: 'conv2d_winograd_gy', shader: 'conv2d_winograd_gy', defines: code('gy', M) }, gu, [gy.binding, gt.binding], lanesGrid(gLanes));
  const du = gemm(v, gt, true);
  gt.dispose();
  const dw = new Tensor([j.Cout, j.Cin, 3, 3], 'f32');
  const dLanes = j.Cin * (Cout4 / 4);
  dispatch({ name: 'conv2d_winograd_dw', shader: 'conv2d_winograd_dw', defines: code('dw', M) }, { Cin: j.Cin, Cout: j.Cout, Cin4, Co4: Cout4 / 4, nLanes: dLanes }, [du.binding, dw.binding], lanesGrid(dLanes));
  du.dispose();
  return dw;
}

// ---- when to use it -----------------------------------------------------------------------

/** Stride 1, dilation 1, one group, 3x3 taps: the convs Winograd F(M, 3x3) computes. */
const isPlain3x3 = (g: ConvGeometry) => g.KH === 3 && g.KW === 3 && g.sh === 1 && g.sw === 1 && g.dh === 1 && g.dw === 1 && g.groups === 1;

/**
 * Whether Winograd beats the direct kernels on a conv of `cin` -> `cout` channels (the GEMM's K
 * and N): measured on lavapipe (bench/NOTES.md, "Speed round 3: Winograd").
 */
const faster = (cin: number, cout: number) => cin >= 64 && cout >= 64;

/** The forward conv as a Winograd job, or null where the direct kernels run it (`force`: conv2dTuning.winograd). */
export function winogradForwardJob(g: ConvGeometry, force: boolean | undefined): WinogradJob | null {
  if (force === false || !isPlain3x3(g)) return null;
  const j: WinogradJob = { N: g.N, Cin: g.Cin, H: g.H, W: g.W, Cout: g.Cout, pt: g.pt, pl: g.pl, Ho: g.Ho, Wo: g.Wo };
  return (force || faster(g.Cin, g.Cout)) && winogradFits(j) ? j : null;
}

/**
 * Backward-data of a stride-1 3x3 conv as a Winograd job: dx = gy convolved with the flipped,
 * transposed filters, padded by 2 - padding (negative: cropped), so that dx has x's size.
 */
export function winogradBackwardDataJob(g: ConvGeometry, force: boolean | undefined): WinogradJob | null {
  if (force === false || !isPlain3x3(g)) return null;
  const j: WinogradJob = { N: g.N, Cin: g.Cout, H: g.Ho, W: g.Wo, Cout: g.Cin, pt: 2 - g.pt, pl: 2 - g.pl, Ho: g.H, Wo: g.W };
  return (force || faster(g.Cout, g.Cin)) && winogradFits(j) ? j : null;
}

/** The weight gradient as a Winograd job (the forward's), or null; needs every image in one chunk. */
export function winogradWeightGradJob(g: ConvGeometry, force: boolean | undefined): WinogradJob | null {
  if (force === false || !isPlain3x3(g)) return null;
  const j: WinogradJob = { N: g.N, Cin: g.Cin, H: g.H, W: g.W, Cout: g.Cout, pt: g.pt, pl: g.pl, Ho: g.Ho, Wo: g.Wo };
  return (force || faster(g.Cin, g.Cout)) && winogradFits(j) && plan(j, winogradM()).chunk >= j.N ? j : null;
}

// ---- keeping the forward's V for the weight gradient ---------------------------------------

/**
 * The forward by Winograd, also returning its input transform V [T][tiles][Cin4] for the weight
 * gradient (winogradWeightGradFromKept): one input transform fewer per conv in training, at the
 * cost of holding V (2.25 floats per input value at F(4x4)) from the forward to the backward
 * instead of x. null where the forward or the weight gradient would not run as Winograd, or
 * `winogradTuning.keepV` is false.
 */
export function winogradForwardKeepingV(x: Tensor, w: Tensor, bias: Tensor | null, g: ConvGeometry, force: boolean | undefined, padInput: PadInput): { y: Tensor; v: Tensor } | null {
  if (winogradTuning.keepV === false) return null;
  const j = winogradForwardJob(g, force);
  if (!j || !winogradWeightGradJob(g, force)) return null;
  const keep: { v?: Tensor } = {};
  const y = winogradConv(x, w, bias, j, false, padInput, keep);
  if (!keep.v) throw new Error('conv2d: internal: Winograd weight-gradient job in more than one chunk');
  return { y, v: keep.v };
}

/** Whether a tensor saved for the weight gradient is a kept V (rank 3) rather than x (rank 4). */
export const isKeptV = (t: Tensor): boolean => t.shape.length === 3;

/** The weight gradient from the forward's kept V (its tile size read from V's shape). */
export function winogradWeightGradFromKept(v: Tensor, gy: Tensor, g: ConvGeometry): Tensor {
  const M = v.shape[0] === 16 ? 2 : 4;
  const j: WinogradJob = { N: g.N, Cin: g.Cin, H: g.H, W: g.W, Cout: g.Cout, pt: g.pt, pl: g.pl, Ho: g.Ho, Wo: g.Wo };
  return weightGradFromV(v, gy, j, M);
}
