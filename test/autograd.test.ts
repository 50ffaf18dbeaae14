// The autograd contract: gradient accumulation (diamond graphs, a tensor used twice, repeated
// backward calls), deep graphs without recursion, seeds for non-scalars, freed graphs, noGrad,
// gradients w.r.t. inputs, no memory growth over training-like loops, and clear errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuInit, read64, expectClose, rk } from './helpers.ts';
import * as ref from './reference/core.ts';
import { numericGrad, seededRandom } from './reference/gradcheck.ts';

const SEED = Number(process.env.ROSKD_SEED ?? Date.now() % 1_000_000_007);
const rng = seededRandom(SEED);
console.log(`autograd: seed ${SEED} (ROSKD_SEED=${SEED} replays this run)`);
const f32 = (a: ArrayLike<number>): Float64Array => Float64Array.from(Float32Array.from(a));
const randn = (n: number, scale = 1): Float64Array => f32(Float64Array.from({ length: n }, () => scale * rng.normal()));
const up = (d: ArrayLike<number>, shape: number[]): rk.Tensor => rk.tensor(Float32Array.from(d), shape);

test.before(gpuInit);

test('diamond graph: a tensor used twice (and in one op twice) accumulates its gradient', async () => {
  const xd = randn(7);
  const x = up(xd, [7]).requireGrad();
  // L = sum(x*x + 3x + exp(x) * x): dL/dx = 2x + 3 + exp(x)(1 + x)
  const a = rk.mul(x, x);
  const b = rk.mulScalar(x, 3);
  const c = rk.mul(rk.exp(x), x);
  rk.sum(rk.add(rk.add(a, b), c)).backward();
  expectClose(await read64(x.grad!), xd.map((v) => 2 * v + 3 + Math.exp(v) * (1 + v)), 1e-5, 'diamond gradient');
  // a second graph adds into the same .grad
  rk.sum(rk.mulScalar(x, 2)).backward();
  expectClose(await read64(x.grad!), xd.map((v) => 2 * v + 5 + Math.exp(v) * (1 + v)), 1e-5, 'gradient accumulated over two backward calls');
  x.grad!.dispose();
  x.grad = null;
  // a broadcast use and a plain use of the same tensor
  const w = up(randn(3), [3]).requireGrad();
  const m = up(randn(6), [2, 3]);
  rk.sum(rk.add(rk.mul(m, w), w)).backward(); // d/dw = sum over rows of m + 2 (w appears in 2 rows)
  const md = await read64(m);
  expectClose(await read64(w.grad!), [0, 1, 2].map((j) => md[j] + md[3 + j] + 2), 1e-6, 'broadcast + direct use');
});

test('deep chain of 5000 ops: forward, backward and disposal are iterative (no stack overflow)', async () => {
  const xd = f32([0.5, -1, 2]);
  const x = up(xd, [3]).requireGrad();
  const factor = Math.fround(1.0001);
  rk.tidy(() => {
    let y = x;
    for (let i = 0; i < 5000; i++) y = i % 2 ? rk.mulScalar(y, 1.0001) : rk.addScalar(y, 0.001);
    rk.sum(y).backward();
  });
  expectClose(await read64(x.grad!), [1, 1, 1].map(() => factor ** 2500), 1e-3, 'gradient through 5000 ops');
  // a deep graph that is never used for backward is freed without recursion too
  const live = rk.memoryStats().liveBytes;
  rk.tidy(() => {
    let y = x;
    for (let i = 0; i < 5000; i++) y = rk.addScalar(y, 1);
    return undefined;
  });
  assert.is(rk.memoryStats().liveBytes, live, 'an unused deep graph frees everything');
});

test('backward on a non-scalar needs a seed of the same shape', async () => {
  const xd = randn(4);
  const x = up(xd, [2, 2]).requireGrad();
  const y = rk.mul(x, x);
  assert.throws(() => y.backward(), /backward: \[2, 2\] f32 is not a scalar; pass a seed gradient of the same shape/);
  assert.throws(() => y.backward(rk.ones([4])), /seed \[4\] f32 does not match \[2, 2\] f32/);
  const seed = randn(4);
  y.backward(up(seed, [2, 2]));
  expectClose(await read64(x.grad!), xd.map((v, i) => 2 * v * seed[i]), 1e-6, 'seeded backward');
});

test('a second backward through a freed graph throws a clear error', () => {
  const x = up(randn(3), [3]).requireGrad();
  const loss = rk.sum(rk.exp(x));
  loss.backward();
  assert.throws(() => loss.backward(), /already freed by an earlier backward\(\)/);
});

test('noGrad records nothing; disposing intermediates before backward is safe', async () => {
  const xd = randn(5);
  const x = up(xd, [5]).requireGrad();
  const y = rk.noGrad(() => {
    assert.is(rk.isGradEnabled(), false);
    return rk.sum(rk.mul(x, x));
  });
  assert.is(rk.isGradEnabled(), true);
  assert.is(y.node, null, 'no graph node under noGrad');
  assert.throws(() => y.backward(), /does not require grad/);
  assert.is(x.grad, null);
  // the graph keeps what backward needs, so the caller may dispose intermediates
  const e = rk.exp(x);
  const s = rk.sum(e);
  e.dispose();
  s.backward();
  expectClose(await read64(x.grad!), xd.map(Math.exp), 1e-6, 'gradient after disposing the intermediate');
  assert.throws(() => rk.exp(x).requireGrad(), /requireGrad: \[5\] f32 is not a leaf \(it was produced by exp\)/);
});

test('gradients w.r.t. inputs (not only parameters): an MLP input gradient vs finite differences', async () => {
  const [N, D, H, C] = [3, 5, 4, 3];
  const xd = randn(N * D);
  const w1 = randn(H * D, 0.5);
  const w2 = randn(C * H, 0.5);
  const labels = Int32Array.from({ length: N }, () => Math.floor(rng.uniform() * C));
  const refLoss = (xv: Float64Array): number => {
    const h = ref.matmul(xv, [N, D], ref.permute(w1, [H, D], [1, 0]).data, [D, H]).data.map((v) => Math.tanh(v));
    const z = ref.matmul(h, [N, H], ref.permute(w2, [C, H], [1, 0]).data, [H, C]).data;
    return ref.crossEntropy(z, labels).loss;
  };
  const x = up(xd, [N, D]).requireGrad();
  const W1 = up(w1, [H, D]);
  const W2 = up(w2, [C, H]);
  rk.crossEntropy(rk.linear(rk.tanh(rk.linear(x, W1)), W2), rk.tensor(labels, [N], 'i32')).backward();
  assert.is(W1.grad, null, 'parameters that do not require grad get none');
  expectClose(await read64(x.grad!), numericGrad(refLoss, xd), 1e-4, `input gradient (seed ${SEED})`);
});

test('no live-byte growth over repeated forward + backward + update loops under tidy', async () => {
  const [N, D, H, C] = [16, 12, 32, 5];
  const params = [rk.randn([H, D], { std: 0.3 }), rk.zeros([H]), rk.randn([C, H], { std: 0.3 }), rk.zeros([C])].map((p) => p.requireGrad());
  const [W1, b1, W2, b2] = params;
  const x = rk.randn([N, D]);
  const y = rk.tensor(Int32Array.from({ length: N }, (_, i) => i % C), [N], 'i32');
  let at10 = { bytes: 0, buffers: 0 };
  let first = 0;
  let last = 0;
  for (let it = 1; it <= 200; it++) {
    const loss = rk.tidy(() => {
      const h = rk.relu(rk.linear(x, W1, b1));
      const hh = rk.slice(rk.concat([h, h], 1), 1, 0, H); // exercises concat / slice and their backward
      const out = rk.logSoftmax(rk.linear(hh, W2, b2), 1);
      const l = rk.crossEntropy(out, y);
      l.backward();
      for (const p of params) {
        rk.axpyInPlace(p, p.grad!, -0.05);
        p.grad!.dispose();
        p.grad = null;
      }
      return l;
    });
    if (it === 1) first = await loss.item();
    if (it === 200) last = await loss.item();
    loss.dispose();
    if (it % 50 === 0) await rk.sync();
    const s = rk.memoryStats();
    if (it === 10) at10 = { bytes: s.liveBytes, buffers: s.liveBuffers };
    if (it === 200) {
      assert.is(s.liveBytes, at10.bytes, 'live bytes at iteration 200 equal those at iteration 10');
      assert.is(s.liveBuffers, at10.buffers, 'live buffers at iteration 200 equal those at iteration 10');
    }
  }
  assert.ok(last < first, `the loop trains (loss ${first.toFixed(3)} -> ${last.toFixed(3)})`);
});

test('bad inputs give clear errors: shapes named, dtypes, disposed tensors', async () => {
  const a = rk.zeros([2, 3]);
  const err = (() => {
    try {
      rk.add(a, rk.zeros([4]));
    } catch (e) {
      return e as Error;
    }
    return null;
  })();
  assert.instance(err, rk.ShapeError);
  assert.match(err!.message, /add: shapes \[2, 3\] and \[4\] do not broadcast/);
  assert.throws(() => rk.matmul(a, rk.zeros([4, 2])), (e: Error) => e instanceof rk.ShapeError && /\[2, 3\]/.test(e.message) && /\[4, 2\]/.test(e.message));
  assert.throws(() => rk.mul(a, rk.zeros([2, 3], 'i32')), (e: Error) => e instanceof TypeError && /mul: second input must be f32, got \[2, 3\] i32/.test(e.message));
  assert.throws(() => rk.exp(rk.zeros([2], 'i32')), /exp: input must be f32, got \[2\] i32/);
  assert.throws(() => rk.sum(a, 2), /sum: axis 2 is out of range for rank 2/);
  const d = rk.ones([3]);
  d.dispose();
  assert.throws(() => rk.exp(d), /exp: input \[3\] f32 was used after it was disposed/);
  assert.throws(() => rk.add(a, d), /was used after it was disposed/);
  let threw = false;
  try {
    await d.toArray();
  } catch (e) {
    threw = /disposed/.test((e as Error).message);
  }
  assert.ok(threw, 'reading a disposed tensor throws');
});

test.run();
