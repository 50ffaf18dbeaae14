// Depthwise conv2d (groups == Cin == Cout) on lavapipe's terms: forward / stride-1 backward-data
// (shaders/conv2d_depthwise_rows.wgsl) and backward-weight (shaders/conv2d_depthwise_wgrad.wgsl);
// strided backward-data has its own gather kernel (conv-depthwise-data.ts).
//
// A depthwise conv does 2*KH*KW flops per output, so it is bound by loads and stores, and on
// lavapipe every non-constant-address load or store runs lane by lane (bench/NOTES.md). The
// kernels therefore count accesses: one invocation walks a TM-column strip of one plane down a
// chunk of rows, keeps the window's rows in named registers and moves them up one stride at a
// time, so each input row is loaded once per strip (vec4 loads when rows are whole vec4s) and
// each output row is stored as it is finished (vec4 stores where aligned). Per output row of a
// 16-wide strip at stride 1: 6 vec4 loads (the window's 18 columns) and 4 vec4 stores, against
// 4 + 4 for a plain copy. The bodies are unrolled here (constant register names only). Small
// planes (up to 64 pixels) go to conv-depthwise-planes.ts instead (the whole plane per lane), and
// strips are 4 columns wide at stride 2: a lane's values must fit the register file, or lavapipe
// builds its lane-by-lane loads up through the stack (bench/NOTES.md, speed round 4).
import { Tensor } from '../tensor.ts';
import { dispatch, groupsFor } from '../program.ts';
import { sum } from './reduce.ts';
import { planeGroup, runPlanes, weightGradPlanes } from './conv-depthwise-planes.ts';

/** The conv as the depthwise kernels see it (conv.ts's Job extends it with the group layout). */
export interface DwJob {
  N: number;
  /** channels per image (= groups) */
  planes: number;
  H: number;
  W: number;
  KH: number;
  KW: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  pt: number;
  pl: number;
  Ho: number;
  Wo: number;
  /** output pixel (oh, ow) goes to y[yr0 + oh*ysh][yc0 + ow*ysw] of a yH x yW plane */
  place: { yH: number; yW: number; yr0: number; yc0: number; ysh: number; ysw: number };
}

/** Benchmark hook (conv2dTuning.depthwise): strip width cap and rows per chunk. */
export interface DwTuning {
  /** no row or plane groups (rowGroup, planeGroup): scalar strips (comparisons only) */
  noGroups?: boolean;
  TM?: number;
  RC?: number;
  /** the small-plane kernel as before round 4 (rows not whole vec4s only, fewest planes, scalar weights) */
  oldPlanes?: boolean;
  /** planes per invocation of the small-plane kernel (comparisons only) */
  Q?: number;
  /** images per invocation of the small-plane weight gradient (comparisons only) */
  NB?: number;
  /** experiments: invocations per workgroup */
  WG?: number;
  /** largest plane (pixels) for the whole-plane kernel (default 196; 64 = round 4's choice, comparisons) */
  planeMax?: number;
  /** strided backward-data as conv.ts's stride phases, before round 5 (comparisons only) */
  phases?: boolean;
}

const wgOf = (t: DwTuning | undefined): number => t?.WG ?? 64;
const ceilDiv = (a: number, b: number) => Math.ceil(a / b);
const mod = (a: number, m: number) => ((a % m) + m) % m;

const codeMemo = new Map<string, Record<string, string | number>>();
function memo(key: string, make: () => Record<string, string | number>): Record<string, string | number> {
  let d = codeMemo.get(key);
  if (!d) codeMemo.set(key, (d = make()));
  return d;
}

/** Strips and chunks: TM columns per strip (a multiple of 4 when rows load as vec4), RC rows per chunk. */
function layout(j: DwJob, tune: DwTuning | undefined) {
  const vecRows = j.W % 4 === 0;
  // strips up to 16 wide at stride 1, as even as the row allows (56 px: 4 x 16; 28: 2 x 16; 14:
  // 1 x 14). CPU time per dispatch, 144 ch b16 56 px: cap 8 / 16 / 32 = 7.9 / 7.0 / 7.6 ms forward,
  // 16 best for backward-data too (bench/NOTES.md, round 3). At stride 2 a strip's window is twice
  // as wide, and once a lane's values outgrow the register file lavapipe builds its loads up
  // through the stack: 4 columns there (round 4: forward 1.4x, weight gradient 1.75x against 16),
  // and for the stride-2 backward-data phases, which store every other column (1.1x).
  const cap = tune?.TM ?? (j.sw > 1 || j.place.ysw > 1 ? 4 : 16);
  let tilesW = ceilDiv(j.Wo, cap);
  let TM = ceilDiv(j.Wo, tilesW);
  if (vecRows) TM = ceilDiv(TM, 4) * 4;
  tilesW = ceilDiv(j.Wo, TM);
  // split the rows only when the planes give too few lanes (keeps both cores busy), >= 8 rows each
  const lanes = j.N * j.planes * tilesW;
  const want = tune?.RC ? ceilDiv(j.Ho, tune.RC) : Math.min(ceilDiv(4096, lanes), Math.max(1, Math.floor(j.Ho / 8)));
  const RC = ceilDiv(j.Ho, Math.max(1, want));
  const chunks = ceilDiv(j.Ho, RC);
  // window offset within its first vec4 (the same in every strip: TM * sw is a multiple of 4)
  const a = vecRows ? mod(-j.pl, 4) : -1;
  return { TM, tilesW, RC, chunks, a };
}

/**
 * The window code shared by both kernels: SETUP declares the window registers and loads the
 * rows the first output row shares with earlier ones; LOAD fills the rows new to an output row,
 * SHIFT moves the window down one stride; at(r, col) names window element (r, col).
 */
function windowCode(j: DwJob, TM: number, a: number) {
  const NR = (j.KH - 1) * j.dh + 1;
  const J = (TM - 1) * j.sw + (j.KW - 1) * j.dw + 1;
  const fresh = Math.min(j.sh, NR); // rows each output row loads
  const kept = NR - fresh;
  const setup: string[] = [];
  const NV = a >= 0 ? ceilDiv(a + J, 4) : 0;
  if (a >= 0) {
    // first vec4 of the window: (iw0 - a) / 4, exact
    setup.push(`let v0 = (iw0 - ${a}) / 4; let W4 = p.W / 4u; let xb4 = xb / 4u;`);
    for (let k = 0; k < NV; k++) setup.push(`let vok${k} = v0 + ${k} >= 0 && v0 + ${k} < i32(W4); let vi${k} = u32(select(0, v0 + ${k}, vok${k}));`);
    for (let r = 0; r < NR; r++) setup.push(Array.from({ length: NV }, (_, k) => `var x${r}_${k} = vec4f(0.0);`).join(' '));
  } else {
    for (let c = 0; c < J; c++) setup.push(`let cok${c} = iw0 + ${c} >= 0 && iw0 + ${c} < i32(p.W); let ci${c} = u32(select(0, iw0 + ${c}, cok${c}));`);
    for (let r = 0; r < NR; r++) setup.push(Array.from({ length: J }, (_, c) => `var x${r}_${c} = 0.0;`).join(' '));
  }
  const loadRow = (r: number): string => {
    const L = [`{ let ih = ih0 + ${r}; let ok = ih >= 0 && ih < i32(p.H);`];
    if (a >= 0) {
      L.push(`let rb = xb4 + u32(select(0, ih, ok)) * W4;`);
      for (let k = 0; k < NV; k++) L.push(`x${r}_${k} = select(vec4f(0.0), x[rb + vi${k}], ok && vok${k});`);
    } else {
      L.push(`let rb = xb + u32(select(0, ih, ok)) * p.W;`);
      for (let c = 0; c < J; c++) L.push(`x${r}_${c} = select(0.0, x[rb + ci${c}], ok && cok${c});`);
    }
    L.push('}');
    return L.join(' ');
  };
  if (kept > 0) {
    setup.push(`{ let ih0 = i32(oh0 * ${j.sh}u) - p.pt;`);
    for (let r = 0; r < kept; r++) setup.push(loadRow(r));
    setup.push('}');
  }
  const load: string[] = [];
  for (let r = kept; r < NR; r++) load.push(loadRow(r));
  const shift: string[] = [];
  const n = a >= 0 ? NV : J;
  for (let r = 0; r < kept; r++) shift.push(Array.from({ length: n }, (_, v) => `x${r}_${v} = x${r + j.sh}_${v};`).join(' '));
  const at = (r: number, col: number) => (a >= 0 ? `x${r}_${(a + col) >> 2}[${(a + col) & 3}]` : `x${r}_${col}`);
  return { setup, load, shift, at };
}

/**
 * Rows whose width is not a multiple of 4 (MobileNet's 14 px) would load and store lane by lane,
 * one scalar at a time. When the plane is a multiple of 4 and the conv keeps its size ("same"
 * padding, stride 1), p = 4 / gcd(W, 4) rows make whole vec4s: the strip is the full row, the
 * kernel steps p rows at a time, loads and stores p*W/4 vec4s per step (a copy's count), and
 * the out-of-row columns of the window are known zeros at compile time. Returns p, or 0.
 */
function rowGroup(j: DwJob, vec4Out: boolean): number {
  const p = 4 / gcd(j.W, 4);
  const ok = j.W % 4 !== 0 && j.W <= 32 && (j.H * j.W) % 4 === 0 && j.sh === 1 && j.sw === 1 && j.dh === 1 && j.dw === 1 && j.Ho === j.H && j.Wo === j.W && vec4Out;
  return ok ? p : 0;
}
const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** Row chunks of whole groups (split only when the planes give too few lanes, >= 8 rows each). */
function groupChunks(j: DwJob, p: number): { chunks: number; RC: number } {
  const want = Math.max(1, Math.min(ceilDiv(4096, j.N * j.planes), Math.floor(j.Ho / 8)));
  const RC = ceilDiv(ceilDiv(j.Ho, want), p) * p;
  return { chunks: ceilDiv(j.Ho, RC), RC };
}

/**
 * The window of row groups (see rowGroup): NG groups of GV vec4s in named registers, SETUP loads
 * all but the last for the first step, LOAD the last, SHIFT moves them up one group; el(R, c)
 * names window row R (from the group boundary at or above the first tap row), column c, or null
 * outside the row (zero padding).
 */
function groupWindow(j: DwJob, p: number) {
  const W = j.W;
  const GV = (p * W) / 4;
  const ptal = Math.ceil(j.pt / p) * p; // the window starts this many rows above the step's first row
  const NG = Math.ceil((ptal - j.pt + p + j.KH - 1) / p);
  const setup = [`let xb4 = xb / 4u;`];
  for (let g = 0; g < NG; g++) setup.push(Array.from({ length: GV }, (_, v) => `var F${g}_${v} = vec4f(0.0);`).join(' '));
  const load = (g: number) => {
    const L = [`{ let ig = i32(oh) - ${ptal} + ${g * p}; let ok = ig >= 0 && ig < i32(p.H); let gb = xb4 + u32(select(0, ig, ok)) / ${p}u * ${GV}u;`];
    for (let v = 0; v < GV; v++) L.push(`F${g}_${v} = select(vec4f(0.0), x[gb + ${v}u], ok);`);
    L.push('}');
    return L.join(' ');
  };
  if (NG > 1) {
    setup.push(`{ let oh = oh0;`);
    for (let g = 0; g < NG - 1; g++) setup.push(load(g));
    setup.push('}');
  }
  const shift = Array.from({ length: NG - 1 }, (_, g) => Array.from({ length: GV }, (_, v) => `F${g}_${v} = F${g + 1}_${v};`).join(' '));
  const el = (R: number, c: number): string | null => {
    if (c < 0 || c >= W) return null;
    const e = (R % p) * W + c;
    return `F${Math.floor(R / p)}_${e >> 2}[${e & 3}]`;
  };
  // window row of output row r (of the step), kernel row kh
  const wr = (r: number, kh: number) => ptal - j.pt + r + kh;
  return { GV, setup, load: load(NG - 1), shift, el, wr };
}

/** SETUP and ROW of the forward kernel for row groups of p rows. */
function groupCode(j: DwJob, p: number): { setup: string[]; row: string[] } {
  const win = groupWindow(j, p);
  const KK = j.KH * j.KW;
  const setup = [...Array.from({ length: KK }, (_, k) => `let w${k} = w[wo + ${k}u];`), ...win.setup];
  const row = [win.load];
  for (let r = 0; r < p; r++)
    for (let c = 0; c < j.W; c++) {
      let e = '0.0';
      for (let kh = 0; kh < j.KH; kh++)
        for (let kw = 0; kw < j.KW; kw++) {
          const v = win.el(win.wr(r, kh), c - j.pl + kw);
          if (v) e = `fma(${v}, w${kh * j.KW + kw}, ${e})`;
        }
      row.push(`let o${r * j.W + c} = ${e};`);
    }
  for (let v = 0; v < win.GV; v++) row.push(`if (live) { y[ybase / 4u + ${v}u] = vec4f(o${4 * v}, o${4 * v + 1}, o${4 * v + 2}, o${4 * v + 3}) + b; }`);
  row.push(...win.shift);
  return { setup, row };
}

/** y[place] = depthwise conv of x with weights [C][KH*KW] (+ bias), by row strips. */
export function depthwiseRows(x: Tensor, wk: Tensor, bias: Tensor | null, j: DwJob, y: Tensor, tune?: DwTuning): void {
  const pl = j.place;
  const identity = pl.yr0 === 0 && pl.yc0 === 0 && pl.ysh === 1 && pl.ysw === 1 && pl.yW === j.Wo && pl.yH === j.Ho;
  const planes = tune?.noGroups ? 0 : planeGroup(j, identity, tune);
  if (planes) return runPlanes(x, wk, bias, j, y, planes, tune);
  const group = tune?.noGroups ? 0 : rowGroup(j, identity);
  if (group) {
    // one strip per plane, chunks of whole groups
    const { chunks: nCh, RC } = groupChunks(j, group);
    const nLanes = j.N * j.planes * nCh;
    const u = { H: j.H, W: j.W, C: j.planes, Ho: j.Ho, Wo: j.Wo, tilesW: 1, chunks: nCh, RC, nLanes, hasBias: bias !== null, yH: pl.yH, yW: pl.yW, yr0: 0, yc0: 0, ysh: 1, ysw: 1, pt: j.pt, pl: j.pl };
    const defines = memo(`dwgroup ${wgOf(tune)} ${group} ${j.W} ${j.KH} ${j.KW} ${j.pt} ${j.pl}`, () => {
      const { setup, row } = groupCode(j, group);
      return { WG: wgOf(tune), TM: j.W, KK: j.KH * j.KW, SH: 1, SW: 1, STEP: group, XT: 'vec4f', YT: 'vec4f', SETUP: setup.join('\n  '), ROW: row.join('\n    ') };
    });
    dispatch({ name: 'conv2d_depthwise', shader: 'conv2d_depthwise_rows', defines }, u, [x.binding, wk.binding, (bias ?? wk).binding, y.binding], groupsFor(nLanes, wgOf(tune)));
    return;
  }
  const { TM, tilesW, RC, chunks, a } = layout(j, tune);
  // whole aligned vec4s out: identity placement, Wo % 4 == 0 (TM is a multiple of 4 then too)
  const vec4Out = a >= 0 && identity && j.Wo % 4 === 0;
  const nLanes = j.N * j.planes * chunks * tilesW;
  const u = { H: j.H, W: j.W, C: j.planes, Ho: j.Ho, Wo: j.Wo, tilesW, chunks, RC, nLanes, hasBias: bias !== null, yH: pl.yH, yW: pl.yW, yr0: pl.yr0, yc0: pl.yc0, ysh: pl.ysh, ysw: pl.ysw, pt: j.pt, pl: j.pl };
  const key = `dwrows ${wgOf(tune)} ${TM} ${a} ${vec4Out} ${j.KH} ${j.KW} ${j.sh} ${j.sw} ${j.dh} ${j.dw}`;
  const defines = memo(key, () => {
    const win = windowCode(j, TM, a);
    const KK = j.KH * j.KW;
    const setup = [...Array.from({ length: KK }, (_, k) => `let w${k} = w[wo + ${k}u];`), ...win.setup];
    const row = [...win.load];
    for (let m = 0; m < TM; m++) {
      let e = '0.0';
      for (let kh = 0; kh < j.KH; kh++) for (let kw = 0; kw < j.KW; kw++) e = `fma(${win.at(kh * j.dh, m * j.sw + kw * j.dw)}, w${kh * j.KW + kw}, ${e})`;
      row.push(`let o${m} = ${e};`);
    }
    if (vec4Out) for (let m = 0; m < TM; m += 4) row.push(`if (live && ow0 + ${m}u < p.Wo) { y[(ybase + ${m}u) / 4u] = vec4f(o${m}, o${m + 1}, o${m + 2}, o${m + 3}) + b; }`);
    else for (let m = 0; m < TM; m++) row.push(`if (live && ow0 + ${m}u < p.Wo) { y[ybase + ${m}u * p.ysw] = o${m} + b; }`);
    row.push(...win.shift);
    return { WG: wgOf(tune), TM, KK, SH: j.sh, SW: j.sw, STEP: 1, XT: a >= 0 ? 'vec4f' : 'f32', YT: vec4Out ? 'vec4f' : 'f32', SETUP: setup.join('\n  '), ROW: row.join('\n    ') };
  });
  dispatch({ name: 'conv2d_depthwise', shader: 'conv2d_depthwise_rows', defines }, u, [x.binding, wk.binding, (bias ?? wk).binding, y.binding], groupsFor(nLanes, wgOf(tune)));
}

/** dw [C, 1, KH, KW] of a depthwise conv: per-strip partial sums of gy * x, then one sum. */
export function depthwiseWeightGrad(x: Tensor, gy: Tensor, j: DwJob, tune?: DwTuning): Tensor {
  // whole planes where they are small (2 and 4 px) or strided (7 -> 4 px); 7 px at stride 1 holds
  // 4 planes of x and gy per lane (392 values): no faster than the strips (1.2-1.3 ms both)
  const small = j.H * j.W <= 16 || j.sh > 1 || j.sw > 1;
  const planes = tune?.noGroups || tune?.oldPlanes || !small ? 0 : planeGroup(j, true, tune);
  if (planes) return weightGradPlanes(x, gy, j, planes, tune);
  const { TM, tilesW, RC, chunks, a } = layout(j, tune);
  const C = j.planes;
  const KK = j.KH * j.KW;
  const vecG = a >= 0 && j.Wo % 4 === 0; // gy rows as whole vec4s (TM is a multiple of 4 then)
  const per = j.N * chunks * tilesW; // partials per channel
  const nLanes = C * per;
  const part = new Tensor([C, per, KK], 'f32');
  const u = { H: j.H, W: j.W, C, Ho: j.Ho, Wo: j.Wo, tilesW, chunks, RC, nLanes, N: j.N, pt: j.pt, pl: j.pl };
  const key = `dwgrad ${wgOf(tune)} ${TM} ${a} ${vecG} ${j.KH} ${j.KW} ${j.sh} ${j.sw} ${j.dh} ${j.dw}`;
  const defines = memo(key, () => {
    const win = windowCode(j, TM, a);
    const setup = [...Array.from({ length: KK }, (_, k) => `var a${k} = 0.0;`), ...win.setup];
    const row = [...win.load];
    // gy beyond the row's end reads as 0, so the strip's spare columns add nothing
    if (vecG) for (let q = 0; q < TM / 4; q++) row.push(`let g${q} = select(vec4f(0.0), gy[gbase / 4u + ${q}u], ow0 + ${4 * q}u < p.Wo);`);
    else for (let m = 0; m < TM; m++) row.push(`let g${m} = select(0.0, gy[gbase + ${m}u], ow0 + ${m}u < p.Wo);`);
    const g = (m: number) => (vecG ? `g${m >> 2}[${m & 3}]` : `g${m}`);
    // pixel-major: the KK accumulators' FMAs are independent of each other
    for (let m = 0; m < TM; m++)
      for (let kh = 0; kh < j.KH; kh++) for (let kw = 0; kw < j.KW; kw++) row.push(`a${kh * j.KW + kw} = fma(${g(m)}, ${win.at(kh * j.dh, m * j.sw + kw * j.dw)}, a${kh * j.KW + kw});`);
    row.push(...win.shift);
    const store = Array.from({ length: KK }, (_, k) => `part[L * ${KK}u + ${k}u] = a${k};`);
    return { WG: wgOf(tune), TM, SH: j.sh, SW: j.sw, XT: a >= 0 ? 'vec4f' : 'f32', GT: vecG ? 'vec4f' : 'f32', SETUP: setup.join('\n  '), ROW: row.join('\n    '), STORE: store.join('\n  ') };
  });
  dispatch({ name: 'conv2d_depthwise_wgrad', shader: 'conv2d_depthwise_wgrad', defines }, u, [x.binding, gy.binding, part.binding], groupsFor(nLanes, wgOf(tune)));
  const flat = per === 1 ? part.view([C * KK]) : sum(part, [1]);
  part.dispose();
  const dw = flat.view([C, 1, j.KH, j.KW]);
  flat.dispose();
  return dw;
}
