// matmul (every transpose layout, batched with broadcasting, edges that are not multiples of
// the 4x4 register tile or of the vec4 width) and linear (fused bias), forward and backward,
// against the float64 reference. Tolerances (relative L2): forward 1e-5 (f32 accumulation
// over K <= ~1000), gradients 1e-4.
// MATMUL_BENCH=1 also times 1024x1024x1024 (median and best GFLOP/s over a few runs).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuInit, read64, expectClose, rk } from './helpers.ts';
import * as ref from './reference/core.ts';
import { numericGrad, seededRandom } from './reference/gradcheck.ts';
import { matmulTuning, MATMUL_TILE_SHARED, MATMUL_TILE_SHARED_SHORT, MATMUL_TILE_SW_SMALL, type MatmulTile } from '../engine/ops/matmul.ts';

const SEED = Number(process.env.ROSKD_SEED ?? Date.now() % 1_000_000_007);
const rng = seededRandom(SEED);
console.log(`matmul: seed ${SEED} (ROSKD_SEED=${SEED} replays this run)`);

interface T64 {
  data: Float64Array;
  shape: number[];
}
const numel = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);
const f32 = (a: ArrayLike<number>): Float64Array => Float64Array.from(Float32Array.from(a));
const randT = (shape: number[], scale = 1): T64 => ({ data: f32(Float64Array.from({ length: numel(shape) }, () => scale * rng.normal())), shape });
const up = (t: T64): rk.Tensor => rk.tensor(Float32Array.from(t.data), t.shape);
const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/** Swaps the last two dims (reference). */
function tr(t: T64): T64 {
  const r = t.shape.length;
  const perm = [...Array(r).keys()];
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return ref.permute(t.data, t.shape, perm);
}
/** Reference op(a) · op(b). */
function refMatmul(a: T64, b: T64, tA: boolean, tB: boolean): T64 {
  const A = tA ? tr(a) : a;
  const B = tB ? tr(b) : b;
  return ref.matmul(A.data, A.shape, B.data, B.shape);
}
/** Operand shapes for op(a) [.., M, K] and op(b) [.., K, N]. */
const shapesFor = (ba: number[], bb: number[], M: number, N: number, K: number, tA: boolean, tB: boolean): [number[], number[]] => [
  [...ba, ...(tA ? [K, M] : [M, K])],
  [...bb, ...(tB ? [N, K] : [K, N])],
];

async function gpuGrads(f: (xs: rk.Tensor[]) => rk.Tensor, inputs: T64[], probe: Float64Array): Promise<Float64Array[]> {
  return rk.tidyAsync(async () => {
    const xs = inputs.map((t) => up(t).requireGrad());
    const y = f(xs);
    rk.sum(rk.mul(y, rk.tensor(Float32Array.from(probe), y.shape))).backward();
    const out: Float64Array[] = [];
    for (const x of xs) {
      out.push(await read64(x.grad!));
      x.grad!.dispose();
    }
    return out;
  });
}

test.before(gpuInit);

const LAYOUTS: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];
const fmtShape = (s: number[]) => `[${s.join(', ')}]`;
const name = (tA: boolean, tB: boolean) => `${tA ? 'T' : 'N'}${tB ? 'T' : 'N'}`;

test('matmul: 2-D, every transpose layout, tile/vec4 edges (M, N, K not multiples of 4, size 1, K = 0)', async () => {
  const dims: [number, number, number][] = [
    [1, 1, 1],
    [1, 7, 3],
    [5, 1, 9],
    [4, 4, 4],
    [3, 5, 7],
    [8, 12, 16],
    [33, 17, 9],
    [12, 8, 5], // M, N multiples of 4, K not: vec4 along m/n, scalar along k
    [6, 10, 12], // K multiple of 4, M, N not
    [67, 130, 129],
    [3, 4, 0], // empty inner dimension: zeros
    [150, 36, 44], // several tall (16-row) tiles, rows past M in the last one
  ];
  // where the adapter has 8-lane subgroups, the kernel shares A loads across them: test both kernels
  const paths = rk.getGpu().subgroupSize === 8 ? [true, false] : [false];
  if (paths.length === 1) console.log('matmul: no 8-lane subgroups on this adapter: only the plain kernel is tested');
  for (const shared of paths) {
    matmulTuning.subgroups = shared;
    for (const [M, N, K] of dims)
      for (const [tA, tB] of LAYOUTS) {
        const [sa, sb] = shapesFor([], [], M, N, K, tA, tB);
        const a = randT(sa);
        const b = randT(sb);
        const want = refMatmul(a, b, tA, tB);
        const y = rk.matmul(up(a), up(b), { transA: tA, transB: tB });
        assert.equal([...y.shape], want.shape, `${name(tA, tB)} ${M}x${N}x${K} shape`);
        const got = await read64(y);
        if (K === 0) assert.ok(got.every((v) => v === 0), 'K = 0 gives zeros');
        else expectClose(got, want.data, 1e-5, `matmul ${name(tA, tB)} M=${M} N=${N} K=${K}${shared ? ', shared-A kernel' : ', plain kernel'} (seed ${SEED})`);
        y.dispose();
      }
  }
  matmulTuning.subgroups = undefined;
});

test('matmul / linear: the SwiftShader small tile (8x4 per lane, 4-lane rows) forced: edges, batch, layouts, bias', async () => {
  // Forced here; it shares A loads only on 4-lane subgroups (SwiftShader: test/matmul-swiftshader.test.ts
  // runs it there, with MATMUL_TILE_SW, against float64; the page checks both too), elsewhere the
  // same tile runs without sharing. MATMUL_TILE_SW (28x16) is not forced on lavapipe: its body takes
  // lavapipe minutes to compile cold (410 s for this file with it), and the generator is the same.
  // M and K multiples of 4: A binds as vec4 in every layout, which is where pickTile uses them
  const dims: [number, number, number][] = [
    [152, 70, 44], // several 64-row workgroups and a partial one; columns past N, scalar B (NN, TN)
    [128, 64, 64],
    [36, 20, 12], // tiles mostly past the edges
  ];
  try {
    for (const tile of [MATMUL_TILE_SW_SMALL]) {
      matmulTuning.tile = tile;
      const what = `tile ${tile.TM}x${tile.TN} ${tile.WX}x${tile.WY}`;
      for (const [M, N, K] of dims)
        for (const [tA, tB] of LAYOUTS) {
          const [sa, sb] = shapesFor([2], [2], M, N, K, tA, tB);
          const a = randT(sa);
          const b = randT(sb);
          const y = rk.matmul(up(a), up(b), { transA: tA, transB: tB });
          expectClose(await read64(y), refMatmul(a, b, tA, tB).data, 1e-5, `matmul ${name(tA, tB)} [2] ${M}x${N}x${K}, ${what} (seed ${SEED})`);
          y.dispose();
        }
      const x = randT([152, 44]);
      const w = randT([70, 44]);
      const bias = randT([70]);
      const y = rk.linear(up(x), up(w), up(bias));
      const want = refMatmul(x, w, false, true);
      for (let i = 0; i < 152; i++) for (let j = 0; j < 70; j++) want.data[i * 70 + j] += bias.data[j];
      expectClose(await read64(y), want.data, 1e-5, `linear 152x44 · (70x44)ᵀ + b, ${what} (seed ${SEED})`);
      y.dispose();
    }
  } finally {
    matmulTuning.tile = undefined;
  }
});

test('matmul / linear: the 8-lane shared-A tiles forced (32x4 interleaved, 16x4, 64-row), vec4 and scalar C stores: edges, batch, layouts, bias', async () => {
  if (rk.getGpu().subgroupSize !== 8) {
    console.log('matmul: no 8-lane subgroups on this adapter: the shared-A tiles are not tested');
    return;
  }
  // [tile, vec4 C stores]; each pipeline compiles for seconds cold, so not every pairing
  const cases: [MatmulTile, boolean][] = [
    [MATMUL_TILE_SHARED, true],
    [MATMUL_TILE_SHARED, false],
    [MATMUL_TILE_SHARED_SHORT, true], // 64-row workgroups
    [{ TM: 16, TN: 4, WX: 8, WY: 4 }, false], // loads before FMAs (Winograd's short products)
    [{ TM: 16, TN: 8, WX: 8, WY: 2, IL: true }, false], // two column groups per lane
  ];
  // M, K multiples of 4 (A binds as vec4: the shared kernel); N a multiple of 4 or not (vec4 or
  // scalar C), past the 32/64-column and 64/128-row workgroup edges; with A transposed (vec4 along
  // m) K + 1, so the scalar k tail after the 4-steps runs too
  const dims: [number, number, number][] = [
    [200, 76, 36],
    [40, 36, 20],
    [132, 66, 12],
    [4, 8, 4],
  ];
  try {
    for (const [tile, vecStore] of cases) {
      matmulTuning.tile = tile;
      matmulTuning.vecStore = vecStore;
      const what = `tile ${tile.TM}x${tile.TN} ${tile.WX}x${tile.WY}${tile.IL ? ' IL' : ''}, ${vecStore ? 'vec4' : 'scalar'} C`;
      for (const [M, N, K] of dims)
        for (const [tA, tB] of LAYOUTS) {
          const [sa, sb] = shapesFor([2], [1], M, N, tA ? K + 1 : K, tA, tB);
          const a = randT(sa);
          const b = randT(sb);
          const y = rk.matmul(up(a), up(b), { transA: tA, transB: tB });
          expectClose(await read64(y), refMatmul(a, b, tA, tB).data, 1e-5, `matmul ${name(tA, tB)} [2]x[1] ${fmtShape(sa)} ${fmtShape(sb)}, ${what} (seed ${SEED})`);
          y.dispose();
        }
      const x = randT([132, 44]);
      const w = randT([68, 44]);
      const bias = randT([68]);
      const y = rk.linear(up(x), up(w), up(bias));
      const want = refMatmul(x, w, false, true);
      for (let i = 0; i < 132; i++) for (let j = 0; j < 68; j++) want.data[i * 68 + j] += bias.data[j];
      expectClose(await read64(y), want.data, 1e-5, `linear 132x44 · (68x44)ᵀ + b, ${what} (seed ${SEED})`);
      y.dispose();
    }
  } finally {
    matmulTuning.tile = undefined;
    matmulTuning.vecStore = undefined;
  }
});

test('matmul: batched, batch dims broadcasting both ways, rank up to 5', async () => {
  const cases: [number[], number[], number, number, number][] = [
    [[3], [3], 5, 6, 7],
    [[2, 1], [1, 4], 4, 8, 8],
    [[], [4], 9, 4, 12], // a broadcast over b's batch
    [[3], [], 7, 5, 3],
    [[2, 1, 3], [1, 2, 1], 3, 5, 4],
    [[1, 2, 1], [2, 1, 3], 1, 9, 2],
  ];
  for (const [ba, bb, M, N, K] of cases)
    for (const [tA, tB] of LAYOUTS) {
      const [sa, sb] = shapesFor(ba, bb, M, N, K, tA, tB);
      const a = randT(sa);
      const b = randT(sb);
      const want = refMatmul(a, b, tA, tB);
      const y = rk.matmul(up(a), up(b), { transA: tA, transB: tB });
      assert.equal([...y.shape], want.shape, `batched ${JSON.stringify(sa)} x ${JSON.stringify(sb)}`);
      expectClose(await read64(y), want.data, 1e-5, `matmul ${name(tA, tB)} ${JSON.stringify(sa)} x ${JSON.stringify(sb)} (seed ${SEED})`);
      y.dispose();
    }
});

test('matmul: many batch items (the y grid folds batch and row tiles)', async () => {
  const a = randT([700, 3, 5]);
  const b = randT([700, 5, 2]);
  const y = rk.matmul(up(a), up(b));
  expectClose(await read64(y), refMatmul(a, b, false, false).data, 1e-5, 'matmul of 700 small matrices');
});

test('matmul: backward vs finite differences (all layouts, broadcast batch)', async () => {
  const cases: [number[], number[], number, number, number][] = [
    [[], [], 3, 2, 5],
    [[], [], 4, 4, 4],
    [[2], [1], 2, 3, 2],
    [[], [2], 3, 1, 4], // a broadcast: its gradient sums over b's batch
  ];
  for (const [ba, bb, M, N, K] of cases)
    for (const [tA, tB] of LAYOUTS) {
      const [sa, sb] = shapesFor(ba, bb, M, N, K, tA, tB);
      const a = randT(sa);
      const b = randT(sb);
      const probe = randT(refMatmul(a, b, tA, tB).shape).data;
      const [ga, gb] = await gpuGrads(([x, y]) => rk.matmul(x, y, { transA: tA, transB: tB }), [a, b], probe);
      const fa = numericGrad((v) => dot(probe, refMatmul({ data: v, shape: sa }, b, tA, tB).data), a.data);
      const fb = numericGrad((v) => dot(probe, refMatmul(a, { data: v, shape: sb }, tA, tB).data), b.data);
      expectClose(ga, fa, 1e-4, `matmul ${name(tA, tB)} ${JSON.stringify(sa)} x ${JSON.stringify(sb)} dA vs finite differences (seed ${SEED})`);
      expectClose(gb, fb, 1e-4, `matmul ${name(tA, tB)} ${JSON.stringify(sa)} x ${JSON.stringify(sb)} dB vs finite differences (seed ${SEED})`);
    }
});

test('matmul: backward vs analytic reference on larger shapes', async () => {
  for (const [tA, tB] of LAYOUTS) {
    const [M, N, K] = [37, 45, 29];
    const [sa, sb] = shapesFor([2], [2], M, N, K, tA, tB);
    const a = randT(sa);
    const b = randT(sb);
    const r = randT([2, M, N]);
    const [ga, gb] = await gpuGrads(([x, y]) => rk.matmul(x, y, { transA: tA, transB: tB }), [a, b], r.data);
    // d op(A) = r · op(B)ᵀ, d op(B) = op(A)ᵀ · r; transpose back where stored transposed
    const opA = tA ? tr(a) : a;
    const opB = tB ? tr(b) : b;
    const dOpA = ref.matmul(r.data, r.shape, tr(opB).data, tr(opB).shape);
    const dOpB = ref.matmul(tr(opA).data, tr(opA).shape, r.data, r.shape);
    expectClose(ga, (tA ? tr(dOpA) : dOpA).data, 1e-4, `matmul ${name(tA, tB)} dA vs analytic (seed ${SEED})`);
    expectClose(gb, (tB ? tr(dOpB) : dOpB).data, 1e-4, `matmul ${name(tA, tB)} dB vs analytic (seed ${SEED})`);
  }
});

function refLinear(x: T64, w: T64, b: T64 | null): Float64Array {
  const inF = w.shape[1];
  const rows = x.data.length / inF;
  const y = ref.matmul(x.data, [rows, inF], tr(w).data, [inF, w.shape[0]]).data;
  if (b) for (let i = 0; i < y.length; i++) y[i] += b.data[i % w.shape[0]];
  return y;
}

test('linear: x·wᵀ + b (fused bias), with and without bias, leading dims', async () => {
  for (const [xs, out] of [
    [[5, 7], 3],
    [[1, 16], 10],
    [[2, 3, 12], 8],
    [[64, 130], 2],
  ] as [number[], number][]) {
    const x = randT(xs);
    const w = randT([out, xs[xs.length - 1]]);
    const b = randT([out]);
    for (const bias of [b, null]) {
      const y = rk.linear(up(x), up(w), bias && up(bias));
      assert.equal([...y.shape], [...xs.slice(0, -1), out]);
      expectClose(await read64(y), refLinear(x, w, bias), 1e-5, `linear ${JSON.stringify(xs)} -> ${out}${bias ? ' + b' : ''} (seed ${SEED})`);
    }
  }
});

test('linear: backward to x, w and b (finite differences and analytic)', async () => {
  for (const [xs, out] of [
    [[3, 4], 2],
    [[2, 2, 3], 5],
  ] as [number[], number][]) {
    const x = randT(xs);
    const w = randT([out, xs[xs.length - 1]]);
    const b = randT([out]);
    const probe = randT([...xs.slice(0, -1), out]).data;
    const got = await gpuGrads(([p, q, r]) => rk.linear(p, q, r), [x, w, b], probe);
    const parts = [x, w, b];
    parts.forEach((t, i) => {
      const fd = numericGrad((v) => dot(probe, refLinear(...(parts.map((u, j) => (j === i ? { data: v, shape: u.shape } : u)) as [T64, T64, T64]))), t.data);
      expectClose(got[i], fd, 1e-4, `linear ${JSON.stringify(xs)} d/d(input ${i}) vs finite differences (seed ${SEED})`);
    });
  }
  const [N, inF, out] = [50, 36, 21];
  const x = randT([N, inF]);
  const w = randT([out, inF]);
  const b = randT([out]);
  const r = randT([N, out]);
  const [gx, gw, gb] = await gpuGrads(([p, q, s]) => rk.linear(p, q, s), [x, w, b], r.data);
  expectClose(gx, ref.matmul(r.data, r.shape, w.data, w.shape).data, 1e-4, 'linear dx = g·w');
  expectClose(gw, ref.matmul(tr(r).data, [out, N], x.data, x.shape).data, 1e-4, 'linear dw = gᵀ·x');
  expectClose(gb, ref.reduce(r.data, r.shape, [0], false, 'sum').data, 1e-4, 'linear db = sum(g)');
});

test('matmul / linear: clear errors for bad shapes and dtypes', () => {
  const a = rk.zeros([2, 3]);
  const b = rk.zeros([4, 5]);
  assert.throws(() => rk.matmul(a, b), /matmul: inner dimensions differ: \[2, 3\] has K=3 but \[4, 5\] has K=4/);
  assert.throws(() => rk.matmul(a, rk.zeros([3])), /matmul: operands need rank >= 2, got \[2, 3\] and \[3\]/);
  assert.throws(() => rk.matmul(rk.zeros([2, 2, 3]), rk.zeros([3, 3, 2])), /batch dimensions of \[2, 2, 3\] and \[3, 3, 2\] do not broadcast/);
  assert.throws(() => rk.matmul(a, rk.zeros([3, 2], 'i32')), /matmul: second operand must be f32/);
  assert.throws(() => rk.linear(a, rk.zeros([4, 2])), /linear: input \[2, 3\] does not fit weight \[4, 2\]/);
  assert.throws(() => rk.linear(a, rk.zeros([4, 3]), rk.zeros([3])), /linear: bias \[3\] does not fit weight \[4, 3\]/);
});

test('matmul: 1024x1024x1024 GFLOP/s (MATMUL_BENCH=1 only)', async () => {
  if (!process.env.MATMUL_BENCH) return;
  // Wall-clock GFLOP/s (median and best of 5 runs of 2 matmuls after a warm-up), and GFLOP per
  // 2 CPU-seconds of this process (lavapipe's threads run in-process): on a shared 2-core
  // machine other processes slow the wall clock, not the CPU time the kernel needs.
  const n = 1024;
  const a = rk.randn([n, n]);
  const b = rk.randn([n, n]);
  const gf = (ms: number) => ((2 * n ** 3) / ms / 1e6).toFixed(2);
  for (const [tA, tB] of LAYOUTS) {
    rk.matmul(a, b, { transA: tA, transB: tB }).dispose(); // warm-up (pipeline compile)
    await rk.sync();
    const wall: number[] = [];
    const cpu: number[] = [];
    for (let r = 0; r < 5; r++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < 2; i++) rk.matmul(a, b, { transA: tA, transB: tB }).dispose();
      await rk.sync();
      wall.push((performance.now() - t0) / 2);
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1000 / 2 / 2);
    }
    wall.sort((p, q) => p - q);
    cpu.sort((p, q) => p - q);
    console.log(`matmul ${name(tA, tB)} 1024^3: median ${gf(wall[2])} GFLOP/s, best ${gf(wall[0])} GFLOP/s, per 2 CPU-seconds ${gf(cpu[2])}`);
  }
});

test.run();
