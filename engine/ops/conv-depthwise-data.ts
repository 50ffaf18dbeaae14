// Backward-data of a strided depthwise conv2d in one kernel (shaders/conv2d_depthwise_data.wgsl),
// gather form: dx[ih][iw] = sum of gy[oh][ow] * w[kh][kw] over the taps with oh*sh - pt + kh*dh
// = ih and ow*sw - pl + kw*dw = iw. Within a step of sh dx rows (and a strip whose first column
// is a multiple of sw) which taps reach an output, and from which gy row and column offset, is
// fixed at compile time, so the body is unrolled with constant register names, as in
// conv-depthwise.ts. It replaced conv.ts's stride-phase split for depthwise convs (sh*sw
// dispatches that each re-read all of gy, packed their taps and stored every other dx column lane
// by lane; bench/NOTES.md, speed round 5). Small dx planes take the whole-plane kernel instead
// (runPlanesData in conv-depthwise-planes.ts).
import { Tensor } from '../tensor.ts';
import { dispatch, groupsFor } from '../program.ts';
import type { DwJob, DwTuning } from './conv-depthwise.ts';
import { dataPlaneGroup, runPlanesData } from './conv-depthwise-planes.ts';

const ceilDiv = (a: number, b: number) => Math.ceil(a / b);
const mod = (a: number, m: number) => ((a % m) + m) % m;

const codeMemo = new Map<string, Record<string, string | number>>();
function memo(key: string, make: () => Record<string, string | number>): Record<string, string | number> {
  let d = codeMemo.get(key);
  if (!d) codeMemo.set(key, (d = make()));
  return d;
}

/** Taps of one axis: for output offset i (within a step or strip) the (k, e) pairs, gy index = base + e. */
export function axisTaps(n: number, s: number, pad: number, K: number, d: number): { k: number; e: number }[][] {
  return Array.from({ length: n }, (_, i) => {
    const out: { k: number; e: number }[] = [];
    for (let k = 0; k < K; k++) if (mod(i + pad - k * d, s) === 0) out.push({ k, e: (i + pad - k * d) / s });
    return out;
  });
}

/** dx [N, C, H, W] of a depthwise conv (j: the forward's job) from gy [N, C, Ho, Wo] and w [C, 1, KH, KW]. */
export function depthwiseBackwardData(gy: Tensor, w: Tensor, j: DwJob, tune?: DwTuning): Tensor {
  const dx = new Tensor([j.N, j.planes, j.H, j.W], 'f32');
  const wk = w.view([w.size]);
  const Q = tune?.noGroups ? 0 : dataPlaneGroup(j, tune);
  if (Q) runPlanesData(gy, wk, j, dx, Q, tune);
  else dataRows(gy, wk, j, dx, tune);
  wk.dispose();
  return dx;
}

/** The strip kernel: TMX dx columns per lane, steps of sh rows, the gy window in registers. */
function dataRows(gy: Tensor, wk: Tensor, j: DwJob, dx: Tensor, tune?: DwTuning): void {
  const wg = tune?.WG ?? 64;
  // Full-width strips where rows are not whole vec4s but a step's sh rows are (14 px: 2 rows = 7
  // vec4 stores); otherwise 8 columns where gy rows are whole vec4s (4 gy columns at stride 2: one
  // aligned vec4 and a scalar), else 4 (3 scalars). CPU ms, TMX 4 / 8 / 16: 144 ch b16 56 px 3.08 /
  // 2.80 / 2.84, 96 ch b64 28 px (14 px gy) 2.42 / 2.52 / 2.43; 14 px dx: full width 1.10, TMX 4 /
  // 8 1.74 / 1.89 (round 5).
  const full = j.W % 4 !== 0 && j.W <= 32 && !tune?.TM;
  const cap = tune?.TM ?? (j.Wo % 4 === 0 ? 8 : 4);
  const TMX = full ? j.W : Math.max(j.sw, Math.round(cap / j.sw) * j.sw);
  const tilesW = ceilDiv(j.W, TMX);
  const known = tilesW === 1; // the strip starts at column 0: column checks at compile time
  const steps = ceilDiv(j.H, j.sh);
  const lanes = j.N * j.planes * tilesW;
  const want = tune?.RC ? ceilDiv(steps, tune.RC) : Math.min(ceilDiv(4096, lanes), Math.max(1, Math.floor(steps / 8)));
  const RC = ceilDiv(steps, Math.max(1, want));
  const chunks = ceilDiv(steps, RC);
  const nLanes = lanes * chunks;
  // gy columns as aligned vec4s: rows of whole vec4s and strips starting on a vec4 (u0 = iw0 / sw)
  const vecG = j.Wo % 4 === 0 && (known || (TMX / j.sw) % 4 === 0);
  const store = known && (j.sh * j.W) % 4 === 0 && (j.H * j.W) % 4 === 0 ? 'group' : j.W % 4 === 0 && TMX % 4 === 0 ? 'vec' : 'scalar';
  const key = `dwdata ${wg} ${TMX} ${known} ${vecG} ${store} ${j.H % j.sh} ${j.W} ${j.Wo} ${j.KH} ${j.KW} ${j.sh} ${j.sw} ${j.dh} ${j.dw} ${j.pt} ${j.pl}`;
  const defines = memo(key, () => ({ WG: wg, TMX, SW: j.sw, SH: j.sh, KK: j.KH * j.KW, DT: store === 'scalar' ? 'f32' : 'vec4f', ...dataCode(j, TMX, known, vecG, store) }));
  const u = { H: j.H, W: j.W, C: j.planes, Ho: j.Ho, Wo: j.Wo, tilesW, chunks, RC, nLanes, steps };
  dispatch({ name: 'conv2d_depthwise_data', shader: 'conv2d_depthwise_data', defines }, u, [gy.binding, gy.binding, wk.binding, dx.binding], groupsFor(nLanes, wg));
}

const en = (e: number) => (e < 0 ? `m${-e}` : `${e}`);

function dataCode(j: DwJob, TMX: number, known: boolean, vecG: boolean, store: string): { SETUP: string; STEP: string } {
  const rows = axisTaps(j.sh, j.sh, j.pt, j.KH, j.dh);
  // known columns: taps outside gy's row read zero padding, dropped here
  const cols = axisTaps(TMX, j.sw, j.pl, j.KW, j.dw).map((ts) => (known ? ts.filter((t) => t.e >= 0 && t.e < j.Wo) : ts));
  const re = rows.flat().map((t) => t.e);
  const emin = re.length ? Math.min(...re) : 0;
  const NR = re.length ? Math.max(...re) - emin + 1 : 0;
  const used = [...new Set(cols.flat().map((t) => t.e))].sort((a, b) => a - b);
  // a vec4 chunk of gy columns loads as one vec4 when 3 or 4 of its columns are used
  const chunkOf = (e: number) => Math.floor(e / 4);
  const count = new Map<number, number>();
  for (const e of used) count.set(chunkOf(e), (count.get(chunkOf(e)) ?? 0) + 1);
  const isVec = (k: number) => vecG && (count.get(k) ?? 0) >= 3;
  const vecChunks = [...count.keys()].filter(isVec);
  const scalars = used.filter((e) => !isVec(chunkOf(e)));
  const at = (r: number, e: number) => (isVec(chunkOf(e)) ? `G${r}_${en(chunkOf(e))}[${e - 4 * chunkOf(e)}]` : `g${r}_${en(e)}`);

  const setup: string[] = Array.from({ length: j.KH * j.KW }, (_, k) => `let w${k} = w[wo + ${k}u];`);
  if (!known) {
    for (const k of vecChunks) setup.push(`let vk${en(k)} = u0 / 4 + ${k}; let vok${en(k)} = vk${en(k)} >= 0 && vk${en(k)} < i32(p.Wo / 4u); let vi${en(k)} = u32(select(0, vk${en(k)}, vok${en(k)}));`);
    for (const e of scalars) setup.push(`let ce${en(e)} = u0 + ${e}; let cok${en(e)} = ce${en(e)} >= 0 && ce${en(e)} < i32(p.Wo); let ci${en(e)} = u32(select(0, ce${en(e)}, cok${en(e)}));`);
  }
  for (let r = 0; r < NR; r++) setup.push([...vecChunks.map((k) => `var G${r}_${en(k)} = vec4f(0.0);`), ...scalars.map((e) => `var g${r}_${en(e)} = 0.0;`)].join(' '));
  const loadRow = (r: number): string => {
    const L = [`{ let gr = i32(t) + ${emin + r}; let ok = gr >= 0 && gr < i32(p.Ho); let rb = gb + u32(select(0, gr, ok)) * p.Wo;`];
    for (const k of vecChunks) L.push(known ? `G${r}_${en(k)} = select(vec4f(0.0), g4[rb / 4u + ${k}u], ok);` : `G${r}_${en(k)} = select(vec4f(0.0), g4[rb / 4u + vi${en(k)}], ok && vok${en(k)});`);
    for (const e of scalars) L.push(known ? `g${r}_${en(e)} = select(0.0, g1[rb + ${e}u], ok);` : `g${r}_${en(e)} = select(0.0, g1[rb + ci${en(e)}], ok && cok${en(e)});`);
    L.push('}');
    return L.join(' ');
  };
  if (NR > 1) setup.push(`{ let t = t0; ${Array.from({ length: NR - 1 }, (_, r) => loadRow(r)).join(' ')} }`);

  const step: string[] = NR > 0 ? [loadRow(NR - 1)] : [];
  const o = (a: number, m: number) => `o${a}_${m}`;
  for (let a = 0; a < j.sh; a++)
    for (let m = 0; m < TMX; m++) {
      let e = '0.0';
      for (const rt of rows[a]) for (const ct of cols[m]) e = `fma(${at(rt.e - emin, ct.e)}, w${rt.k * j.KW + ct.k}, ${e})`;
      step.push(`let ${o(a, m)} = ${e};`);
    }
  const v4 = (vals: string[]) => `vec4f(${vals.join(', ')})`;
  if (store === 'group') {
    // the step's sh rows are whole aligned vec4s (and so is the plane): a vec4 exists iff its first row does
    const flat = Array.from({ length: j.sh * j.W }, (_, f) => o(Math.floor(f / j.W), f % j.W));
    for (let v = 0; v < flat.length / 4; v++) step.push(`if (live${j.H % j.sh ? ` && t * ${j.sh}u + ${Math.floor((4 * v) / j.W)}u < p.H` : ''}) { dx[db / 4u + ${v}u] = ${v4(flat.slice(4 * v, 4 * v + 4))}; }`);
  } else
    for (let a = 0; a < j.sh; a++) {
      // checks known to pass are left out (H and W in the memo key)
      const ok = (m: number) => ['live', ...(j.H % j.sh ? [`t * ${j.sh}u + ${a}u < p.H`] : []), ...(j.W % TMX ? [`iw0 + ${m}u < p.W`] : [])].join(' && ');
      if (store === 'vec') for (let m = 0; m < TMX; m += 4) step.push(`if (${ok(m)}) { dx[(db + ${a}u * p.W) / 4u + ${m / 4}u] = ${v4([0, 1, 2, 3].map((q) => o(a, m + q)))}; }`);
      else for (let m = 0; m < TMX; m++) step.push(`if (${ok(m)}) { dx[db + ${a}u * p.W + ${m}u] = ${o(a, m)}; }`);
    }
  for (let r = 0; r + 1 < NR; r++) step.push([...vecChunks.map((k) => `G${r}_${en(k)} = G${r + 1}_${en(k)};`), ...scalars.map((e) => `g${r}_${en(e)} = g${r + 1}_${en(e)};`)].join(' '));
  return { SETUP: setup.join('\n  '), STEP: step.join('\n    ') };
}
