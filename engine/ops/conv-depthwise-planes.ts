// Depthwise conv2d on small planes (up to 64 pixels: MobileNet-V2's 7, 4 and 2 px at a 28 px
// input), the whole plane in registers: forward / backward-data (shaders/conv2d_depthwise_planes.wgsl)
// and backward-weight (shaders/conv2d_depthwise_wgrad_planes.wgsl). conv-depthwise.ts sends the
// shapes here (planeGroup) and runs the rest as row strips. Why whole planes, and why few of them
// per lane: bench/NOTES.md, speed round 4.
import { Tensor } from '../tensor.ts';
import { dispatch, groupsFor } from '../program.ts';
import { sum } from './reduce.ts';
import type { DwJob, DwTuning } from './conv-depthwise.ts';

const wgOf = (t: DwTuning | undefined): number => t?.WG ?? 64;

/** Generated code by shape (memoised: see conv-depthwise.ts). */
const codeMemo = new Map<string, Record<string, string | number>>();
function memo(key: string, make: () => Record<string, string | number>): Record<string, string | number> {
  let d = codeMemo.get(key);
  if (!d) codeMemo.set(key, (d = make()));
  return d;
}

/**
 * Small planes (up to 64 pixels: MobileNet-V2's 7, 4 and 2 px at a 28 px input; and single planes
 * up to 196 pixels, its 14 px): Q neighbouring planes per invocation, all in registers
 * (conv2d_depthwise_planes.wgsl): Q*H*W/4 vec4 loads, Q*Ho*Wo/4 vec4 stores, every index and the padding compile-time constants (any stride). Q is
 * the fewest planes that are whole vec4s in and out: every value a lane holds is one AVX2
 * register on lavapipe, and once they outgrow the register file its lane-by-lane loads are
 * built up through the stack (4 px: Q = 1 / 2 / 4 measured 0.39 / 0.47 / 0.64 ms, bench/NOTES.md
 * round 4). Only 2 px planes take Q = 4, where the 4 planes' weights load as 9 vec4s instead of
 * 9 scalars per plane (0.44 vs 0.55 ms). Returns Q, or 0 where the row kernels apply. Before
 * round 4 planes whose rows are whole vec4s (4 px) went to the row strips, and weights were
 * always scalar: `conv2dTuning.depthwise = { oldPlanes: true }` for comparisons.
 */
export function planeGroup(j: DwJob, identity: boolean, tune?: DwTuning): number {
  const HW = j.H * j.W;
  // a strided placement (a stride-2 backward-data phase writing every other pixel of dx) stores
  // lane by lane, so only the input needs whole vec4s
  const strided = !identity && !tune?.oldPlanes && j.place.yH * j.place.yW <= 256;
  if ((!identity && !strided) || HW > (tune?.planeMax ?? 196) || (tune?.oldPlanes && j.W % 4 === 0)) return 0;
  // up to 196 pixels (14 px) only one plane at a time, in place of the row groups (rows that are
  // not whole vec4s): 1.14-1.20x over them, forward and backward-data (bench/NOTES.md, round 5)
  if (HW > 64 && !(identity && j.W % 4 !== 0 && HW % 4 === 0 && (j.Ho * j.Wo) % 4 === 0)) return 0;
  const fits = (q: number) => j.planes % q === 0 && (q * HW) % 4 === 0 && (strided || (q * j.Ho * j.Wo) % 4 === 0);
  if (tune?.Q) return fits(tune.Q) ? tune.Q : 0;
  if (!tune?.oldPlanes && HW <= 4 && fits(4)) return 4;
  for (const q of [1, 2, 4]) if ((q * HW) % 4 === 0 && (strided || (q * j.Ho * j.Wo) % 4 === 0)) return fits(q) ? q : 0;
  return 0;
}

/**
 * Backward-data of a strided depthwise conv on small dx planes (up to 64 pixels): Q whole dx
 * planes per lane from Q gy planes in registers, the same kernel as the forward with a gather
 * body (runPlanes with `data`). Q: the fewest planes that are whole vec4s of both gy and dx (4
 * where dx planes are <= 4 px, for the vec4 weights). Returns Q, or 0 for the strip kernel.
 */
export function dataPlaneGroup(j: DwJob, tune?: DwTuning): number {
  const HW = j.H * j.W;
  if (HW > 64) return 0;
  const fits = (q: number) => j.planes % q === 0 && (q * HW) % 4 === 0 && (q * j.Ho * j.Wo) % 4 === 0;
  if (tune?.Q) return fits(tune.Q) ? tune.Q : 0;
  if (HW <= 4 && fits(4)) return 4;
  for (const q of [1, 2, 4]) if ((q * HW) % 4 === 0 && (q * j.Ho * j.Wo) % 4 === 0) return fits(q) ? q : 0;
  return 0;
}

/** The planes kernel's dx = backward-data of job j: gy planes in, dx planes out (see dataPlaneGroup). */
export function runPlanesData(gy: Tensor, wk: Tensor, j: DwJob, dx: Tensor, Q: number, tune?: DwTuning): void {
  runPlanes(gy, wk, null, j, dx, Q, tune, true);
}

/**
 * y = Q planes per lane (planeGroup); `data`: x is gy and y is dx of job j's backward-data, each
 * dx pixel gathering the gy pixels (oh, ow) with oh*sh - pt + kh*dh = ih (and so for columns).
 */
export function runPlanes(x: Tensor, wk: Tensor, bias: Tensor | null, j: DwJob, y: Tensor, Q: number, tune?: DwTuning, data = false): void {
  const [inH, inW, outH, outW] = data ? [j.Ho, j.Wo, j.H, j.W] : [j.H, j.W, j.Ho, j.Wo];
  const HW = inH * inW;
  const HWo = outH * outW;
  const KK = j.KH * j.KW;
  const nLanes = (j.N * j.planes) / Q;
  const vecW = Q === 4 && !tune?.oldPlanes; // 4 planes' weights are KK whole vec4s
  const pl = j.place;
  const identity = data || (pl.yr0 === 0 && pl.yc0 === 0 && pl.ysh === 1 && pl.ysw === 1 && pl.yW === j.Wo && pl.yH === j.Ho);
  const yPlane = pl.yH * pl.yW;
  const key = `dwplanes ${wgOf(tune)} ${Q} ${vecW} ${data} ${j.H} ${j.W} ${j.Ho} ${j.Wo} ${j.KH} ${j.KW} ${j.sh} ${j.sw} ${j.dh} ${j.dw} ${j.pt} ${j.pl} ${identity ? '' : JSON.stringify(pl)}`;
  // input pixel of output (o, kernel index k) along one axis, or -1 (padding, or no tap at stride s)
  const src = (o: number, k: number, s: number, pad: number, d: number, n: number): number => {
    const i = data ? (o + pad - k * d) / s : o * s - pad + k * d;
    return Number.isInteger(i) && i >= 0 && i < n ? i : -1;
  };
  const defines = memo(key, () => {
    const B: string[] = [];
    for (let v = 0; v < (Q * HW) / 4; v++) B.push(`let X${v} = x[xb + ${v}u];`);
    let wt = (q: number, k: number) => `w${q}_${k}`;
    let bq = (q: number) => `b${q}`;
    if (vecW) {
      // weights of channels c0 .. c0+3 are w[c0*KK .. c0*KK + 4*KK): KK vec4s from vec4 c0/4*KK
      for (let k = 0; k < KK; k++) B.push(`let W${k} = w[c0 / 4u * ${KK}u + ${k}u];`);
      B.push(`let B = select(vec4f(0.0), bias[min(c0 / 4u, arrayLength(&bias) - 1u)], p.hasBias != 0u);`);
      wt = (q, k) => `W${(q * KK + k) >> 2}[${(q * KK + k) & 3}]`;
      bq = (q) => `B[${q}]`;
    } else
      for (let q = 0; q < Q; q++) {
        B.push(`let b${q} = select(0.0, bias[min(c0 + ${q}u, arrayLength(&bias) - 1u)], p.hasBias != 0u);`);
        for (let k = 0; k < KK; k++) B.push(`let w${q}_${k} = w[(c0 + ${q}u) * ${KK}u + ${k}u];`);
      }
    const out = (q: number, oh: number, ow: number): string => {
      let e = bq(q);
      for (let kh = 0; kh < j.KH; kh++)
        for (let kw = 0; kw < j.KW; kw++) {
          const ih = src(oh, kh, j.sh, j.pt, j.dh, inH);
          const iw = src(ow, kw, j.sw, j.pl, j.dw, inW);
          if (ih < 0 || iw < 0) continue;
          const el = q * HW + ih * inW + iw;
          e = `fma(X${el >> 2}[${el & 3}], ${wt(q, kh * j.KW + kw)}, ${e})`;
        }
      return e;
    };
    const outs: string[] = [];
    for (let q = 0; q < Q; q++) for (let oh = 0; oh < outH; oh++) for (let ow = 0; ow < outW; ow++) outs.push(out(q, oh, ow));
    if (identity) for (let v = 0; v < outs.length / 4; v++) B.push(`y[yb + ${v}u] = vec4f(${outs.slice(4 * v, 4 * v + 4).join(', ')});`);
    else
      for (let q = 0; q < Q; q++)
        for (let oh = 0; oh < j.Ho; oh++)
          for (let ow = 0; ow < j.Wo; ow++) B.push(`y[yb + ${q * yPlane + (pl.yr0 + oh * pl.ysh) * pl.yW + pl.yc0 + ow * pl.ysw}u] = ${outs[(q * j.Ho + oh) * j.Wo + ow]};`);
    const T = vecW ? 'vec4f' : 'f32';
    return { WG: wgOf(tune), Q, WT: T, BT: T, YT: identity ? 'vec4f' : 'f32', XV: (Q * HW) / 4, YV: identity ? (Q * HWo) / 4 : Q * yPlane, BODY: B.join('\n  ') };
  });
  dispatch({ name: data ? 'conv2d_depthwise_data' : 'conv2d_depthwise', shader: 'conv2d_depthwise_planes', defines }, { C: j.planes, nLanes, hasBias: bias !== null }, [x.binding, wk.binding, (bias ?? wk).binding, y.binding], groupsFor(nLanes, wgOf(tune)));
}

/**
 * dw of a depthwise conv on small planes (planeGroup): Q whole planes of x and gy, of NB images,
 * per lane, KK sums per plane into part [N/NB, C*KK], then one sum over the image blocks.
 */
export function weightGradPlanes(x: Tensor, gy: Tensor, j: DwJob, Q: number, tune?: DwTuning): Tensor {
  const HW = j.H * j.W;
  const HWo = j.Ho * j.Wo;
  const KK = j.KH * j.KW;
  const C = j.planes;
  // NB images per lane: fewer partial sums to write and reduce, more values held per lane
  // (CPU ms, NB = 1 / 2 / 4: 2 px 0.76 / 0.58 / 0.49, 4 px 0.63 / 0.54 / 0.65, 7 px 1.11 / 1.14 / 2.43)
  let NB = tune?.NB ?? (HW <= 4 ? 4 : HW <= 16 ? 2 : 1);
  while (j.N % NB !== 0) NB /= 2;
  const nLanes = (j.N / NB) * (C / Q);
  const vecP = (Q * KK) % 4 === 0;
  const key = `dwgradplanes ${wgOf(tune)} ${Q} ${NB} ${j.H} ${j.W} ${j.Ho} ${j.Wo} ${j.KH} ${j.KW} ${j.sh} ${j.sw} ${j.dh} ${j.dw} ${j.pt} ${j.pl}`;
  const defines = memo(key, () => {
    const B: string[] = [];
    let sums: string[] = Array.from({ length: Q * KK }, () => '0.0');
    for (let i = 0; i < NB; i++) {
      // image nb*NB + i: its planes lie i*C planes after the first image's
      for (let v = 0; v < (Q * HW) / 4; v++) B.push(`let X${i}_${v} = x[xb + ${(i * C * HW) / 4 + v}u];`);
      for (let v = 0; v < (Q * HWo) / 4; v++) B.push(`let G${i}_${v} = gy[gb + ${(i * C * HWo) / 4 + v}u];`);
      for (let q = 0; q < Q; q++)
        for (let kh = 0; kh < j.KH; kh++)
          for (let kw = 0; kw < j.KW; kw++)
            for (let oh = 0; oh < j.Ho; oh++)
              for (let ow = 0; ow < j.Wo; ow++) {
                const ih = oh * j.sh - j.pt + kh * j.dh;
                const iw = ow * j.sw - j.pl + kw * j.dw;
                if (ih < 0 || ih >= j.H || iw < 0 || iw >= j.W) continue; // zero padding
                const xe = q * HW + ih * j.W + iw;
                const ge = q * HWo + oh * j.Wo + ow;
                const k = q * KK + kh * j.KW + kw;
                sums[k] = `fma(G${i}_${ge >> 2}[${ge & 3}], X${i}_${xe >> 2}[${xe & 3}], ${sums[k]})`;
              }
      // one named sum per image (WGSL parsers cap the nesting depth of one expression)
      if (i < NB - 1) {
        sums.forEach((e, k) => B.push(`let S${i}_${k} = ${e};`));
        sums = sums.map((_, k) => `S${i}_${k}`);
      }
    }
    if (vecP) for (let v = 0; v < sums.length / 4; v++) B.push(`part[pb + ${v}u] = vec4f(${sums.slice(4 * v, 4 * v + 4).join(', ')});`);
    else sums.forEach((e, k) => B.push(`part[pb + ${k}u] = ${e};`));
    return { WG: wgOf(tune), PT: vecP ? 'vec4f' : 'f32', CQ: C / Q, XV: (Q * HW) / 4, GV: (Q * HWo) / 4, NB, PV: vecP ? (Q * KK) / 4 : Q * KK, BODY: B.join('\n  ') };
  });
  const part = new Tensor([j.N / NB, C * KK], 'f32');
  dispatch({ name: 'conv2d_depthwise_wgrad', shader: 'conv2d_depthwise_wgrad_planes', defines }, { C, nLanes }, [x.binding, gy.binding, part.binding], groupsFor(nLanes, wgOf(tune)));
  const flat = j.N === NB ? part.view([C * KK]) : sum(part, [0]);
  part.dispose();
  const dw = flat.view([C, 1, j.KH, j.KW]);
  flat.dispose();
  return dw;
}
