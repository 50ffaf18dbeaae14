// conv2d's weight and bias gradients. Kernel: shaders/conv2d_wgrad.wgsl.
//  - stride-1 3x3 convs by Winograd (conv-winograd.ts), depthwise by its strip kernel
//    (conv-depthwise.ts), wide 1x1 convs with many pixels per image on the matmul kernel
//    (conv-gemm1x1.ts: gemm1x1Wgrad);
//  - the rest on conv2d_wgrad, a GEMM over the output pixels split into chunks (partial sums per
//    chunk, then summed), 1x1 convs over each image's pixels as one long row (strided ones on a
//    subsampled copy); the hot loops are unrolled here (wgradCode), as conv.ts explains;
//  - the bias gradient sums gy.
import { Tensor } from '../tensor.ts';
import { dispatch } from '../program.ts';
import { getGpu } from '../device.ts';
import { sum } from './reduce.ts';
import { winogradWeightGrad, winogradWeightGradJob } from './conv-winograd.ts';
import { depthwiseWeightGrad } from './conv-depthwise.ts';
import { gemm1x1Wgrad, gemm1x1WeightGrad } from './conv-gemm1x1.ts';
import { ceilDiv, conv2dTuning, forwardJob, lanesGrid, memoCode, padInput, paddedExtent, sharedLanes, type ConvGeometry } from './conv-common.ts';

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

const isFlat = (g: ConvGeometry): boolean => {
  const strided = g.sh !== 1 || g.sw !== 1 || g.Ho !== g.H || g.Wo !== g.W;
  return g.KH === 1 && g.KW === 1 && g.pt === 0 && g.pl === 0 && (!strided || g.Wo % 4 === 0);
};

/**
 * The padded-x extent conv2d_wgrad reads when the weight gradient runs on it directly (not
 * Winograd, depthwise, the matmul kernel or the flat 1x1 rows), else null. The forward keeps its
 * own padded copy of x for the weight gradient when that copy is at least this large (conv.ts,
 * conv2dForwardKeepingPad): the kernel takes the rows and row length as strides, so extra zero
 * rows and columns are never read.
 */
export function wgradPadExtent(g: ConvGeometry): { Hp: number; Wp4: number } | null {
  if (winogradWeightGradJob(g, conv2dTuning.winograd) || (g.CinG === 1 && g.CoutG === 1) || gemm1x1Wgrad(g) || isFlat(g)) return null;
  const t = pickWTile(g, false);
  const { Hp, Wp4 } = paddedExtent(forwardJob(g), t.R, t.TM);
  return { Hp, Wp4 };
}

/** The forward's padded copy of x [N, Cin, Hp, Wp4, 4] (rank 5 tells it from x itself), kept for the weight gradient. */
export const isPaddedX = (t: Tensor): boolean => t.shape.length === 5;

/**
 * dw = sum over pixels of gy (x) shifted x windows, split into chunks of pixel tiles. x may be the
 * forward's padded copy (isPaddedX; only where wgradPadExtent fits it).
 */
export function conv2dBackwardWeight(x: Tensor, gy: Tensor, g: ConvGeometry): Tensor {
  const kept = isPaddedX(x) ? x : null;
  if (kept) {
    const need = wgradPadExtent(g);
    if (!need || kept.shape[2] < need.Hp || kept.shape[3] < need.Wp4) throw new Error(`conv2d: internal: kept padded x ${kept.describe()} does not fit the weight gradient's ${need ? `${need.Hp}x${need.Wp4 * 4}` : 'path'}`);
  }
  const wj = winogradWeightGradJob(g, conv2dTuning.winograd); // stride-1 3x3: conv-winograd.ts
  if (wj) return winogradWeightGrad(x, gy, wj, padInput);
  if (g.CinG === 1 && g.CoutG === 1) return depthwiseWeightGrad(x, gy, forwardJob(g), conv2dTuning.depthwise);
  if (gemm1x1Wgrad(g)) return gemm1x1WeightGrad(x, gy, g);
  let xIn = x;
  let gg = g;
  let gyIn = gy;
  let views: Tensor[] = [];
  const strided = g.sh !== 1 || g.sw !== 1 || g.Ho !== g.H || g.Wo !== g.W;
  const flat = isFlat(g);
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
  const ext = paddedExtent(j, R, TM);
  const { tilesH, tilesW } = ext;
  // the forward's copy may have more rows or a longer row than this tiling needs: its strides
  const [Hp, Wp4] = kept ? [kept.shape[2], kept.shape[3]] : [ext.Hp, ext.Wp4];
  const xp = kept ? kept.view([kept.size]) : padInput(xIn, gg.pt, gg.pl, Hp, Wp4 * 4);
  const gHp = tilesH * R;
  const gWp = tilesW * TM;
  const gp = padInput(gyIn, 0, 0, gHp, gWp);
  const coT = ceilDiv(gg.CoutG, TCO);
  const ciT = ceilDiv(gg.CinG, TCI);
  const khLanes = t.rowLanes ? gg.KH : 1;
  const lanesPerChunk = gg.groups * coT * ciT * khLanes;
  const nTiles = gg.N * tilesH * tilesW;
  // enough chunks for ~4k lanes, but at least 32 tiles each: narrow convs (4-32 channels, a few
  // lanes per chunk) had ~1000 chunks of 2-6 tiles, and writing and summing their partials cost
  // more than the GEMM (small models' weight gradients + chunk sums 1.7x faster with 32 than 2,
  // bench/NOTES.md "Speed round 5: small models"); wide convs reach 4k lanes first, as before
  const nChunks = Math.max(1, Math.min(ceilDiv(conv2dTuning.wgradLanes ?? 4096, lanesPerChunk), ceilDiv(nTiles, conv2dTuning.wgradMinTiles ?? 32)));
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
export function biasGrad(gy: Tensor): Tensor {
  const [N, C, H, W] = gy.shape;
  const v = gy.view([N, C, H * W]);
  const s = sum(v, [2]);
  const db = sum(s, [0]);
  v.dispose();
  s.dispose();
  return db;
}
