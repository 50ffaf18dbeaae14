// Plumbing shared by the conv2d paths (conv.ts: forward and backward-data; conv-wgrad.ts: the
// weight gradient; conv-gemm1x1.ts: 1x1 convs on the matmul kernel): the geometry types, the
// kernels' view of a conv (Job), the padded-input and weight-packing copies, the tuning switches,
// generated-code memo and the subgroup size the kernels share loads over.
import { Tensor } from '../tensor.ts';
import { dispatch, groupsFor } from '../program.ts';
import { getGpu } from '../device.ts';
import type { DwJob, DwTuning } from './conv-depthwise.ts';

export interface ConvParams {
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

export const ceilDiv = (a: number, b: number) => Math.ceil(a / b);

/** Workgroups for `lanes` invocations of the 64-wide conv kernels (they read the linear id from both grid dimensions). */
export const lanesGrid = (lanes: number): [number, number] => groupsFor(lanes, 64);

/** A conv as the kernels see it: the input has `planes` channels per image (H x W), y has `yPlanes`. */
export interface Job extends DwJob {
  yPlanes: number;
  CinG: number;
  CoutG: number;
  groups: number;
  /** the input is read spread out by these factors (zeros between): zero-insertion backward-data */
  up?: [number, number];
  /**
   * one stride phase of a stride-2 forward (conv.ts, forwardPhases): the input is read subsampled
   * by 2 from (-top, -left) of x, the taps are a stride-2 subset, and the kernel adds into y
   * (`accumulate`) instead of writing it
   */
  sub?: { top: number; left: number; accumulate: boolean };
}

export const identity = (Ho: number, Wo: number) => ({ yH: Ho, yW: Wo, yr0: 0, yc0: 0, ysh: 1, ysw: 1 });

/**
 * The input as [N*C][Hp][Wp] (Wp a multiple of 4) with x at (top, left), zero elsewhere; rows and
 * columns subsampled by sr/sc, or spread out by `up` (see conv2d_pad.wgsl). Returns a view of x
 * itself when that layout is x's own.
 */
export function padInput(x: Tensor, top: number, left: number, Hp: number, Wp: number, sr = 1, sc = 1, up: readonly [number, number] = [1, 1]): Tensor {
  const [N, C, H, W] = x.shape;
  if (top === 0 && left === 0 && Hp === H && Wp === W && sr === 1 && sc === 1 && up[0] === 1 && up[1] === 1) return x.view([x.size]);
  if (Wp % 4 !== 0) throw new Error(`conv2d: internal: padded row ${Wp} is not a multiple of 4`);
  const xp = new Tensor([N * C * Hp * Wp], 'f32');
  if (W % 4 === 0 && sr === 1 && sc === 1 && up[0] === 1 && up[1] === 1 && conv2dTuning.padVec4 !== false) {
    // rows of whole vec4s: vec4 loads, shifted by the padding (conv2d_pad_vec4.wgsl)
    const k0 = Math.floor(-left / 4);
    const u = { Hp, Wp4: Wp / 4, H, W4: W / 4, top, k0, planes: N * C, rows: N * C * Hp };
    dispatch({ name: 'conv2d_pad', shader: 'conv2d_pad_vec4', defines: { SHIFT: -left - 4 * k0 } }, u, [x.binding, xp.binding], lanesGrid(N * C * Hp));
    return xp;
  }
  const u = { Hp, Wp4: Wp / 4, H, W, top, left, sr, sc, planes: N * C, rows: N * C * Hp };
  dispatch({ name: 'conv2d_pad', shader: 'conv2d_pad', defines: { UPH: up[0], UPW: up[1] } }, u, [x.binding, xp.binding], lanesGrid(N * C * Hp));
  return xp;
}

/** Taps (kh0 + t*khStep for t < TH, likewise columns) re-laid out by conv2d_wpack; see there. */
export interface TapSel {
  TH: number;
  TW: number;
  kh0: number;
  khStep: number;
  kw0: number;
  kwStep: number;
}

const WPACK4 = { V: 4, OUT: 'vec4f', STORE: 'out[i / 4u] = vec4f(v[0], v[1], v[2], v[3]);' };
const WPACK1 = { V: 1, OUT: 'f32', STORE: 'out[i] = v[0];' };

export function packWeights(w: Tensor, CinG: number, CoutG: number, groups: number, padTo: number, transpose: boolean, taps: TapSel): Tensor {
  const [, , KH, KW] = w.shape;
  const fast = transpose ? CinG : CoutG;
  const slow = transpose ? CoutG : CinG;
  const Fp = Math.ceil(fast / padTo) * padTo;
  const total = groups * taps.TH * taps.TW * slow * Fp;
  const out = new Tensor([total], 'f32');
  const u = { total, CinG, CoutG, Fp, TH: taps.TH, TW: taps.TW, KH, KW, kh0: taps.kh0, khStep: taps.khStep, kw0: taps.kw0, kwStep: taps.kwStep, transpose };
  const V = Fp % 4 === 0 ? 4 : 1;
  dispatch({ name: 'conv2d_wpack', shader: 'conv2d_wpack', defines: V === 4 ? WPACK4 : WPACK1 }, u, [w.binding, out.binding], groupsFor(total / V));
  return out;
}

/** A conv2d_fwd tile (conv.ts: pickTile, fwdBody): R rows x TM pixels x TN output channels per invocation. */
export interface Tile {
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
  /** 1x1 weight gradient on the matmul kernel: true forces it where gemm1x1 applies, false never; unset: by shape */
  gemm1x1Wgrad?: boolean;
  /** false: stride-2 convs on round 3's tiles (no subgroup-shared input windows; comparisons only) */
  stridedTiles?: boolean;
  /** stride-2 3x3 forward as 4 stride-1 phase convs (conv.ts, forwardPhases): true forces, false never; unset: by shape */
  s2Phases?: boolean;
  /** false: the forward does not keep its padded x for the weight gradient (conv.ts, conv2dForwardKeepingPad; comparisons only) */
  keepPad?: boolean;
  /** conv2d_wgrad's lane target (default 4096) and least pixel tiles per chunk (default 32; conv-wgrad.ts) */
  wgradLanes?: number;
  wgradMinTiles?: number;
  /** false: every padded copy on the scalar conv2d_pad kernel (no vec4 variant; comparisons only) */
  padVec4?: boolean;
} = {};

/**
 * Generated kernel code, memoised by the few numbers it depends on: the unrolled bodies are
 * kilobytes of WGSL, and rebuilding them (and hashing them as a pipeline key) on every call cost
 * more than small kernels take to run. Returning the same object also lets program.ts find the
 * pipeline by identity.
 */
const codeMemo = new Map<string, Record<string, string | number>>();
export function memoCode(key: string, make: () => Record<string, string | number>): Record<string, string | number> {
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
export function sharedLanes(): number {
  const real = getGpu().subgroupSize;
  const want = conv2dTuning.subgroups;
  if (want === false || real === 0) return 0;
  const S = typeof want === 'number' ? want : real;
  return S >= 4 && 64 % S === 0 && real % S === 0 ? S : 0;
}

/** Padded input extents for an R x TM tiling of the job's output. */
export function paddedExtent(j: Job, R: number, TM: number): { tilesH: number; tilesW: number; Hp: number; Wp4: number; NV: number } {
  const tilesW = ceilDiv(j.Wo, TM);
  const tilesH = ceilDiv(j.Ho, R);
  const NV = ceilDiv((TM - 1) * j.sw + (j.KW - 1) * j.dw + 1, 4);
  const Hp = (tilesH * R - 1) * j.sh + (j.KH - 1) * j.dh + 1;
  const Wp4 = ((tilesW - 1) * TM * j.sw) / 4 + NV;
  return { tilesH, tilesW, Hp, Wp4, NV };
}


/** The forward conv as the kernels see it (backward-data builds its own jobs per stride phase). */
export function forwardJob(g: ConvGeometry): Job {
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

