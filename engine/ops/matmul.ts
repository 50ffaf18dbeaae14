// Matrix products: batched matmul with in-kernel transposes, and linear (x·wᵀ + b, bias fused).
//
// One kernel (shaders/matmul.wgsl) serves every layout: it is specialised at compile time by
// which operand is transposed, whether each operand can be read as vec4 (its contiguous
// dimension is a multiple of 4), and whether a bias is added. Backward passes reuse it with
// the transpose flags flipped, so dA = g·Bᵀ and dB = Aᵀ·g need no permute copies.
import { defineOp, expectDtype, type Meta } from '../op.ts';
import { Tensor, ShapeError, fmt, numel, type Shape } from '../tensor.ts';
import { dispatch, MAX_GROUPS } from '../program.ts';
import { getGpu } from '../device.ts';
import { broadcastShapes } from './binary.ts';
import { sum } from './reduce.ts';
import { sumTo } from './sum-to.ts';

/**
 * A kernel shape: TM x TN outputs per invocation, WX x WY invocations per workgroup; IL orders
 * each k step's loads right before its FMAs (instead of all four steps' loads first).
 */
export interface MatmulTile {
  TM: number;
  TN: number;
  WX: number;
  WY: number;
  IL?: boolean;
}

/**
 * Register tile (TM x TN outputs per invocation) and workgroup shape of the plain kernel (no
 * subgroups; MATMUL_TILE_SHARED below is the one lavapipe uses). Measured on lavapipe
 * (2-core EPYC, 1024³ NN, GFLOP/s per 2 CPU-seconds, which other processes' load does not
 * skew; best-of wall-clock in brackets): 4x4 tile 7.9-8.4 (9.0), 8x4 8.8-9.7 (9.4-10.2),
 * 4x8 9.0-9.1 (9.4-10.0), 8x8 9.6 (9.8), 4x4 with 16x16 workgroups 5.1 (5.4: its working set
 * leaves the cache). A 16x16 shared-memory tile with barriers gets 0.8.
 * 8x4 keeps its 32 accumulators in AVX-512VL's 32 vector registers.
 */
export const MATMUL_TILE: MatmulTile = { TM: 8, TN: 4, WX: 8, WY: 8 };
/**
 * With A shared across a subgroup (8-lane subgroups, one per workgroup row) A costs one load per
 * 8 rows, so taller tiles pay (1024³ NN, GFLOP/s wall): 8x4 unshared 14.2, shared 8x4 25.4,
 * 16x4 37.7-39.9, 32x4 40.5, 24x4 35.6, 16x8 33.6, 8x8 27.7. Lavapipe (Mesa 25.0) loads every
 * non-constant address lane by lane and component by component, which is ~60% of this kernel's
 * time; 32 rows halve the B loads per FMA, and with each row group's A broadcasts placed right
 * before its FMAs (IL) and vec4 stores of C, 32x4 beats 16x4 by 1.06-1.17x on every measured
 * shape (bench/NOTES.md, "Speed round 4: GEMM"). 4 lane rows keep 128 rows per workgroup.
 */
export const MATMUL_TILE_SHARED: MatmulTile = { TM: 32, TN: 4, WX: 8, WY: 4, IL: true };
/**
 * Products with <= 64 rows (1x1 backward-data at 64 channels, linear layers on small batches)
 * would run 128-row workgroups half empty; 2 lane rows (64 rows) measured 1.7-2.0x faster there
 * (64x784x64 x64, 64x64x3136 x36, 48x784x64 x64), and 0.97-1.29x against 16x4 with 4 lane rows.
 */
export const MATMUL_TILE_SHARED_SHORT: MatmulTile = { TM: 32, TN: 4, WX: 8, WY: 2, IL: true };

/**
 * SwiftShader (Chromium's CPU adapter, 4-lane subgroups) runs every load with a non-constant
 * address lane by lane, so what counts there is FMAs per load instruction: the 4 lanes of a
 * workgroup row share their A loads by broadcast (one load instruction brings 4 rows) and each
 * lane owns 28x16 outputs: per 4 steps of k, 7 A + 16 B vec4 loads for 448 vec4 FMAs (the 8x4
 * unshared tile: 12 loads for 32). 16x16 was 1.5-2.9x faster than 8x4 in the page (bench/NOTES.md,
 * "Speed round 3: SwiftShader matmul tile"); with vec4 stores of C, 24-32 rows beat 16 by
 * 1.04-1.16x, and 4 lane rows of 28 (112 rows) cover the 784 tiles of a 28 px Winograd GEMM at
 * batch 16 exactly ("Speed round 5: page GEMM"). Products smaller than one workgroup's 112x64
 * outputs take MATMUL_TILE_SW_MID or MATMUL_TILE_SW_SMALL, which waste less on padding.
 */
export const MATMUL_TILE_SW = { TM: 28, TN: 16, WX: 4, WY: 4 };
/**
 * SwiftShader, 64-111 rows with a long K (Winograd's weight gradient: 36 products of 64x64 over
 * K = tiles): 32x16 per lane, 2 lane rows, one workgroup per 64x64 block, 1.78x over the 8x4 tile
 * (64x64x784, "Speed round 5: page GEMM"). Short K keeps the 8x4 tile: the 32x16 body compiles for
 * seconds in Subzero, and the web app's small models' products (K = a few dozen tiles) gain little.
 */
export const MATMUL_TILE_SW_MID = { TM: 32, TN: 16, WX: 4, WY: 2 };
export const MATMUL_TILE_SW_SMALL = { TM: 8, TN: 4, WX: 4, WY: 8 };
const SW_MID_MIN_K = 256;

/**
 * Test/bench hooks: `subgroups: false` forces the kernel without shared A loads; `tile` forces a
 * tile (A loads are shared when its WX equals the subgroup size); `vecStore: false` keeps scalar
 * stores of C where vec4 stores would be used (see vecStores); `exitRows: false` keeps subgroups
 * past the last row running (see EDGE_EXIT in matmulDefines).
 */
export const matmulTuning: { subgroups?: boolean; tile?: MatmulTile; vecStore?: boolean; exitRows?: boolean } = {};

/** Chromium's CPU adapter, by name (isFallbackAdapter does not tell it apart: lavapipe sets it too). */
export function isSwiftShader(): boolean {
  const i = getGpu().info;
  return /swiftshader/i.test(`${i.vendor} ${i.architecture} ${i.description}`);
}

/** The tile for a product and whether its A loads are shared across a subgroup (= a workgroup row). */
function pickTile(M: number, N: number, K: number, vA: boolean, sharedTile?: MatmulTile): { tile: MatmulTile; share: boolean } {
  const sg = getGpu().subgroupSize;
  const subOk = matmulTuning.subgroups !== false && vA;
  if (matmulTuning.tile) return { tile: matmulTuning.tile, share: subOk && sg === matmulTuning.tile.WX };
  if (subOk && sg === MATMUL_TILE_SHARED.WX) return { tile: sharedTile ?? (M <= 64 ? MATMUL_TILE_SHARED_SHORT : MATMUL_TILE_SHARED), share: true };
  if (subOk && sg === MATMUL_TILE_SW.WX && isSwiftShader()) {
    const fits = (t: MatmulTile) => M >= t.TM * t.WY && N >= t.TN * t.WX;
    if (fits(MATMUL_TILE_SW)) return { tile: MATMUL_TILE_SW, share: true };
    return { tile: fits(MATMUL_TILE_SW_MID) && K >= SW_MID_MIN_K ? MATMUL_TILE_SW_MID : MATMUL_TILE_SW_SMALL, share: true };
  }
  return { tile: MATMUL_TILE, share: false };
}

/**
 * Whether C is written as vec4s (one guarded store instead of four): rows a multiple of 4 long, on
 * the shared 8-lane kernel with the IL order, where it measured 1.03-1.17x with the 32x4 tile (most
 * at small K, where stores are a larger share). With the 16x4 loads-first tiles it measured
 * 0.86-1.07x (Winograd's 64-row tile: 0.86-0.96x), so they keep scalar stores, as does the plain
 * kernel (not measured). SwiftShader's shared tiles (4-lane rows) store vec4s: each scalar store
 * there is a per-lane scatter behind its own guard, and the 16x16 tile's 256 of them per lane
 * measured ~1.1x of the Winograd GEMM (bench/NOTES.md, "Speed round 5: page GEMM").
 */
const vecStores = (N: number, tile: MatmulTile, share: boolean): boolean =>
  N % 4 === 0 && share && ((tile.WX === 8 && !!tile.IL) || (tile.WX === 4 && isSwiftShader())) && matmulTuning.vecStore !== false;

const MAX_BATCH_RANK = 8;

interface Layout {
  tA: boolean;
  tB: boolean;
  /** operand bound as array<vec4f> */
  vA: boolean;
  vB: boolean;
  bias: boolean;
  /** C bound as array<vec4f> (N % 4 == 0: rows start on vec4 boundaries) */
  vC?: boolean;
  /** lanes of a subgroup (= one workgroup row of WX lanes) share A loads by broadcast */
  share: boolean;
}

const range = (n: number): number[] => [...Array(n).keys()];
const X = ['x', 'y', 'z', 'w'];

/** The {{...}} code snippets of shaders/matmul.wgsl for one layout and tile. */
export function matmulDefines(l: Layout, tile = MATMUL_TILE): Record<string, string | number> {
  const { TM, TN } = tile;
  const RG = range(TM / 4); // row groups of 4
  const CG = range(TN / 4); // column groups of 4
  const KK = range(4);
  const setup: string[] = [];
  const load4: string[] = [];
  const loadB: string[] = [];
  const load1: string[] = [];
  for (const g of RG) setup.push(`let mi${g} = min(vec4u(m0 + ${4 * g}u) + lane, vec4u(M - 1u));`);
  for (const c of CG) setup.push(`let ni${c} = min(vec4u(n0 + ${4 * c}u) + lane, vec4u(N - 1u));`);
  // transposes a 4x4 block given as 4 vec4 rows r{j} into vec4 columns
  const columns = (dst: string, src: string, grp: number) =>
    KK.map((kk) => `    let ${dst}${kk}_${grp} = vec4f(${KK.map((j) => `${src}${grp}${j}.${X[kk]}`).join(', ')});`);

  // A: a{kk}_{g} holds A'(rows 4g..4g+3 of the tile, k + kk)
  const sharedA = l.share && l.vA;
  // IL: each row group's A values (broadcasts) right before that group's FMAs, so fewer are live
  const IL = !!tile.IL;
  const perG: string[][] = RG.map(() => []);
  if (sharedA) {
    // The WX lanes of a workgroup row own the same TM rows, so they need the same A vec4s (TM
    // per 4-step of k); lavapipe loads lane by lane, so lane l loads item r*WX + l and the others
    // take it by broadcast. Item q: row q of the tile (A [M, K]) or (k + q / G, group q % G)
    // (A stored [K, M]).
    const S = tile.WX;
    const items = TM; // TM/4 groups x 4 rows, or 4 k-rows x TM/4 groups
    for (let r = 0; r * S < items; r++) {
      setup.push(`let aq${r} = min(${r * S}u + sl, ${items - 1}u);`);
      if (!l.tA) setup.push(`let aOff${r} = (offA + min(m0 + aq${r}, M - 1u) * K) / 4u;`);
      else setup.push(`let aOff${r} = (offA + min(m0 + 4u * (aq${r} % ${TM / 4}u), M - 4u)) / 4u + (aq${r} / ${TM / 4}u) * (M / 4u);`);
      load4.push(!l.tA ? `    let la${r} = a[aOff${r} + k4];` : `    let la${r} = a[aOff${r} + k * (M / 4u)];`);
    }
    const bc = (q: number) => `subgroupBroadcast(la${Math.floor(q / S)}, ${q % S}u)`;
    if (!l.tA)
      for (const g of RG) {
        const dst = IL ? perG[g] : load4;
        for (const j of KK) dst.push(`    let ra${g}${j} = ${bc(4 * g + j)};`);
        dst.push(...columns('a', 'ra', g));
      }
    else for (const kk of KK) for (const g of RG) (IL ? perG[g] : load4).push(`    let a${kk}_${g} = ${bc(kk * (TM / 4) + g)};`);
    for (const g of RG) load1.push(`    let a_${g} = vec4f(${KK.map((j) => `a1(offA + ${l.tA ? `k * M + mi${g}.${X[j]}` : `mi${g}.${X[j]} * K + k`})`).join(', ')});`);
    // the lanes sharing must really be one workgroup row; if an implementation groups them
    // otherwise, the result is NaN rather than silently wrong
    setup.push('let sgOk = subgroupAll(subgroupBroadcast(lid.y, 0u) == lid.y);');
  } else if (!l.tA) {
    // A [M, K]: rows are contiguous along k
    for (const g of RG) setup.push(l.vA ? `let ar${g} = (vec4u(offA) + mi${g} * K) / 4u;` : `let ar${g} = vec4u(offA) + mi${g} * K;`);
    for (const g of RG) {
      for (const j of KK)
        load4.push(l.vA ? `    let ra${g}${j} = a[ar${g}.${X[j]} + k4];` : `    let ra${g}${j} = vec4f(${KK.map((kk) => `a[ar${g}.${X[j]} + k + ${kk}u]`).join(', ')});`);
      load4.push(...columns('a', 'ra', g));
      load1.push(`    let a_${g} = vec4f(${KK.map((j) => `a1(offA + mi${g}.${X[j]} * K + k)`).join(', ')});`);
    }
  } else {
    // A stored [K, M]: contiguous along m
    if (l.vA) setup.push('let M4 = M / 4u;');
    for (const g of RG) setup.push(l.vA ? `let ac${g} = (offA + min(m0 + ${4 * g}u, M - 4u)) / 4u;` : `let ac${g} = vec4u(offA) + mi${g};`);
    for (const kk of KK)
      for (const g of RG)
        load4.push(l.vA ? `    let a${kk}_${g} = a[ac${g} + (k + ${kk}u) * M4];` : `    let a${kk}_${g} = vec4f(${KK.map((j) => `a[ac${g}.${X[j]} + (k + ${kk}u) * M]`).join(', ')});`);
    for (const g of RG) load1.push(`    let a_${g} = vec4f(${KK.map((j) => `a1(offA + k * M + mi${g}.${X[j]})`).join(', ')});`);
  }

  // B: b{kk}_{c} holds B'(k + kk, columns 4c..4c+3 of the tile)
  if (!l.tB) {
    // B [K, N]: contiguous along n
    if (l.vB) setup.push('let N4 = N / 4u;');
    for (const c of CG) setup.push(l.vB ? `let bc${c} = (offB + min(n0 + ${4 * c}u, N - 4u)) / 4u;` : `let bc${c} = vec4u(offB) + ni${c};`);
    for (const kk of KK)
      for (const c of CG)
        loadB.push(l.vB ? `    let b${kk}_${c} = b[bc${c} + (k + ${kk}u) * N4];` : `    let b${kk}_${c} = vec4f(${KK.map((j) => `b[bc${c}.${X[j]} + (k + ${kk}u) * N]`).join(', ')});`);
    for (const c of CG) load1.push(`    let b_${c} = vec4f(${KK.map((j) => `b1(offB + k * N + ni${c}.${X[j]})`).join(', ')});`);
  } else {
    // B stored [N, K]: contiguous along k
    for (const c of CG) setup.push(l.vB ? `let br${c} = (vec4u(offB) + ni${c} * K) / 4u;` : `let br${c} = vec4u(offB) + ni${c} * K;`);
    for (const c of CG) {
      for (const j of KK)
        loadB.push(l.vB ? `    let rb${c}${j} = b[br${c}.${X[j]} + k4];` : `    let rb${c}${j} = vec4f(${KK.map((kk) => `b[br${c}.${X[j]} + k + ${kk}u]`).join(', ')});`);
      loadB.push(...columns('b', 'rb', c));
      load1.push(`    let b_${c} = vec4f(${KK.map((j) => `b1(offB + ni${c}.${X[j]} * K + k)`).join(', ')});`);
    }
  }

  const fma4: string[] = [];
  const fma1: string[] = [];
  for (const g of RG) {
    fma4.push(...perG[g]);
    for (const i of KK)
      for (const c of CG) {
        setup.push(`var acc${g}${i}_${c} = vec4f(0.0);`);
        const acc = `acc${g}${i}_${c}`;
        for (const kk of KK) fma4.push(`    ${acc} = fma(vec4f(a${kk}_${g}.${X[i]}), b${kk}_${c}, ${acc});`);
        fma1.push(`    ${acc} = fma(vec4f(a_${g}.${X[i]}), b_${c}, ${acc});`);
      }
  }
  if (l.bias) for (const c of CG) setup.push(`let bv${c} = vec4f(${KK.map((j) => `bias[ni${c}.${X[j]}]`).join(', ')});`);

  const store: string[] = [];
  for (const g of RG)
    for (const i of KK) {
      store.push(`  if (m0 + ${4 * g + i}u < M) {`, `    let row = offC + (m0 + ${4 * g + i}u) * N;`);
      for (const c of CG) {
        const v = `acc${g}${i}_${c}${l.bias ? ` + bv${c}` : ''}${sharedA ? ' + vec4f(bitcast<f32>(select(0u, 0x7fc00000u, !sgOk)))' : ''}`;
        if (l.vC) store.push(`    { let n = n0 + ${4 * c}u; if (n < N) { c[(row + n) / 4u] = ${v}; } }`);
        else
          store.push(
            `    { let n = n0 + ${4 * c}u; let v = ${v};`,
            `      if (n + 3u < N) { ${KK.map((j) => `c[row + n + ${j}u] = v.${X[j]};`).join(' ')} }`,
            `      else { ${KK.map((j) => `if (n + ${j}u < N) { c[row + n + ${j}u] = v.${X[j]}; }`).join(' ')} } }`,
          );
      }
      store.push('  }');
    }

  return {
    ENABLE: sharedA ? 'enable subgroups;\ndiagnostic(off, subgroup_uniformity);' : '',
    SG_ARG: sharedA ? ', @builtin(subgroup_invocation_id) sl: u32' : '',
    // Lanes past the matrix edge keep running (clamped loads, guarded stores) when they share loads,
    // except a subgroup whose lanes are all past the last row: it has nothing to store and nobody to
    // share with (the last row-workgroup of a 784-row Winograd GEMM: 7/8 of it).
    EDGE_EXIT: sharedA ? (matmulTuning.exitRows !== false ? 'if (subgroupAll(m0 >= M)) { return; }' : '') : 'if (m0 >= M || n0 >= N) { return; }',
    A_ELEM: l.vA ? 'vec4f' : 'f32',
    B_ELEM: l.vB ? 'vec4f' : 'f32',
    C_ELEM: l.vC ? 'vec4f' : 'f32',
    A1: l.vA ? 'a[i / 4u][i % 4u]' : 'a[i]',
    B1: l.vB ? 'b[i / 4u][i % 4u]' : 'b[i]',
    BIAS_BINDING: l.bias ? '@group(0) @binding(3) var<storage, read> bias: array<f32>;' : '',
    C_BINDING: l.bias ? 4 : 3,
    TM,
    TN,
    WX: tile.WX,
    WY: tile.WY,
    SETUP: setup.map((s) => `  ${s}`).join('\n'),
    // IL: B first, so its vectors are assembled while little else is live
    LOAD4: (IL ? [...loadB, ...load4] : [...load4, ...loadB]).join('\n'),
    FMA4: fma4.join('\n'),
    LOAD1: load1.join('\n'),
    FMA1: fma1.join('\n'),
    STORE: store.join('\n'),
  };
}

const defineCache = new Map<string, Record<string, string | number>>();

function definesFor(l: Layout, t: MatmulTile): Record<string, string | number> {
  const key = `${matmulTuning.exitRows === false ? 'x' : ''}${+l.tA}${+l.tB}${+l.vA}${+l.vB}${+!!l.vC}${+l.bias}${+l.share}|${t.TM}x${t.TN}|${t.WX}x${t.WY}|${+!!t.IL}`;
  let d = defineCache.get(key);
  if (!d) defineCache.set(key, (d = matmulDefines(l, t)));
  return d;
}

interface Dims {
  M: number;
  N: number;
  K: number;
  batch: number[];
}

/** Output dims of op(a)·op(b); throws naming both shapes. */
function matmulDims(op: string, a: Shape, b: Shape, tA: boolean, tB: boolean): Dims {
  if (a.length < 2 || b.length < 2) throw new ShapeError(`${op}: operands need rank >= 2, got ${fmt(a)} and ${fmt(b)}`);
  const [ra, ca] = a.slice(-2);
  const [rb, cb] = b.slice(-2);
  const [M, K] = tA ? [ca, ra] : [ra, ca];
  const [K2, N] = tB ? [cb, rb] : [rb, cb];
  if (K !== K2)
    throw new ShapeError(`${op}: inner dimensions differ: ${fmt(a)}${tA ? 'ᵀ' : ''} has K=${K} but ${fmt(b)}${tB ? 'ᵀ' : ''} has K=${K2}`);
  let batch: number[];
  try {
    batch = broadcastShapes(op, a.slice(0, -2), b.slice(0, -2));
  } catch {
    throw new ShapeError(`${op}: batch dimensions of ${fmt(a)} and ${fmt(b)} do not broadcast`);
  }
  if (batch.length > MAX_BATCH_RANK) throw new ShapeError(`${op}: more than ${MAX_BATCH_RANK} batch dimensions in ${fmt(a)} x ${fmt(b)}`);
  return { M, N, K, batch };
}

/** Element strides of an operand's batch dims read as broadcast to `batch` (0 where broadcast). */
function batchStrides(s: Shape, batch: number[]): number[] {
  const own = s.slice(0, -2);
  const st = new Array<number>(batch.length).fill(0);
  let acc = s[s.length - 2] * s[s.length - 1];
  for (let i = own.length - 1; i >= 0; i--) {
    st[batch.length - own.length + i] = own[i] === 1 ? 0 : acc;
    acc *= own[i];
  }
  return st;
}


/**
 * Records op(a)·op(b) (+ bias) into a new tensor of shape [...batch, M, N]; no autograd.
 * `sharedTile` replaces MATMUL_TILE_SHARED where that kernel runs (conv-winograd.ts: fewer rows
 * per workgroup for its 64-row products, which the 128-row tile would run half empty); SwiftShader
 * picks its own tile (pickTile).
 */
export function matmulRaw(a: Tensor, b: Tensor, tA: boolean, tB: boolean, bias: Tensor | null = null, name = 'matmul', sharedTile?: MatmulTile): Tensor {
  const { M, N, K, batch } = matmulDims(name, a.shape, b.shape, tA, tB);
  const out = new Tensor([...batch, M, N], 'f32');
  const nb = numel(batch);
  if (out.size === 0) return out;
  const vA = K > 0 && (tA ? M % 4 === 0 : K % 4 === 0);
  const { tile, share } = pickTile(M, N, K, vA, sharedTile);
  const layout: Layout = { tA, tB, vA, vB: K > 0 && (tB ? K % 4 === 0 : N % 4 === 0), bias: bias !== null, share, vC: vecStores(N, tile, share) };
  const { TM, TN, WX, WY } = tile;
  const gx = Math.ceil(N / TN / WX);
  const gy = Math.ceil(M / TM / WY);
  if (gx > MAX_GROUPS || gy > MAX_GROUPS)
    throw new RangeError(`${name}: ${fmt(out.shape)} needs a grid of ${gx}x${gy} workgroups per matrix, above the limit ${MAX_GROUPS} per dimension`);
  const u = { M, N, K, brank: batch.length, gy, z0: 0, bshape: batch, sa: batchStrides(a.shape, batch), sb: batchStrides(b.shape, batch) };
  const bindings = bias ? [a.binding, b.binding, bias.binding, out.binding] : [a.binding, b.binding, out.binding];
  // batch items ride on the y grid (gy row-tile groups each), as many per launch as fit
  const perLaunch = Math.floor(MAX_GROUPS / gy);
  for (let z0 = 0; z0 < nb; z0 += perLaunch) {
    const items = Math.min(perLaunch, nb - z0);
    dispatch({ name, shader: 'matmul', defines: definesFor(layout, tile) }, { ...u, z0 }, bindings, [gx, gy * items]);
  }
  return out;
}

// ---- matmul -------------------------------------------------------------------------------

interface MatmulParams {
  transA: boolean;
  transB: boolean;
}

const matmulOp = defineOp<MatmulParams>({
  name: 'matmul',
  shape([a, b], { transA, transB }): Meta {
    expectDtype('matmul', a, 'f32', 'first operand');
    expectDtype('matmul', b, 'f32', 'second operand');
    const { M, N, batch } = matmulDims('matmul', a.shape, b.shape, transA, transB);
    return { shape: [...batch, M, N], dtype: 'f32' };
  },
  forward([a, b], { transA, transB }, ctx) {
    if (ctx.needsGrad) ctx.save(a, b);
    return matmulRaw(a, b, transA, transB);
  },
  backward(g, { saved: [a, b], params: { transA: tA, transB: tB }, inputShapes, inputNeedsGrad }) {
    // C = A'·B' with A' = op(A), B' = op(B): dA' = g·B'ᵀ, dB' = A'ᵀ·g, transposed back where stored transposed.
    let da: Tensor | null = null;
    let db: Tensor | null = null;
    if (inputNeedsGrad[0]) da = tA ? matmulRaw(b, g, tB, true) : matmulRaw(g, b, false, !tB);
    if (inputNeedsGrad[1]) db = tB ? matmulRaw(g, a, true, tA) : matmulRaw(a, g, !tA, false);
    return [da && sumTo(da, inputShapes[0]), db && sumTo(db, inputShapes[1])];
  },
});

export interface MatmulOptions {
  /** use aᵀ (the last two dims swapped) */
  transA?: boolean;
  /** use bᵀ */
  transB?: boolean;
}

/**
 * op(a) · op(b) over the last two dims; leading (batch) dims broadcast NumPy-style.
 * a [..., M, K] (or [..., K, M] with transA), b [..., K, N] (or [..., N, K] with transB).
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  return matmulOp([a, b], { transA: opts.transA ?? false, transB: opts.transB ?? false });
}

// ---- linear -------------------------------------------------------------------------------

const linearOp = defineOp<Record<string, never>>({
  name: 'linear',
  shape(inputs) {
    const [x, w, b] = inputs;
    for (const [t, what] of [[x, 'input'], [w, 'weight'], [b, 'bias']] as const) if (t) expectDtype('linear', t, 'f32', what);
    if (x.shape.length < 1 || w.shape.length !== 2 || x.shape[x.shape.length - 1] !== w.shape[1])
      throw new ShapeError(`linear: input ${fmt(x.shape)} does not fit weight ${fmt(w.shape)} (expected x [..., ${w.shape[1] ?? 'in'}], w [out, in])`);
    if (b && (b.shape.length !== 1 || b.shape[0] !== w.shape[0])) throw new ShapeError(`linear: bias ${fmt(b.shape)} does not fit weight ${fmt(w.shape)} (expected [${w.shape[0]}])`);
    return { shape: [...x.shape.slice(0, -1), w.shape[0]], dtype: 'f32' };
  },
  forward(inputs, _p, ctx) {
    const [x, w, b] = inputs;
    if (ctx.needsGrad) ctx.save(x, w);
    const x2 = x.view([numel(x.shape.slice(0, -1)), w.shape[1]]);
    const y2 = matmulRaw(x2, w, false, true, b ?? null, 'linear');
    x2.dispose();
    const y = y2.view([...x.shape.slice(0, -1), w.shape[0]]);
    y2.dispose();
    return y;
  },
  backward(g, { saved: [x, w], inputNeedsGrad }) {
    const rows = numel(x.shape.slice(0, -1));
    const g2 = g.view([rows, w.shape[0]]);
    const x2 = x.view([rows, w.shape[1]]);
    const dx = inputNeedsGrad[0] ? matmulRaw(g2, w, false, false).view(x.shape) : null; // g·w
    const dw = inputNeedsGrad[1] ? matmulRaw(g2, x2, true, false) : null; // gᵀ·x
    const db = inputNeedsGrad[2] ? sum(g2, 0) : null;
    return [dx, dw, db];
  },
});

/** x·wᵀ + b with x [..., in], w [out, in] (PyTorch layout), b [out] or none; the bias add is fused. */
export function linear(x: Tensor, w: Tensor, b?: Tensor | null): Tensor {
  return linearOp(b ? [x, w, b] : [x, w], {});
}
