// conv2d (NCHW): geometry, forward, backward-data and the op. Kernels: shaders/conv2d_*.wgsl.
// The rest of conv2d: conv-common.ts (the padded-input and weight-packing copies, the kernels'
// Job, conv2dTuning), conv-wgrad.ts (weight and bias gradients), conv-gemm1x1.ts (1x1 convs on
// the matmul kernel), conv-winograd.ts (stride-1 3x3), conv-depthwise*.ts (groups == channels).
//
// Every path is a direct implicit GEMM on lavapipe's terms (bench/NOTES.md): the input goes
// through a zero-padded copy (conv2d_pad) so the kernels read aligned vec4 windows without bounds
// checks, and the hot loops are unrolled here (fwdBody; wgradCode in conv-wgrad.ts;
// conv-depthwise.ts) because lavapipe scalarises every non-constant-address load per SIMD lane
// and only keeps constant-indexed values in registers.
//  - forward: conv2d_fwd (R x TM pixel tile x TN output channels per invocation; on 8-lane
//    subgroups, stride-2 and small stride-1 3x3 convs let a subgroup share P tiles' input
//    windows by broadcast/shuffle, each lane with its own channels: pickTile; stride-2 3x3 convs
//    there run as 4 stride-1 phase convs added into y: forwardPhases); depthwise
//    (groups == Cin == Cout) by row strips in conv-depthwise.ts (reads x directly: it is
//    memory-bound); bias-free 1x1 convs on the matmul kernel, others as one long row per image
//    (strided ones on a subsampled copy).
//  - backward-data: the transposed convolution split into stride phases: output phase (a, b) of
//    dx is an ordinary stride-1 conv of gy with a flipped, transposed subset of the taps, run by
//    the same forward kernels writing a strided output (stride 1 is the one-phase case); strided
//    1x1 convs compute the sampled pixels flat and spread them out between zeros.
//  - backward-weight (conv-wgrad.ts): conv2d_wgrad, a GEMM over the output pixels split into
//    chunks (partial sums per chunk, then summed), depthwise its own strip kernel; the bias
//    gradient sums gy.
import { defineOp, expectDtype, expectRank } from '../op.ts';
import { Tensor, ShapeError, fmt, full } from '../tensor.ts';
import { dispatch, MAX_GROUPS } from '../program.ts';
import { getGpu } from '../device.ts';
import { winogradConv, winogradForwardJob, winogradBackwardDataJob, winogradForwardKeepingV, isKeptV, winogradWeightGradFromKept } from './conv-winograd.ts';
import { isSwiftShader } from './matmul.ts';
import { depthwiseRows } from './conv-depthwise.ts';
import { depthwiseBackwardData } from './conv-depthwise-data.ts';
import { ceilDiv, conv2dTuning, forwardJob, identity, memoCode, packWeights, padInput, paddedExtent, sharedLanes, type ConvGeometry, type ConvParams, type Job, type TapSel, type Tile } from './conv-common.ts';
import { gemm1x1, gemm1x1Forward, gemm1x1BackwardData } from './conv-gemm1x1.ts';
import { biasGrad, conv2dBackwardWeight, wgradPadExtent } from './conv-wgrad.ts';

export { conv2dTuning, type ConvGeometry } from './conv-common.ts';
export { conv2dBackwardWeight } from './conv-wgrad.ts';

type Pair = number | readonly [number, number];
export interface Conv2dOptions {
  stride?: Pair;
  /** one value, [vertical, horizontal], or [top, bottom, left, right] */
  padding?: number | readonly [number, number] | readonly [number, number, number, number];
  dilation?: Pair;
  groups?: number;
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

// ---- forward kernel (also each backward-data phase) -----------------------------------------

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
  const s2 = j.sh === 2 || j.place.ysh === 2 || !!j.sub; // stride 2, or a stride phase of one (either direction)
  if (round4 && s2 && j.CoutG >= 8 * S && j.Ho >= 7 && j.Wo >= 7)
    // stride 2 and its backward-data phases (round 4): the subgroup's lanes share one 7-row
    // tile, each with its own 4 channels, so the input window is loaded once per subgroup and
    // each weight vec4 feeds 28-56 pixels (forward 1.25-1.45x, backward-data 1.5x at 28/14 px)
    return j.Wo % 8 === 0 || j.Wo % 8 > 4 ? { TM: 8, R: 7, TN: 4, xLanes: true } : { TM: 4, R: 7, TN: 8, xLanes: true };
  if (round4 && s2 && j.CoutG >= 4 * S)
    // smaller outputs (ResNet's 7 -> 4 px layer): 2 tiles of 4x4 x S/2 blocks of 8 channels per
    // subgroup, window and weights both shared (forward 1.22x, backward-data 1.10x, round 4)
    return { TM: 4, R: 4, TN: 8, xLanes: true, P: 2 };
  if (round4 && !s2 && j.KH === 3 && j.KW === 3 && j.CoutG >= 4 * S && j.Ho >= 7 && j.Wo >= 7)
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
function fwdStore(t: Tile, accumulate: boolean): string {
  const { TM, R, TN } = t;
  const op = accumulate ? '+=' : '=';
  const L: string[] = [`var out = acc;`, `for (var c = 0u; c < ${TN}u; c++) {`, `  if (co0 + c >= p.CoutG) { break; }`];
  for (let rr = 0; rr < R; rr++) {
    L.push(`  if (oh0 + ${rr}u < p.Ho) {`);
    for (let m = 0; m < TM; m++)
      L.push(`    if (ow0 + ${m}u < p.Wo) { y[yb[c] + ${rr}u * rowStep + ${m}u * p.ysw] ${op} out[${(rr * TM + m) * (TN / 4)}u + c / 4u][c % 4u] + bv[c]; }`);
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

/** y[place] = conv(x, packed weights) + bias with the tiled GEMM kernel. */
function runTiled(x: Tensor, wp: Tensor, bias: Tensor | null, j: Job, t0: Tile, y: Tensor, keep?: { Hp: number; Wp4: number }): Tensor | null {
  let t = t0;
  const { TM, R, TN } = t;
  const CoutGp = Math.ceil(j.CoutG / TN) * TN;
  const ext = paddedExtent(j, R, TM);
  const { tilesH, tilesW } = ext;
  // a copy kept for the weight gradient covers what both kernels read (the rows and row length are strides)
  const Hp = Math.max(ext.Hp, keep?.Hp ?? 0);
  const Wp4 = Math.max(ext.Wp4, keep?.Wp4 ?? 0);
  const xp = j.sub ? padInput(x, j.sub.top, j.sub.left, Hp, Wp4 * 4, 2, 2) : padInput(x, j.pt, j.pl, Hp, Wp4 * 4, 1, 1, j.up);
  const accumulate = j.sub?.accumulate ?? false;
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
  const defines = memoCode(`fwd ${TM} ${R} ${TN} ${t.rowLoop ?? false} ${xLanes} ${P} ${j.KH} ${j.KW} ${j.sh} ${j.sw} ${j.dh} ${j.dw} ${S} ${accumulate}`, () => ({
    TM,
    R,
    TN4: TN / 4,
    KH: j.KH,
    KW: j.KW,
    SH: j.sh,
    SW: j.sw,
    BODY: fwdBody(t, j, S),
    STORE: fwdStore(t, accumulate),
    ...subgroupDefines(S, j.KH * j.KW * (TN / 4), TN / 4, xLanes ? NR * NV : 0, NV, P),
    TILE_LANES: xLanes ? Q : 1,
  }));
  const gy = j.groups * coSuper;
  if (ceilDiv(nTiles, tilesPerWg) > MAX_GROUPS || gy > MAX_GROUPS) throw new ShapeError(`conv2d: ${nTiles} pixel tiles x ${gy} channel blocks exceed one dispatch`);
  dispatch({ name: 'conv2d_fwd', shader: 'conv2d_fwd', defines }, u, [xp.binding, wp.binding, (bias ?? wp).binding, y.binding], [ceilDiv(nTiles, tilesPerWg), gy]);
  if (keep) return xp;
  xp.dispose();
  return null;
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
  const flat = j.KH === 1 && j.KW === 1 && identityPlace && j.pt === 0 && j.pl === 0 && !j.up && !j.sub && (!strided || j.Wo % 4 === 0);
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

/**
 * Whether a stride-2 forward runs as stride phases (forwardPhases): 3x3 stride-2 convs (not
 * depthwise) where the stride-2 shared tiles apply (lavapipe's 8-lane subgroups, >= 32 output
 * channels per group) and the input-channel loop is long (>= 128 per group: with fewer, the four
 * copies and dispatches cost more than the phases save, 0.73-0.91x at 16-64 input channels, and
 * 64 -> 128 at 28 px broke even); `conv2dTuning.s2Phases` forces it either way.
 */
function usePhases(g: ConvGeometry): boolean {
  const shape = g.sh === 2 && g.sw === 2 && g.dh === 1 && g.dw === 1 && g.KH <= 3 && g.KW <= 3 && g.KH * g.KW > 1 && !(g.CinG === 1 && g.CoutG === 1);
  if (!shape || conv2dTuning.s2Phases === false) return false;
  if (conv2dTuning.s2Phases) return true;
  const S = sharedLanes();
  return conv2dTuning.stridedTiles !== false && S === 8 && S === getGpu().subgroupSize && g.KH === 3 && g.KW === 3 && g.CoutG >= 4 * S && g.CinG >= 128;
}

/**
 * A stride-2 forward as the sum of its 4 stride phases: input rows 2i + a (a = 0, 1) meet only the
 * kernel rows a, a + 2, ..., so phase (a, b) is a stride-1 conv of x subsampled from (a, b) (one
 * conv2d_pad copy) with those taps, added into y (the first phase writes y and the bias). The
 * same loads and FMAs as one stride-2 pass, but each phase's unrolled body holds a quarter of the
 * window and taps: 1.1-1.35x less lavapipe CPU at ResNet-18's 14 and 7 px stride-2 3x3 convs, as
 * the backward-data phases already showed (bench/NOTES.md, "Speed round 5: stride-2 forward").
 */
function forwardPhases(x: Tensor, w: Tensor, bias: Tensor | null, g: ConvGeometry, y: Tensor): void {
  const base = forwardJob(g);
  let first = true;
  for (let a = 0; a < 2 && a < g.KH; a++)
    for (let b = 0; b < 2 && b < g.KW; b++) {
      const TH = ceilDiv(g.KH - a, 2);
      const TW = ceilDiv(g.KW - b, 2);
      const j: Job = { ...base, KH: TH, KW: TW, sh: 1, sw: 1, pt: 0, pl: 0, H: g.Ho + TH - 1, W: g.Wo + TW - 1, sub: { top: g.pt - a, left: g.pl - b, accumulate: !first } };
      runJob(x, w, first ? bias : null, j, { TH, TW, kh0: a, khStep: 2, kw0: b, kwStep: 2 }, false, y);
      first = false;
    }
}

/** Forward without autograd. */
export function conv2dForwardRaw(x: Tensor, w: Tensor, bias: Tensor | null, g: ConvGeometry): Tensor {
  const wj = winogradForwardJob(g, conv2dTuning.winograd); // stride-1 3x3: conv-winograd.ts
  if (wj) return winogradConv(x, w, bias, wj, false, padInput);
  if (!bias && gemm1x1(g)) return gemm1x1Forward(x, w, g);
  const y = new Tensor([g.N, g.Cout, g.Ho, g.Wo], 'f32');
  if (usePhases(g)) forwardPhases(x, w, bias, g, y);
  else runJob(x, w, bias, forwardJob(g), allTaps(g.KH, g.KW), false, y);
  return y;
}

/**
 * The forward, keeping its zero-padded copy of x for the weight gradient when both run on the
 * tiled kernels (conv2d_fwd, conv2d_wgrad), the copy made large enough for both tilings
 * (wgradPadExtent; a few zero rows or columns more at most): one conv2d_pad pass per conv instead of two. That is every conv of the small
 * models (4-32 channels: no Winograd), where the copies were ~18% of the kernel time (bench/NOTES.md,
 * "Speed round 5: small models"). Null where it does not apply: the caller runs conv2dForwardRaw.
 */
export function conv2dForwardKeepingPad(x: Tensor, w: Tensor, bias: Tensor | null, g: ConvGeometry): { y: Tensor; xp: Tensor } | null {
  if (conv2dTuning.keepPad === false) return null;
  if (winogradForwardJob(g, conv2dTuning.winograd) || (!bias && gemm1x1(g)) || usePhases(g) || (g.CinG === 1 && g.CoutG === 1)) return null;
  const j = forwardJob(g);
  const strided = j.sh !== 1 || j.sw !== 1 || j.Ho !== j.H || j.Wo !== j.W;
  if (j.KH === 1 && j.KW === 1 && j.pt === 0 && j.pl === 0 && (!strided || j.Wo % 4 === 0)) return null; // flat 1x1 rows
  const need = wgradPadExtent(g);
  if (!need) return null;
  const t = pickTile(j, false);
  const ext = paddedExtent(j, t.R, t.TM);
  const Hp = Math.max(ext.Hp, need.Hp);
  const Wp4 = Math.max(ext.Wp4, need.Wp4);
  const y = new Tensor([g.N, g.Cout, g.Ho, g.Wo], 'f32');
  const wp = packWeights(w, g.CinG, g.CoutG, g.groups, t.TN, false, allTaps(g.KH, g.KW));
  const flatXp = runTiled(x, wp, bias, j, t, y, { Hp, Wp4 })!;
  wp.dispose();
  const xp = flatXp.view([g.N, g.Cin, Hp, Wp4, 4]);
  flatXp.dispose();
  return { y, xp };
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
    // or the forward's padded copy of x, when the weight gradient can read that (conv2dForwardKeepingPad)
    const wantDw = ctx.needsGrad && ctx.inputNeedsGrad[1];
    const kept = wantDw ? winogradForwardKeepingV(x, w, b ?? null, g, conv2dTuning.winograd, padInput) : null;
    const keptPad = wantDw && !kept ? conv2dForwardKeepingPad(x, w, b ?? null, g) : null;
    const y = kept ? kept.y : keptPad ? keptPad.y : conv2dForwardRaw(x, w, b ?? null, g);
    if (ctx.needsGrad) ctx.save(...(ctx.inputNeedsGrad[1] ? [kept ? kept.v : keptPad ? keptPad.xp : x] : []), ...(ctx.inputNeedsGrad[0] ? [w] : []));
    kept?.v.dispose();
    keptPad?.xp.dispose();
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
