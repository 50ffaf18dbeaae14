// conv2d (NCHW) forward and backward. Kernels: shaders/conv2d_*.wgsl.
//
// Every path is a direct implicit GEMM on lavapipe's terms (bench/NOTES.md): the input goes
// through a zero-padded copy (conv2d_pad) so the kernels read aligned vec4 windows without bounds
// checks, and the hot loops are unrolled here (fwdBody, wgradCode; conv-depthwise.ts) because
// lavapipe scalarises every non-constant-address load per SIMD lane and only keeps
// constant-indexed values in registers.
//  - forward: conv2d_fwd (R x TM pixel tile x TN output channels per invocation; on 8-lane
//    subgroups, stride-2 and small stride-1 3x3 convs let a subgroup share P tiles' input
//    windows by broadcast/shuffle, each lane with its own channels: pickTile); depthwise
//    (groups == Cin == Cout) by row strips in conv-depthwise.ts (reads x directly: it is
//    memory-bound); bias-free 1x1 convs on the matmul kernel, others as one long row per image
//    (strided ones on a subsampled copy).
//  - backward-data: the transposed convolution split into stride phases: output phase (a, b) of
//    dx is an ordinary stride-1 conv of gy with a flipped, transposed subset of the taps, run by
//    the same forward kernels writing a strided output (stride 1 is the one-phase case); strided
//    1x1 convs compute the sampled pixels flat and spread them out between zeros.
//  - backward-weight: conv2d_wgrad, a GEMM over the output pixels split into chunks (partial sums
//    per chunk, then summed), depthwise its own strip kernel; the bias gradient sums gy.
import { defineOp, expectDtype, expectRank } from '../op.ts';
import { Tensor, ShapeError, fmt, full } from '../tensor.ts';
import { dispatch, groupsFor, MAX_GROUPS } from '../program.ts';
import { getGpu } from '../device.ts';
import { sum } from './reduce.ts';
import { winogradConv, winogradForwardJob, winogradBackwardDataJob, winogradWeightGrad, winogradWeightGradJob, winogradForwardKeepingV, isKeptV, winogradWeightGradFromKept } from './conv-winograd.ts';
import { matmulRaw, matmulTuning, MATMUL_TILE_SHARED, isSwiftShader } from './matmul.ts';
import { depthwiseRows, depthwiseWeightGrad, type DwJob, type DwTuning } from './conv-depthwise.ts';
import { depthwiseBackwardData } from './conv-depthwise-data.ts';

type Pair = number | readonly [number, number];
export interface Conv2dOptions {
  stride?: Pair;
  /** one value, [vertical, horizontal], or [top, bottom, left, right] */
  padding?: number | readonly [number, number] | readonly [number, number, number, number];
  dilation?: Pair;
  groups?: number;
}

interface ConvParams {
  sh: number;
  sw: number;
  pt: number;
  pb: number;
  pl: number;
  pr: number;
  dh: number;
  dw: number;
  groups: number;
}

/** Every size the kernels need. */
export interface ConvGeometry extends ConvParams {
  N: number;
  Cin: number;
  H: number;
  W: number;
  Cout: number;
  CinG: number;
  CoutG: number;
  KH: number;
  KW: number;
  Ho: number;
  Wo: number;
}

const isInt = (v: number) => Number.isInteger(v);

function normParams(o: Conv2dOptions): ConvParams {
  const pair = (what: string, v: Pair | undefined, min: number): [number, number] => {
    if (typeof v === 'object' && v.length !== 2) throw new RangeError(`conv2d: ${what} must be a number or a pair, got [${v.join(', ')}]`);
    const p: [number, number] = v === undefined ? [1, 1] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
    if (!p.every((d) => isInt(d) && d >= min)) throw new RangeError(`conv2d: ${what} must be integers >= ${min}, got ${fmt(p)}`);
    return p;
  };
  const [sh, sw] = pair('stride', o.stride, 1);
  const [dh, dw] = pair('dilation', o.dilation, 1);
  const pad = o.padding ?? 0;
  let pads: number[];
  if (typeof pad === 'number') pads = [pad, pad, pad, pad];
  else if (pad.length === 2) pads = [pad[0], pad[0], pad[1], pad[1]];
  else if (pad.length === 4) pads = [...pad];
  else throw new RangeError(`conv2d: padding must be a number, [vertical, horizontal] or [top, bottom, left, right], got [${(pad as number[]).join(', ')}]`);
  if (!pads.every((d) => isInt(d) && d >= 0)) throw new RangeError(`conv2d: padding must be non-negative integers, got ${fmt(pads)}`);
  const groups = o.groups ?? 1;
  if (!isInt(groups) || groups < 1) throw new RangeError(`conv2d: groups must be a positive integer, got ${groups}`);
  const [pt, pb, pl, pr] = pads;
  return { sh, sw, pt, pb, pl, pr, dh, dw, groups };
}

/** Checks shapes against the parameters (throws ShapeError naming conv2d and the values) and derives every size. */
export function convGeometry(xs: readonly number[], ws: readonly number[], p: ConvParams, bs?: readonly number[] | null): ConvGeometry {
  const [N, Cin, H, W] = xs;
  const [Cout, CinG, KH, KW] = ws;
  const G = p.groups;
  if (Cin % G !== 0) throw new ShapeError(`conv2d: groups ${G} does not divide the ${Cin} input channels of x ${fmt(xs)}`);
  if (Cout % G !== 0) throw new ShapeError(`conv2d: groups ${G} does not divide the ${Cout} output channels of weight ${fmt(ws)}`);
  if (CinG * G !== Cin)
    throw new ShapeError(`conv2d: weight ${fmt(ws)} expects ${CinG * G} input channels (${CinG} per group x ${G} groups), x ${fmt(xs)} has ${Cin}`);
  if (KH < 1 || KW < 1 || Cout < 1) throw new ShapeError(`conv2d: empty weight ${fmt(ws)}`);
  if (N < 1 || H < 1 || W < 1) throw new ShapeError(`conv2d: empty input x ${fmt(xs)}`);
  if (bs && (bs.length !== 1 || bs[0] !== Cout)) throw new ShapeError(`conv2d: bias must have shape [${Cout}], got ${fmt(bs)}`);
  const Hp = H + p.pt + p.pb;
  const Wp = W + p.pl + p.pr;
  const ekh = p.dh * (KH - 1) + 1;
  const ekw = p.dw * (KW - 1) + 1;
  if (ekh > Hp || ekw > Wp)
    throw new ShapeError(
      `conv2d: kernel ${KH}x${KW} (dilation ${p.dh}x${p.dw}, extent ${ekh}x${ekw}) is larger than the padded input ${Hp}x${Wp} (x ${fmt(xs)}, padding [${p.pt}, ${p.pb}, ${p.pl}, ${p.pr}])`,
    );
  const Ho = Math.floor((Hp - ekh) / p.sh) + 1;
  const Wo = Math.floor((Wp - ekw) / p.sw) + 1;
  return { ...p, N, Cin, H, W, Cout, CinG, CoutG: Cout / G, KH, KW, Ho, Wo };
}

// ---- kernel plumbing ----------------------------------------------------------------------

const ceilDiv = (a: number, b: number) => Math.ceil(a / b);

/** Workgroups for `lanes` invocations of the 64-wide conv kernels (they read the linear id from both grid dimensions). */
const lanesGrid = (lanes: number): [number, number] => groupsFor(lanes, 64);

/** A conv as the kernels see it: the input has `planes` channels per image (H x W), y has `yPlanes`. */
interface Job extends DwJob {
  yPlanes: number;
  CinG: number;
  CoutG: number;
  groups: number;
  /** the input is read spread out by these factors (zeros between): zero-insertion backward-data */
  up?: [number, number];
}

const identity = (Ho: number, Wo: number) => ({ yH: Ho, yW: Wo, yr0: 0, yc0: 0, ysh: 1, ysw: 1 });

/**
 * The input as [N*C][Hp][Wp] (Wp a multiple of 4) with x at (top, left), zero elsewhere; rows and
 * columns subsampled by sr/sc, or spread out by `up` (see conv2d_pad.wgsl). Returns a view of x
 * itself when that layout is x's own.
 */
function padInput(x: Tensor, top: number, left: number, Hp: number, Wp: number, sr = 1, sc = 1, up: readonly [number, number] = [1, 1]): Tensor {
  const [N, C, H, W] = x.shape;
  if (top === 0 && left === 0 && Hp === H && Wp === W && sr === 1 && sc === 1 && up[0] === 1 && up[1] === 1) return x.view([x.size]);
  if (Wp % 4 !== 0) throw new Error(`conv2d: internal: padded row ${Wp} is not a multiple of 4`);
  const xp = new Tensor([N * C * Hp * Wp], 'f32');
  const u = { Hp, Wp4: Wp / 4, H, W, top, left, sr, sc, planes: N * C, rows: N * C * Hp };
  dispatch({ name: 'conv2d_pad', shader: 'conv2d_pad', defines: { UPH: up[0], UPW: up[1] } }, u, [x.binding, xp.binding], lanesGrid(N * C * Hp));
  return xp;
}

/** Taps (kh0 + t*khStep for t < TH, likewise columns) re-laid out by conv2d_wpack; see there. */
interface TapSel {
  TH: number;
  TW: number;
  kh0: number;
  khStep: number;
  kw0: number;
  kwStep: number;
}

function packWeights(w: Tensor, CinG: number, CoutG: number, groups: number, padTo: number, transpose: boolean, taps: TapSel): Tensor {
  const [, , KH, KW] = w.shape;
  const fast = transpose ? CinG : CoutG;
  const slow = transpose ? CoutG : CinG;
  const Fp = Math.ceil(fast / padTo) * padTo;
  const total = groups * taps.TH * taps.TW * slow * Fp;
  const out = new Tensor([total], 'f32');
  const u = { total, CinG, CoutG, Fp, TH: taps.TH, TW: taps.TW, KH, KW, kh0: taps.kh0, khStep: taps.khStep, kw0: taps.kw0, kwStep: taps.kwStep, transpose };
  dispatch({ name: 'conv2d_wpack', shader: 'conv2d_wpack' }, u, [w.binding, out.binding], groupsFor(total));
  return out;
}

// ---- forward kernel (also each backward-data phase) -----------------------------------------

interface Tile {
  TM: number;
  R: number;
  TN: number;
  /** R = 1 and a runtime loop over the kernel rows (large kernels: KH times less unrolled code) */
  rowLoop?: boolean;
  /**
   * the lanes of a subgroup share one pixel tile and differ in their output-channel block: they
   * load the input window once between them (broadcast) and their own weights (see fwdBody)
   */
  xLanes?: boolean;
  /**
   * with xLanes: the subgroup holds P pixel tiles x S/P channel blocks (small outputs); lanes load
   * items of tile l % P and of their own block, and take what they need by shuffle (see fwdBody)
   */
  P?: number;
}

/** Benchmark hook: forces the tile sizes of the next calls (bench/NOTES.md experiments). */
export const conv2dTuning: {
  /** force Winograd (conv-winograd.ts) on or off for stride-1 3x3 convs; unset: chosen by shape */
  winograd?: boolean;
  tile?: Tile;
  wtile?: { TM: number; R: number; TCO: number; TCI: number; rowLanes?: boolean };
  subgroups?: boolean | number;
  depthwise?: DwTuning;
  /** backward-data of strided 1x1 convs by zero fill + strided stores (the older path; comparisons only) */
  oldStrided1x1?: boolean;
  /** false: 1x1 convs on the conv kernel's flat tiles instead of the matmul kernel (comparisons only) */
  gemm1x1?: boolean;
  /** false: stride-1 1x1 backward-data on the conv kernel instead of the matmul kernel (comparisons only) */
  gemm1x1Data?: boolean;
  /** false: stride-2 convs on round 3's tiles (no subgroup-shared input windows; comparisons only) */
  stridedTiles?: boolean;
} = {};

/**
 * Generated kernel code, memoised by the few numbers it depends on: the unrolled bodies are
 * kilobytes of WGSL, and rebuilding them (and hashing them as a pipeline key) on every call cost
 * more than small kernels take to run. Returning the same object also lets program.ts find the
 * pipeline by identity.
 */
const codeMemo = new Map<string, Record<string, string | number>>();
function memoCode(key: string, make: () => Record<string, string | number>): Record<string, string | number> {
  let d = codeMemo.get(key);
  if (!d) codeMemo.set(key, (d = make()));
  return d;
}

/**
 * Subgroup size the kernels share loads over (0: none; see fwdBody, wgradCode): the adapter's
 * fixed size, when the 64-lane workgroups hold whole subgroups of it (4, 8, 16, 32 or 64 lanes;
 * anything else takes the plain kernels). `conv2dTuning.subgroups = n` (tests) generates the
 * kernels for n lanes instead: correct when n divides the real size, since the n lanes that
 * share are then part of one real subgroup.
 */
function sharedLanes(): number {
  const real = getGpu().subgroupSize;
  const want = conv2dTuning.subgroups;
  if (want === false || real === 0) return 0;
  const S = typeof want === 'number' ? want : real;
  return S >= 4 && 64 % S === 0 && real % S === 0 ? S : 0;
}

/** Output channels per invocation: 4, 8 or `max`, whichever wastes least on CoutG. */
function pickTN(CoutG: number, max: number): number {
  if (CoutG <= 4 || max === 4) return 4;
  if (CoutG <= 8 || max === 8) return 8;
  return max;
}

/**
 * Tile sizes measured best on lavapipe (bench/NOTES.md) for the shapes networks use (1x1, 3x3 up
 * to stride 2, and the <= 2x2 stride phases of their backward-data); anything else gets a small
 * tile, since every unrolled variant costs LLVM compile time (seconds) on first use.
 */
function pickTile(j: Job, flat1x1: boolean): Tile {
  if (conv2dTuning.tile) return conv2dTuning.tile;
  if (flat1x1) return { TM: 8, R: 1, TN: pickTN(j.CoutG, 16) };
  const hot = j.KH <= 3 && j.KW <= 3 && j.sh <= 2 && j.sw <= 2 && j.dh === 1 && j.dw === 1;
  if (!hot) return { TM: 4, R: 1, TN: 4, rowLoop: j.KH > 1 };
  // With weights shared across the subgroup they are cheap, so 8 channels per lane halve the
  // input loads per FMA (3x3 s1: 4x2x8 39 GFLOP/s vs 4x4x4 29; s2: 4x1x8 23 vs 4x7x4 14), and
  // at stride 2, whose windows overlap less, 16 (round 3, CPU time: 4x1x16 1.17x 4x1x8).
  // SwiftShader (4-lane subgroups) runs every load lane by lane, so a 4x4x16 tile (2.7x the FMAs
  // per loaded value) wins there on wide stride-1 layers (1.1-1.5x in the page); it doubles the
  // kernel's compile time and was 7% slower on small training models, hence only these
  // (bench/NOTES.md round 3).
  if (sharedLanes() > 0 && j.sh === 1 && j.CoutG >= 64 && j.Ho * j.Wo >= 28 * 28 && isSwiftShader()) return { TM: 4, R: 4, TN: 16 };
  const S = sharedLanes();
  // measured on lavapipe's 8-lane subgroups only (SwiftShader's 4 lanes keep round 3's tiles)
  const round4 = conv2dTuning.stridedTiles !== false && S === 8 && S === getGpu().subgroupSize;
  if (round4 && (j.sh === 2 || j.place.ysh === 2) && j.CoutG >= 8 * S && j.Ho >= 7 && j.Wo >= 7)
    // stride 2 and its backward-data phases (round 4): the subgroup's lanes share one 7-row
    // tile, each with its own 4 channels, so the input window is loaded once per subgroup and
    // each weight vec4 feeds 28-56 pixels (forward 1.25-1.45x, backward-data 1.5x at 28/14 px)
    return j.Wo % 8 === 0 || j.Wo % 8 > 4 ? { TM: 8, R: 7, TN: 4, xLanes: true } : { TM: 4, R: 7, TN: 8, xLanes: true };
  if (round4 && (j.sh === 2 || j.place.ysh === 2) && j.CoutG >= 4 * S)
    // smaller outputs (ResNet's 7 -> 4 px layer): 2 tiles of 4x4 x S/2 blocks of 8 channels per
    // subgroup, window and weights both shared (forward 1.22x, backward-data 1.10x, round 4)
    return { TM: 4, R: 4, TN: 8, xLanes: true, P: 2 };
  if (round4 && j.sh === 1 && j.place.ysh === 1 && j.KH === 3 && j.KW === 3 && j.CoutG >= 4 * S && j.Ho >= 7 && j.Wo >= 7)
    // stride-1 3x3 convs Winograd leaves (DenseNet's 128->32): forward and backward-data
    // 1.19x (28 px: 2 tiles of 4x4 per subgroup), 1.20x (14 px) and 1.30x (7 px: one 8x7 tile)
    return j.Ho > 14 ? { TM: 4, R: 4, TN: 8, xLanes: true, P: 2 } : { TM: 8, R: 7, TN: 4, xLanes: true };
  if (S > 0) return j.sh === 2 ? { TM: 4, R: 1, TN: pickTN(j.CoutG, 16) } : { TM: 4, R: 2, TN: pickTN(j.CoutG, 8) };
  // stride 2 (ResNet's 28/14/7 px downsampling): 7-row tiles read less of the window twice
  return { TM: 4, R: j.sh === 2 && j.Ho % 7 === 0 ? 7 : 4, TN: 4 };
}

/**
 * The per-input-channel body of conv2d_fwd, unrolled: load the NR x NV vec4 input window and the
 * taps' weight vec4s, then for each accumulator (pixel, channel quad) run every tap while it
 * stays in registers.
 */
function fwdBody(t: Tile, j: Job, S: number): string {
  const { TM, R, TN } = t;
  const TN4 = TN / 4;
  const NR = (R - 1) * j.sh + (j.KH - 1) * j.dh + 1;
  const NV = ceilDiv((TM - 1) * j.sw + (j.KW - 1) * j.dw + 1, 4);
  const L: string[] = [];
  if (t.rowLoop) {
    // one kernel row per loop iteration: the window row kh*DH, the row's taps
    L.push(`for (var kh = 0u; kh < ${j.KH}u; kh++) {`);
    for (let v = 0; v < NV; v++) L.push(`let x0_${v} = x[xo + kh * ${j.dh}u * W4 + ${v}u];`);
    for (let kw = 0; kw < j.KW; kw++) for (let q = 0; q < TN4; q++) L.push(`let w0_${kw}_${q} = w[wi + (kh * ${j.KW}u + ${kw}u) * ts + ${q}u];`);
    for (let m = 0; m < TM; m++)
      for (let q = 0; q < TN4; q++) {
        const a = `acc[${m * TN4 + q}]`;
        const terms: string[] = [];
        for (let kw = 0; kw < j.KW; kw++) {
          const c = m * j.sw + kw * j.dw;
          terms.push(`s = fma(vec4f(x0_${c >> 2}[${c & 3}]), w0_${kw}_${q}, s);`);
        }
        L.push(`{ var s = ${a}; ${terms.join(' ')} ${a} = s; }`);
      }
    L.push('}');
    return L.join('\n    ');
  }
  const P = t.P ?? 1;
  if (t.xLanes && P === 1) {
    // The S lanes of a subgroup read the same window: lane l loads item r*S + l (offset xOff_r,
    // fixed per lane) and the others take it by broadcast; each lane loads its own weights.
    const nX = NR * NV;
    for (let r = 0; r * S < nX; r++) L.push(`let xl${r} = x[xo + xOff${r}];`);
    for (let k = 0; k < nX; k++) L.push(`let x${Math.floor(k / NV)}_${k % NV} = subgroupBroadcast(xl${Math.floor(k / S)}, ${k % S}u);`);
  } else if (t.xLanes) {
    // P tiles x Q = S/P channel blocks per subgroup: lane l loads window item r*(S/P) + l/P of
    // tile l % P and weight item r*(S/Q) + l/Q of its own block; lane (tile tp, block tq) takes
    // window item k from lane (k % (S/P))*P + tp and weight item k from (k % (S/Q))*Q + tq, one
    // shuffle each (a lane-varying shuffle costs about a broadcast on lavapipe, round 4).
    const Q = S / P;
    const nX = NR * NV;
    const nW = j.KH * j.KW * TN4;
    for (let r = 0; r * (S / P) < nX; r++) L.push(`let xl${r} = x[xo + xOff${r}];`);
    for (let k = 0; k < nX; k++) L.push(`let x${Math.floor(k / NV)}_${k % NV} = subgroupShuffle(xl${Math.floor(k / (S / P))}, ${(k % (S / P)) * P}u + tp);`);
    for (let r = 0; r * (S / Q) < nW; r++) L.push(`let wl${r} = w[wi + wOff${r}];`);
    for (let k = 0; k < nW; k++) {
      const tap = Math.floor(k / TN4);
      L.push(`let w${Math.floor(tap / j.KW)}_${tap % j.KW}_${k % TN4} = subgroupShuffle(wl${Math.floor(k / (S / Q))}, ${(k % (S / Q)) * Q}u + tq);`);
    }
  } else for (let r = 0; r < NR; r++) for (let v = 0; v < NV; v++) L.push(`let x${r}_${v} = x[xo + ${r}u * W4 + ${v}u];`);
  if (t.xLanes && P > 1) {
    // weights done above
  } else if (S > 0 && !t.xLanes) {
    // Every lane needs the same weights, and lavapipe runs a load lane by lane: lane l loads
    // weight vec4 number r*S + l (offset wOff_r, fixed per lane) and the others read it from
    // lane l by broadcast, so a round of S weights costs one load per lane instead of S.
    const nW = j.KH * j.KW * TN4;
    for (let r = 0; r * S < nW; r++) L.push(`let wl${r} = w[wi + wOff${r}];`);
    for (let k = 0; k < nW; k++) {
      const tap = Math.floor(k / TN4);
      L.push(`let w${Math.floor(tap / j.KW)}_${tap % j.KW}_${k % TN4} = subgroupBroadcast(wl${Math.floor(k / S)}, ${k % S}u);`);
    }
  } else
    for (let kh = 0; kh < j.KH; kh++)
      for (let kw = 0; kw < j.KW; kw++) for (let q = 0; q < TN4; q++) L.push(`let w${kh}_${kw}_${q} = w[wi + ${kh * j.KW + kw}u * ts + ${q}u];`);
  for (let rr = 0; rr < R; rr++)
    for (let m = 0; m < TM; m++)
      for (let q = 0; q < TN4; q++) {
        const a = `acc[${(rr * TM + m) * TN4 + q}]`;
        const terms: string[] = [];
        for (let kh = 0; kh < j.KH; kh++)
          for (let kw = 0; kw < j.KW; kw++) {
            const r = rr * j.sh + kh * j.dh;
            const c = m * j.sw + kw * j.dw;
            terms.push(`s = fma(vec4f(x${r}_${c >> 2}[${c & 3}]), w${kh}_${kw}_${q}, s);`);
          }
        L.push(`{ var s = ${a}; ${terms.join(' ')} ${a} = s; }`);
      }
  return L.join('\n    ');
}

/**
 * The stores of conv2d_fwd (+ bias): a runtime loop over the TN channels (few store sites keep
 * the compile short; the accumulators are copied to an indexable array first), pixels unrolled.
 */
function fwdStore(t: Tile): string {
  const { TM, R, TN } = t;
  const L: string[] = [`var out = acc;`, `for (var c = 0u; c < ${TN}u; c++) {`, `  if (co0 + c >= p.CoutG) { break; }`];
  for (let rr = 0; rr < R; rr++) {
    L.push(`  if (oh0 + ${rr}u < p.Ho) {`);
    for (let m = 0; m < TM; m++)
      L.push(`    if (ow0 + ${m}u < p.Wo) { y[yb[c] + ${rr}u * rowStep + ${m}u * p.ysw] = out[${(rr * TM + m) * (TN / 4)}u + c / 4u][c % 4u] + bv[c]; }`);
    L.push('  }');
  }
  L.push('}');
  return L.join('\n  ');
}

/** The shader header, entry-point argument and per-lane weight offsets of the subgroup path. */
function subgroupDefines(S: number, nW: number, TN4: number, nX = 0, NV = 0, P = 1): { ENABLE: string; SG_ARG: string; SG_PRE: string; SG_NAN: string } {
  if (S === 0) return { ENABLE: '', SG_ARG: '', SG_PRE: '', SG_NAN: '' };
  const pre: string[] = [];
  if (nX > 0 && P > 1) {
    // the window of tile l % P (xoD: its offset from this lane's own window), own weight block
    const Q = S / P;
    pre.push(`let tp = sl / ${Q}u; let tq = sl % ${Q}u;`);
    pre.push(`let tL = min(t0 - tp + sl % ${P}u, p.nTiles - 1u); let twL = tL % p.tilesW; let thL = (tL / p.tilesW) % p.tilesH; let nL = tL / p.tilesW / p.tilesH;`);
    pre.push(`let xoD = ((nL * p.xPlanes + g * p.CinG) * p.Hp + thL * R * SH) * p.Wp4 + (twL * TM * SW) / 4u - xo; // wraps: u32 arithmetic is modular`);
    for (let r = 0; r * (S / P) < nX; r++) pre.push(`let xk${r} = min(${r * (S / P)}u + sl / ${P}u, ${nX - 1}u); let xOff${r} = xoD + (xk${r} / ${NV}u) * W4 + xk${r} % ${NV}u;`);
    for (let r = 0; r * (S / Q) < nW; r++) pre.push(`let wk${r} = min(${r * (S / Q)}u + sl / ${Q}u, ${nW - 1}u); let wOff${r} = (wk${r} / ${TN4}u) * ts + wk${r} % ${TN4}u;`);
    pre.push('let sgOk = subgroupAll(subgroupBroadcast(li, 0u) + sl == li);');
  } else if (nX > 0) {
    for (let r = 0; r * S < nX; r++) pre.push(`let xk${r} = min(${r * S}u + sl, ${nX - 1}u); let xOff${r} = (xk${r} / ${NV}u) * W4 + xk${r} % ${NV}u;`);
    // a subgroup must be S consecutive lanes (one pixel tile); every implementation we know does
    // that, but if not, the outputs become NaN rather than silently wrong (as in conv2d_wgrad)
    pre.push('let sgOk = subgroupAll(subgroupBroadcast(li, 0u) + sl == li);');
  } else for (let r = 0; r * S < nW; r++) pre.push(`let wk${r} = min(${r * S}u + sl, ${nW - 1}u); let wOff${r} = (wk${r} / ${TN4}u) * ts + wk${r} % ${TN4}u;`);
  return {
    ENABLE: 'enable subgroups;',
    SG_ARG: ', @builtin(subgroup_invocation_id) sl: u32',
    SG_PRE: pre.join('\n  '),
    SG_NAN: nX > 0 ? ' + bitcast<f32>(select(0u, 0x7fc00000u, !sgOk))' : '',
  };
}

/** Padded input extents for an R x TM tiling of the job's output. */
function paddedExtent(j: Job, R: number, TM: number): { tilesH: number; tilesW: number; Hp: number; Wp4: number; NV: number } {
  const tilesW = ceilDiv(j.Wo, TM);
  const tilesH = ceilDiv(j.Ho, R);
  const NV = ceilDiv((TM - 1) * j.sw + (j.KW - 1) * j.dw + 1, 4);
  const Hp = (tilesH * R - 1) * j.sh + (j.KH - 1) * j.dh + 1;
  const Wp4 = ((tilesW - 1) * TM * j.sw) / 4 + NV;
  return { tilesH, tilesW, Hp, Wp4, NV };
}

/** y[place] = conv(x, packed weights) + bias with the tiled GEMM kernel. */
function runTiled(x: Tensor, wp: Tensor, bias: Tensor | null, j: Job, t0: Tile, y: Tensor): void {
  let t = t0;
  const { TM, R, TN } = t;
  const CoutGp = Math.ceil(j.CoutG / TN) * TN;
  const { tilesH, tilesW, Hp, Wp4 } = paddedExtent(j, R, TM);
  const xp = padInput(x, j.pt, j.pl, Hp, Wp4 * 4, 1, 1, j.up);
  const nTiles = j.N * tilesH * tilesW;
  const coBlocks = CoutGp / TN;
  const pl = j.place;
  const S = t.rowLoop ? 0 : sharedLanes();
  // x shared across the subgroup: its lanes must all be one real subgroup (broadcasts read lane k of it)
  // (and few enough tiles for one dispatch at 64/Q tiles per workgroup; else the per-lane mapping)
  const xLanes = !!t.xLanes && S > 0 && S === getGpu().subgroupSize && ceilDiv(nTiles, (64 * (t.P ?? 1)) / S) <= MAX_GROUPS;
  if (!xLanes && t.xLanes) t = { ...t, xLanes: false };
  const P = xLanes ? (t.P ?? 1) : 1;
  const Q = S / P; // lanes per pixel tile
  const tilesPerWg = xLanes ? 64 / Q : 64;
  const coSuper = xLanes ? ceilDiv(coBlocks, Q) : coBlocks;
  const u = { Hp, Wp4, CinG: j.CinG, CoutGp4: CoutGp / 4, Ho: j.Ho, Wo: j.Wo, tilesW, tilesH, nTiles, coBlocks, CoutG: j.CoutG, Cout: j.yPlanes, xPlanes: j.planes, hasBias: bias !== null, yH: pl.yH, yW: pl.yW, yr0: pl.yr0, yc0: pl.yc0, ysh: pl.ysh, ysw: pl.ysw, coSuper };
  const NV = ceilDiv((TM - 1) * j.sw + (j.KW - 1) * j.dw + 1, 4);
  const NR = (R - 1) * j.sh + (j.KH - 1) * j.dh + 1;
  const defines = memoCode(`fwd ${TM} ${R} ${TN} ${t.rowLoop ?? false} ${xLanes} ${P} ${j.KH} ${j.KW} ${j.sh} ${j.sw} ${j.dh} ${j.dw} ${S}`, () => ({
    TM,
    R,
    TN4: TN / 4,
    KH: j.KH,
    KW: j.KW,
    SH: j.sh,
    SW: j.sw,
    BODY: fwdBody(t, j, S),
    STORE: fwdStore(t),
    ...subgroupDefines(S, j.KH * j.KW * (TN / 4), TN / 4, xLanes ? NR * NV : 0, NV, P),
    TILE_LANES: xLanes ? Q : 1,
  }));
  const gy = j.groups * coSuper;
  if (ceilDiv(nTiles, tilesPerWg) > MAX_GROUPS || gy > MAX_GROUPS) throw new ShapeError(`conv2d: ${nTiles} pixel tiles x ${gy} channel blocks exceed one dispatch`);
  dispatch({ name: 'conv2d_fwd', shader: 'conv2d_fwd', defines }, u, [xp.binding, wp.binding, (bias ?? wp).binding, y.binding], [ceilDiv(nTiles, tilesPerWg), gy]);
  xp.dispose();
}

/** Runs one conv job with weights selected by `taps` (forward: all, in order). */
function runJob(x: Tensor, w: Tensor, bias: Tensor | null, j: Job, taps: TapSel, transpose: boolean, y: Tensor): void {
  if (j.CinG === 1 && j.CoutG === 1) {
    const plain = !transpose && taps.TH === j.KH && taps.TW === j.KW && taps.kh0 === 0 && taps.kw0 === 0 && taps.khStep === 1 && taps.kwStep === 1;
    const wk = plain ? w.view([w.size]) : packWeights(w, 1, 1, j.groups, 1, transpose, taps);
    // zero-insertion (strided backward-data): spread gy out first; the kernel reads it unpadded
    const W = j.up ? Math.ceil(j.W / 4) * 4 : j.W;
    const spread = j.up ? padInput(x, 0, 0, j.H, W, 1, 1, j.up) : null;
    depthwiseRows(spread ?? x, wk, bias, { ...j, W }, y, conv2dTuning.depthwise);
    spread?.dispose();
    wk.dispose();
    return;
  }
  const pl = j.place;
  const identityPlace = pl.yr0 === 0 && pl.yc0 === 0 && pl.ysh === 1 && pl.ysw === 1 && pl.yH === j.Ho && pl.yW === j.Wo;
  const strided = j.sh !== 1 || j.sw !== 1 || j.Ho !== j.H || j.Wo !== j.W;
  const flat = j.KH === 1 && j.KW === 1 && identityPlace && j.pt === 0 && j.pl === 0 && !j.up && (!strided || j.Wo % 4 === 0);
  const t = pickTile(j, flat);
  const wp = packWeights(w, transpose ? j.CoutG : j.CinG, transpose ? j.CinG : j.CoutG, j.groups, t.TN, transpose, taps);
  if (flat) {
    // 1x1: a plain GEMM over pixels. Subsample a strided input first, then treat each image as one long row.
    const P = j.Ho * j.Wo;
    const sampled = strided ? padInput(x, 0, 0, j.Ho, j.Wo, j.sh, j.sw) : null;
    const xv = (sampled ?? x).view([j.N, j.planes, 1, P]);
    const row: Job = { ...j, H: 1, W: P, Ho: 1, Wo: P, sh: 1, sw: 1, place: identity(1, P) };
    runTiled(xv, wp, bias, row, t, y);
    xv.dispose();
    sampled?.dispose();
  } else runTiled(x, wp, bias, j, t, y);
  wp.dispose();
}

const allTaps = (KH: number, KW: number): TapSel => ({ TH: KH, TW: KW, kh0: 0, khStep: 1, kw0: 0, kwStep: 1 });

function forwardJob(g: ConvGeometry): Job {
  return {
    N: g.N,
    planes: g.Cin,
    H: g.H,
    W: g.W,
    yPlanes: g.Cout,
    CinG: g.CinG,
    CoutG: g.CoutG,
    groups: g.groups,
    KH: g.KH,
    KW: g.KW,
    sh: g.sh,
    sw: g.sw,
    dh: g.dh,
    dw: g.dw,
    pt: g.pt,
    pl: g.pl,
    Ho: g.Ho,
    Wo: g.Wo,
    place: identity(g.Ho, g.Wo),
  };
}

/** Forward without autograd. */
export function conv2dForwardRaw(x: Tensor, w: Tensor, bias: Tensor | null, g: ConvGeometry): Tensor {
  const wj = winogradForwardJob(g, conv2dTuning.winograd); // stride-1 3x3: conv-winograd.ts
  if (wj) return winogradConv(x, w, bias, wj, false, padInput);
  if (!bias && gemm1x1(g)) return gemm1x1Forward(x, w, g);
  const y = new Tensor([g.N, g.Cout, g.Ho, g.Wo], 'f32');
  runJob(x, w, bias, forwardJob(g), allTaps(g.KH, g.KW), false, y);
  return y;
}

// ---- 1x1 convs as matrix products ------------------------------------------------------------

/**
 * A 1x1 conv without padding is y[n] = w [Cout x Cin] . x[n] [Cin x Ho*Wo] (x subsampled first
 * when strided). Forward, the matmul kernel (weight rows shared across the subgroup, no weight
 * packing, no pixel padding) ran 1.14-1.30x faster than the conv kernel's flat tiles. Backward-
 * data at stride 1 (dx[n] = wᵀ . gy[n]) wins since the GEMM's round-4 tiles (1.19-1.38x); the
 * weight gradient (gy . xᵀ per image + a batch sum) and strided backward-data keep the conv
 * kernels (bench/NOTES.md, rounds 3 and 4). Channel counts that are multiples of 4 keep its vec4 loads.
 */
function gemm1x1(g: ConvGeometry): boolean {
  if (conv2dTuning.gemm1x1 === false || conv2dTuning.tile) return false;
  // measured only where matmul shares its A rows across 8-lane subgroups (lavapipe); elsewhere
  // (SwiftShader's 4 lanes, no subgroups) the flat conv tiles stay
  if (getGpu().subgroupSize !== MATMUL_TILE_SHARED.WX || matmulTuning.subgroups === false || conv2dTuning.subgroups === false) return false;
  const strided = g.sh !== 1 || g.sw !== 1 || g.Ho !== g.H || g.Wo !== g.W;
  return g.KH === 1 && g.KW === 1 && g.pt === 0 && g.pl === 0 && g.groups === 1 && g.Cin % 4 === 0 && g.Cout % 4 === 0 && (!strided || g.Wo % 4 === 0);
}

/** x as [N, Cin, Ho*Wo]: the sampled pixels of a strided 1x1 conv (a copy), else a view. */
function pixels1x1(x: Tensor, g: ConvGeometry): Tensor {
  const strided = g.sh !== 1 || g.sw !== 1 || g.Ho !== g.H || g.Wo !== g.W;
  const s = strided ? padInput(x, 0, 0, g.Ho, g.Wo, g.sh, g.sw) : x;
  const v = s.view([g.N, g.Cin, g.Ho * g.Wo]);
  if (s !== x) s.dispose();
  return v;
}

function gemm1x1Forward(x: Tensor, w: Tensor, g: ConvGeometry): Tensor {
  const xv = pixels1x1(x, g);
  const wv = w.view([1, g.Cout, g.Cin]);
  const y = matmulRaw(wv, xv, false, false, null, 'conv2d_matmul');
  const out = y.view([g.N, g.Cout, g.Ho, g.Wo]);
  for (const t of [xv, wv, y]) t.dispose();
  return out;
}

/** dx of a stride-1 1x1 conv: dx[n] = wᵀ [Cin x Cout] . gy[n] [Cout x H*W], w read transposed in the kernel. */
function gemm1x1BackwardData(gy: Tensor, w: Tensor, g: ConvGeometry): Tensor {
  const gv = gy.view([g.N, g.Cout, g.H * g.W]);
  const wv = w.view([1, g.Cout, g.Cin]);
  const dx = matmulRaw(wv, gv, true, false, null, 'conv2d_matmul_dx');
  const out = dx.view([g.N, g.Cin, g.H, g.W]);
  for (const t of [gv, wv, dx]) t.dispose();
  return out;
}

// ---- backward-data ------------------------------------------------------------------------

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const mod = (a: number, m: number) => ((a % m) + m) % m;

/**
 * One dimension of the stride-phase split: output rows i = a + s*t (t < count) receive, from the
 * kernel rows k = kTop, kTop - step, ... (T of them), gy rows t + e0 + u*dil' for u < T.
 */
function phase(a: number, s: number, pad: number, K: number, d: number, outLen: number) {
  const ks: number[] = [];
  for (let k = K - 1; k >= 0; k--) if (mod(a + pad - k * d, s) === 0) ks.push(k);
  const count = Math.max(0, ceilDiv(outLen - a, s));
  if (ks.length === 0 || count === 0) return null;
  const e0 = (a + pad - ks[0] * d) / s; // the first tap reads gy row t + e0
  return { T: ks.length, kTop: ks[0], step: s / gcd(s, d), dil: d / gcd(s, d), top: -e0, count };
}

/** dx = transposed convolution of gy with w, one stride phase at a time. */
export function conv2dBackwardData(gy: Tensor, w: Tensor, g: ConvGeometry): Tensor {
  const wj = winogradBackwardDataJob(g, conv2dTuning.winograd); // stride-1 3x3: conv-winograd.ts
  if (wj) return winogradConv(gy, w, null, wj, true, padInput);
  if (gemm1x1(g) && conv2dTuning.gemm1x1Data !== false && g.sh === 1 && g.sw === 1 && g.Ho === g.H && g.Wo === g.W) return gemm1x1BackwardData(gy, w, g);
  // strided depthwise: one gather kernel instead of the phases below (conv-depthwise-data.ts)
  if (g.CinG === 1 && g.CoutG === 1 && (g.sh > 1 || g.sw > 1) && !conv2dTuning.depthwise?.phases) return depthwiseBackwardData(gy, w, forwardJob(g), conv2dTuning.depthwise);
  const hot = g.KH <= 3 && g.KW <= 3 && g.sh <= 2 && g.sw <= 2 && g.dh === 1 && g.dw === 1;
  if ((g.sh > 1 || g.sw > 1) && !hot) {
    // rare shapes: one stride-1 conv over gy spread out with zeros (one kernel variant, not one per phase)
    const dx = new Tensor([g.N, g.Cin, g.H, g.W], 'f32');
    const j: Job = {
      N: g.N,
      planes: g.Cout,
      H: (g.Ho - 1) * g.sh + 1,
      W: (g.Wo - 1) * g.sw + 1,
      yPlanes: g.Cin,
      CinG: g.CoutG,
      CoutG: g.CinG,
      groups: g.groups,
      KH: g.KH,
      KW: g.KW,
      sh: 1,
      sw: 1,
      dh: g.dh,
      dw: g.dw,
      pt: (g.KH - 1) * g.dh - g.pt,
      pl: (g.KW - 1) * g.dw - g.pl,
      Ho: g.H,
      Wo: g.W,
      place: identity(g.H, g.W),
      up: [g.sh, g.sw],
    };
    runJob(gy, w, null, j, { TH: g.KH, TW: g.KW, kh0: g.KH - 1, khStep: -1, kw0: g.KW - 1, kwStep: -1 }, true, dx);
    return dx;
  }
  if (g.KH === 1 && g.KW === 1 && g.pt === 0 && g.pl === 0 && (g.sh > 1 || g.sw > 1) && g.W % 4 === 0 && !conv2dTuning.oldStrided1x1) {
    // 1x1 strided: dx is zero but at the sampled pixels. Those come from a flat 1x1 conv of gy
    // (a GEMM over the Ho*Wo pixels, vec4 stores), then one vec4 pass spreads them out between
    // zeros, instead of a zero fill plus lane-by-lane strided stores (bench/NOTES.md, round 3).
    const sub = new Tensor([g.N, g.Cin, g.Ho, g.Wo], 'f32');
    const j: Job = { ...forwardJob({ ...g, H: g.Ho, W: g.Wo, sh: 1, sw: 1 }), planes: g.Cout, yPlanes: g.Cin, CinG: g.CoutG, CoutG: g.CinG };
    runJob(gy, w, null, j, allTaps(1, 1), true, sub);
    const flat = padInput(sub, 0, 0, g.H, g.W, 1, 1, [g.sh, g.sw]);
    sub.dispose();
    const dx = flat.view([g.N, g.Cin, g.H, g.W]);
    flat.dispose();
    return dx;
  }
  const rows = Array.from({ length: g.sh }, (_, a) => phase(a, g.sh, g.pt, g.KH, g.dh, g.H));
  const cols = Array.from({ length: g.sw }, (_, b) => phase(b, g.sw, g.pl, g.KW, g.dw, g.W));
  const complete = rows.every((r) => r !== null) && cols.every((c) => c !== null);
  const dx = complete ? new Tensor([g.N, g.Cin, g.H, g.W], 'f32') : full([g.N, g.Cin, g.H, g.W], 0);
  for (let a = 0; a < g.sh; a++)
    for (let b = 0; b < g.sw; b++) {
      const r = rows[a];
      const c = cols[b];
      if (!r || !c) continue;
      const j: Job = {
        N: g.N,
        planes: g.Cout,
        H: g.Ho,
        W: g.Wo,
        yPlanes: g.Cin,
        CinG: g.CoutG,
        CoutG: g.CinG,
        groups: g.groups,
        KH: r.T,
        KW: c.T,
        sh: 1,
        sw: 1,
        dh: r.dil,
        dw: c.dil,
        pt: r.top,
        pl: c.top,
        Ho: r.count,
        Wo: c.count,
        place: { yH: g.H, yW: g.W, yr0: a, yc0: b, ysh: g.sh, ysw: g.sw },
      };
      runJob(gy, w, null, j, { TH: r.T, TW: c.T, kh0: r.kTop, khStep: -r.step, kw0: c.kTop, kwStep: -c.step }, true, dx);
    }
  return dx;
}

// ---- backward-weight ----------------------------------------------------------------------

interface WTile {
  TM: number;
  R: number;
  TCO: number;
  TCI: number;
  /** one kernel row per lane (large kernels: KH times less unrolled code) */
  rowLanes?: boolean;
}

const pow2AtMost = (n: number, cap: number) => {
  let p = 1;
  while (p * 2 <= Math.min(n, cap)) p *= 2;
  return p;
};

function pickWTile(g: ConvGeometry, flat1x1: boolean): WTile {
  if (conv2dTuning.wtile) return conv2dTuning.wtile;
  const hot = g.KH <= 3 && g.KW <= 3 && g.sh <= 2 && g.sw <= 2 && g.dh === 1 && g.dw === 1;
  // Shared gy loads (subgroups) need CinG / TCI to be a multiple of the subgroup size; they make
  // gy cheap, so fewer input channels per lane win (3x3 64->64: wgrad 4x2x8x1 ~36 ms vs 109
  // unshared; 1x1 256->128: 4x1x16x4 best).
  const S = sharedLanes();
  const shareTci = (max: number): number => {
    for (let tci = max; tci >= 1; tci /= 2) if (S > 0 && g.CinG % (tci * S) === 0) return tci;
    return 0;
  };
  if (flat1x1 && g.CoutG >= 16 && shareTci(4)) return { TM: 4, R: 1, TCO: 16, TCI: shareTci(4) };
  // 1x1 convs whose rows are not whole vec4s after subsampling (stride 2 at 14 or 7 px): the
  // flat tile's channel blocks (round 4: 4x1x16-32x4 1.5-1.9x 4x2x8x1)
  const round4 = conv2dTuning.stridedTiles !== false && S === 8; // measured on lavapipe's 8 lanes only
  if (hot && !flat1x1 && g.KH === 1 && g.KW === 1 && shareTci(4) && round4) return { TM: 4, R: 1, TCO: pow2AtMost(g.CoutG, 32), TCI: shareTci(4) };
  // stride 2: 32 output channels per lane, one pixel row (each x window, loaded lane by lane,
  // then feeds 4x as many FMAs; round 4: 1.6-2.0x 4x2x8x1 on ResNet-18's stride-2 layers)
  if (hot && !flat1x1 && g.sh === 2 && g.sw === 2 && shareTci(1) && round4) return { TM: 4, R: 1, TCO: pow2AtMost(g.CoutG, 32), TCI: 1 };
  // stride-1 3x3 (the convs Winograd leaves): 16 output channels, one row (round 4: 1.08-1.17x
  // 4x2x8x1 on DenseNet's 128->32 at 28/14/7 px, 1.01x on 32->32)
  if (hot && !flat1x1 && g.sh === 1 && g.sw === 1 && g.KH === 3 && g.KW === 3 && g.CoutG >= 16 && shareTci(1) && round4) return { TM: 4, R: 1, TCO: 16, TCI: 1 };
  if (hot && !flat1x1 && shareTci(1)) return { TM: 4, R: 2, TCO: pow2AtMost(g.CoutG, 8), TCI: 1 };
  if (flat1x1)
    return g.CoutG >= 16 && g.CinG >= 16 ? { TM: 4, R: 1, TCO: 16, TCI: 16 } : { TM: 8, R: 1, TCO: pow2AtMost(g.CoutG, 8), TCI: pow2AtMost(g.CinG, 8) };
  if (hot) return { TM: 4, R: 2, TCO: pow2AtMost(g.CoutG, 8), TCI: pow2AtMost(g.CinG, 2) };
  // others: one kernel row per lane and few accumulators: a short unrolled body, a quick compile
  let TCO = pow2AtMost(g.CoutG, 4);
  while (TCO * g.KW > 32 && TCO > 1) TCO /= 2;
  return { TM: 4, R: 1, TCO, TCI: 1, rowLanes: true };
}

/** The unrolled per-tile body and the stores of conv2d_wgrad. */
function wgradCode(t: WTile, g: ConvGeometry, S: number): { BODY: string; STORE: string; ENABLE: string; SG_ARG: string; SG_PRE: string } {
  const { TM, R, TCO, TCI } = t;
  const KK = g.KH * g.KW;
  const NR = (R - 1) * g.sh + (g.KH - 1) * g.dh + 1;
  const NV = ceilDiv((TM - 1) * g.sw + (g.KW - 1) * g.dw + 1, 4);
  const L: string[] = [];
  const pre: string[] = [];
  const V = TM / 4;
  if (S > 0) {
    // The S lanes of a subgroup differ only in their input-channel block (wgradLanes checks the
    // lane order allows it), so they read the same gy vec4s: lane l loads item r*S + l of the
    // TCO x R x V of them and the others take it by broadcast, one load per lane per S items.
    const nG = TCO * R * V;
    for (let r = 0; r * S < nG; r++) {
      pre.push(`let gk${r} = min(${r * S}u + sl, ${nG - 1}u); let gOff${r} = (g * p.CoutG + min(co0 + gk${r} / ${R * V}u, p.CoutG - 1u)) * gPlane + ((gk${r} / ${V}u) % ${R}u) * p.gWp4 + gk${r} % ${V}u;`);
      L.push(`let gl${r} = gy[gpos + gOff${r}];`);
    }
    for (let k = 0; k < nG; k++) L.push(`let g${Math.floor(k / (R * V))}_${Math.floor(k / V) % R}_${k % V} = subgroupBroadcast(gl${Math.floor(k / S)}, ${k % S}u);`);
    // lanes must form subgroups in order (true of every implementation we know); if not, say so with NaN
    pre.push('let sgOk = subgroupAll(subgroupBroadcast(L0, 0u) + sl == L0);');
  } else
    for (let jc = 0; jc < TCO; jc++)
      for (let rr = 0; rr < R; rr++) for (let v = 0; v < V; v++) L.push(`let g${jc}_${rr}_${v} = gy[gpos + gb[${jc}] + ${rr}u * gW4 + ${v}u];`);
  for (let i = 0; i < TCI; i++) for (let r = 0; r < NR; r++) for (let v = 0; v < NV; v++) L.push(`let x${i}_${r}_${v} = x[xpos + xb[${i}] + ${r}u * xW4 + ${v}u];`);
  for (let jc = 0; jc < TCO; jc++)
    for (let i = 0; i < TCI; i++)
      for (let kh = 0; kh < g.KH; kh++)
        for (let kw = 0; kw < g.KW; kw++) {
          const a = `acc[${(jc * TCI + i) * KK + kh * g.KW + kw}]`;
          const terms: string[] = [];
          for (let rr = 0; rr < R; rr++)
            for (let m = 0; m < TM; m++) {
              const r = rr * g.sh + kh * g.dh;
              const c = m * g.sw + kw * g.dw;
              terms.push(`s = fma(g${jc}_${rr}_${m >> 2}[${m & 3}], x${i}_${r}_${c >> 2}[${c & 3}], s);`);
            }
          L.push(`{ var s = ${a}; ${terms.join(' ')} ${a} = s; }`);
        }
  // stores: a runtime loop over the channel pairs (few store sites keep the compile short)
  const St: string[] = [
    `var out = acc;`,
    `for (var jc = 0u; jc < ${TCO}u; jc++) {`,
    `  for (var i = 0u; i < ${TCI}u; i++) {`,
    `    if (co0 + jc < p.CoutG && ci0 + i < p.CinG) {`,
    `      let base = ((chunk * p.Cout + g * p.CoutG + co0 + jc) * p.CinG + ci0 + i) * p.KKfull + kh * KK;`,
    `      for (var k = 0u; k < KK; k++) { part[base + k] = out[(jc * ${TCI}u + i) * KK + k]${S > 0 ? ' + bitcast<f32>(select(0u, 0x7fc00000u, !sgOk))' : ''}; }`,
    `    }`,
    `  }`,
    `}`,
  ];
  return {
    BODY: L.join('\n    '),
    STORE: St.join('\n  '),
    ENABLE: S > 0 ? 'enable subgroups;\ndiagnostic(off, subgroup_uniformity);' : '',
    SG_ARG: S > 0 ? ', @builtin(subgroup_invocation_id) sl: u32' : '',
    SG_PRE: pre.join('\n  '),
  };
}

/** dw = sum over pixels of gy (x) shifted x windows, split into chunks of pixel tiles. */
export function conv2dBackwardWeight(x: Tensor, gy: Tensor, g: ConvGeometry): Tensor {
  const wj = winogradWeightGradJob(g, conv2dTuning.winograd); // stride-1 3x3: conv-winograd.ts
  if (wj) return winogradWeightGrad(x, gy, wj, padInput);
  if (g.CinG === 1 && g.CoutG === 1) return depthwiseWeightGrad(x, gy, forwardJob(g), conv2dTuning.depthwise);
  let xIn = x;
  let gg = g;
  let gyIn = gy;
  let views: Tensor[] = [];
  const strided = g.sh !== 1 || g.sw !== 1 || g.Ho !== g.H || g.Wo !== g.W;
  const flat = g.KH === 1 && g.KW === 1 && g.pt === 0 && g.pl === 0 && (!strided || g.Wo % 4 === 0);
  let t = pickWTile(g, flat);
  if (flat) {
    // 1x1: gather the sampled input pixels, then treat each image as one long row
    const xs = strided ? padInput(x, 0, 0, g.Ho, g.Wo, g.sh, g.sw) : x;
    const P = g.Ho * g.Wo;
    xIn = xs.view([g.N, g.Cin, 1, P]);
    gyIn = gy.view([g.N, g.Cout, 1, P]);
    gg = { ...g, H: 1, W: P, Ho: 1, Wo: P, sh: 1, sw: 1, pt: 0, pb: 0, pl: 0, pr: 0 };
    views = [xIn, gyIn];
    if (xs !== x) views.push(xs);
    t = { ...t, R: 1 };
  }
  const { TM, R, TCO, TCI } = t;
  const j = forwardJob(gg);
  const { tilesH, tilesW, Hp, Wp4 } = paddedExtent(j, R, TM);
  const xp = padInput(xIn, gg.pt, gg.pl, Hp, Wp4 * 4);
  const gHp = tilesH * R;
  const gWp = tilesW * TM;
  const gp = padInput(gyIn, 0, 0, gHp, gWp);
  const coT = ceilDiv(gg.CoutG, TCO);
  const ciT = ceilDiv(gg.CinG, TCI);
  const khLanes = t.rowLanes ? gg.KH : 1;
  const lanesPerChunk = gg.groups * coT * ciT * khLanes;
  const nTiles = gg.N * tilesH * tilesW;
  // enough chunks for ~4k lanes, but at least 2 tiles each so partials stay small
  const nChunks = Math.max(1, Math.min(ceilDiv(4096, lanesPerChunk), ceilDiv(nTiles, 2)));
  const tilesPerChunk = ceilDiv(nTiles, nChunks);
  const chunks = ceilDiv(nTiles, tilesPerChunk);
  const nLanes = chunks * lanesPerChunk;
  const wsize = gg.Cout * gg.CinG * gg.KH * gg.KW;
  const part = new Tensor([chunks, wsize], 'f32');
  const u = { Hp, Wp4, xPlanes: gg.Cin, CinG: gg.CinG, gHp, gWp4: gWp / 4, Cout: gg.Cout, CoutG: gg.CoutG, tilesW, tilesH, nTiles, tilesPerChunk, coT, ciT, lanesPerChunk, nLanes, khLanes, dhRows: gg.dh, KKfull: gg.KH * gg.KW };
  const lane = t.rowLanes ? { ...gg, KH: 1 } : gg; // the taps one lane covers
  // gy loads are shared across a subgroup when its lanes differ only in the input-channel block
  const S = sharedLanes();
  // (ciT a multiple of the real size: with a simulated smaller S the whole real subgroup must share)
  const share = S > 0 && khLanes === 1 && ciT % getGpu().subgroupSize === 0 ? S : 0;
  const defines = memoCode(`wgrad ${TM} ${R} ${TCO} ${TCI} ${lane.KH} ${lane.KW} ${gg.sh} ${gg.sw} ${gg.dh} ${gg.dw} ${share}`, () => ({
    TM,
    R,
    TCO,
    TCI,
    KK: lane.KH * lane.KW,
    SH: gg.sh,
    SW: gg.sw,
    ...wgradCode(t, lane, share),
  }));
  dispatch({ name: 'conv2d_wgrad', shader: 'conv2d_wgrad', defines }, u, [xp.binding, gp.binding, part.binding], lanesGrid(nLanes));
  xp.dispose();
  gp.dispose();
  for (const v of views) v.dispose();
  const dwFlat = chunks === 1 ? part.view([wsize]) : sum(part, [0]);
  part.dispose();
  const dw = dwFlat.view([g.Cout, g.CinG, g.KH, g.KW]);
  dwFlat.dispose();
  return dw;
}

/** db[co] = sum of gy over batch and pixels. */
function biasGrad(gy: Tensor): Tensor {
  const [N, C, H, W] = gy.shape;
  const v = gy.view([N, C, H * W]);
  const s = sum(v, [2]);
  const db = sum(s, [0]);
  v.dispose();
  s.dispose();
  return db;
}

// ---- the op -------------------------------------------------------------------------------

const conv2dOp = defineOp<ConvParams>({
  name: 'conv2d',
  shape(inputs, p) {
    const [x, w, b] = inputs;
    expectRank('conv2d', x, 4, 'x');
    expectRank('conv2d', w, 4, 'weight');
    expectDtype('conv2d', x, 'f32', 'x');
    expectDtype('conv2d', w, 'f32', 'weight');
    if (b) expectDtype('conv2d', b, 'f32', 'bias');
    const g = convGeometry(x.shape, w.shape, p, b?.shape ?? null);
    return { shape: [g.N, g.Cout, g.Ho, g.Wo], dtype: 'f32' };
  },
  forward(inputs, p, ctx) {
    const [x, w, b] = inputs;
    const g = convGeometry(x.shape, w.shape, p);
    // dx needs w, dw needs x (or, by Winograd, the forward's input transform of x); neither needs y
    const kept = ctx.needsGrad && ctx.inputNeedsGrad[1] ? winogradForwardKeepingV(x, w, b ?? null, g, conv2dTuning.winograd, padInput) : null;
    const y = kept ? kept.y : conv2dForwardRaw(x, w, b ?? null, g);
    if (ctx.needsGrad) ctx.save(...(ctx.inputNeedsGrad[1] ? [kept ? kept.v : x] : []), ...(ctx.inputNeedsGrad[0] ? [w] : []));
    kept?.v.dispose();
    return y;
  },
  backward(gy, { params, saved, inputShapes, inputNeedsGrad }) {
    const g = convGeometry(inputShapes[0], inputShapes[1], params);
    const x = inputNeedsGrad[1] ? saved[0] : null;
    const w = inputNeedsGrad[0] ? saved[inputNeedsGrad[1] ? 1 : 0] : null;
    return [
      w ? conv2dBackwardData(gy, w, g) : null,
      x ? (isKeptV(x) ? winogradWeightGradFromKept(x, gy, g) : conv2dBackwardWeight(x, gy, g)) : null,
      inputShapes.length > 2 && inputNeedsGrad[2] ? biasGrad(gy) : null,
    ];
  },
});

/**
 * 2-D convolution (NCHW). x [N, Cin, H, W], w [Cout, Cin / groups, kH, kW], bias [Cout] or null.
 * Output [N, Cout, Ho, Wo], Ho = floor((H + top + bottom - dilation * (kH - 1) - 1) / stride) + 1
 * (PyTorch's rule). padding: one value, [vertical, horizontal] or [top, bottom, left, right].
 */
export function conv2d(x: Tensor, w: Tensor, bias: Tensor | null = null, o: Conv2dOptions = {}): Tensor {
  const p = normParams(o);
  return conv2dOp(bias ? [x, w, bias] : [x, w], p);
}
