// Run by test/matmul-swiftshader.test.ts in a child process whose Vulkan loader sees only
// Chromium's SwiftShader (VK_ICD_FILENAMES), so Dawn in Node runs the page's adapter: 4-lane
// subgroups, and pickTile's SwiftShader tiles with their shared A loads, vec4 stores of C and the
// early exit of subgroups past the last row, none of which run on lavapipe. Float64 references,
// poisoned outputs (gpuInit).
import { test } from 'uvu';
import { gpuInit, read64, expectClose, rk } from '../helpers.ts';
import * as ref from '../reference/core.ts';
import { seededRandom } from '../reference/gradcheck.ts';
import { isSwiftShader, matmulTuning, MATMUL_TILE_SW, MATMUL_TILE_SW_MID, MATMUL_TILE_SW_SMALL } from '../../engine/ops/matmul.ts';

const SEED = Number(process.env.ROSKD_SEED ?? Date.now() % 1_000_000_007);
const rng = seededRandom(SEED);
const randA = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
const f64 = (a: Float32Array) => Float64Array.from(a);

test.before(async () => {
  await gpuInit();
  const g = rk.getGpu();
  // the parent test reads this line: not SwiftShader (an ICD the loader ignored) is a failure, not a pass
  console.log(`adapter: ${isSwiftShader() ? 'swiftshader' : 'other'}, subgroups ${g.subgroupSize} (seed ${SEED})`);
  if (!isSwiftShader() || g.subgroupSize !== 4) throw new Error('not SwiftShader with 4-lane subgroups');
});

/** op(a)·op(b) over `batch` items against float64; shapes [batch, rows, cols] with the transposes applied. */
async function check(batch: number, M: number, N: number, K: number, tA: boolean, tB: boolean, what: string): Promise<void> {
  const a = randA(batch * M * K);
  const b = randA(batch * K * N);
  const sa = tA ? [batch, K, M] : [batch, M, K];
  const sb = tB ? [batch, N, K] : [batch, K, N];
  const y = rk.matmul(rk.tensor(a, sa), rk.tensor(b, sb), { transA: tA, transB: tB });
  const perm = [0, 2, 1];
  const A = tA ? ref.permute(f64(a), sa, perm) : { data: f64(a), shape: sa };
  const B = tB ? ref.permute(f64(b), sb, perm) : { data: f64(b), shape: sb };
  expectClose(await read64(y), ref.matmul(A.data, A.shape, B.data, B.shape).data, 1e-5, `${what}: ${tA ? 'T' : 'N'}${tB ? 'T' : 'N'} [${batch}] ${M}x${N}x${K} (seed ${SEED})`);
  y.dispose();
}

test('SwiftShader: the Winograd GEMM shape (36 x 784x64 by 64x64: 112-row workgroups, no rows past M)', async () => {
  await check(36, 784, 64, 64, false, false, `tile ${MATMUL_TILE_SW.TM}x${MATMUL_TILE_SW.TN}`);
});

test('SwiftShader: the large tile at the edges (subgroups past the last row exit, columns past N, scalar C where N % 4 != 0)', async () => {
  await check(2, 250, 70, 44, false, false, 'rows past M in the last workgroup, scalar B and C');
  await check(2, 116, 64, 12, false, false, 'one lane row of the second workgroup in range');
  await check(3, 200, 132, 36, false, true, 'B transposed');
  await check(2, 232, 68, 40, true, false, 'A transposed (shared along m)');
});

test('SwiftShader: the 64-row tile on long K (Winograd weight gradient 36 x 64x64 over 784, A transposed; rows past M)', async () => {
  await check(36, 64, 64, 784, true, false, `tile ${MATMUL_TILE_SW_MID.TM}x${MATMUL_TILE_SW_MID.TN}`);
  await check(2, 100, 68, 260, false, false, 'rows and columns past the edges, K with a tail of 0');
  await check(2, 72, 64, 258, true, false, 'A transposed, a scalar k tail (K % 4 = 2)');
});

test('SwiftShader: the small shared tile (8x4) and linear with bias', async () => {
  await check(2, 40, 36, 20, false, false, `tile ${MATMUL_TILE_SW_SMALL.TM}x${MATMUL_TILE_SW_SMALL.TN}`);
  const x = randA(60 * 44);
  const w = randA(70 * 44);
  const bias = randA(70);
  const y = rk.linear(rk.tensor(x, [60, 44]), rk.tensor(w, [70, 44]), rk.tensor(bias, [70]));
  const want = ref.matmul(f64(x), [60, 44], ref.permute(f64(w), [70, 44], [1, 0]).data, [44, 70]).data;
  for (let i = 0; i < 60; i++) for (let j = 0; j < 70; j++) want[i * 70 + j] += bias[j];
  expectClose(await read64(y), want, 1e-5, `linear 60x44 · (70x44)ᵀ + b (seed ${SEED})`);
  y.dispose();
});

test('SwiftShader: the old behaviour still matches (scalar C, rows past M kept running)', async () => {
  matmulTuning.exitRows = false;
  matmulTuning.vecStore = false;
  try {
    await check(2, 250, 72, 44, false, false, 'exitRows false, vecStore false');
  } finally {
    matmulTuning.exitRows = undefined;
    matmulTuning.vecStore = undefined;
  }
});

test.run();
