// The FMA ceiling kernels of bench/ceilings.ts do the work they are credited with: each
// invocation's result is checked against a float64 replay of its CHAINS recurrences
// a <- a*b + c, iters*unroll steps each (a miscounted unroll or a dropped chain shows as a
// wrong sum, since b < 1 makes every step change the value).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuInit, read64, expectClose, rk } from './helpers.ts';
import { seededRandom } from './reference/gradcheck.ts';
import { dispatch, groupsFor } from '../engine/program.ts';
import { unrolledFmaDefines } from '../bench/ceilings.ts';

const SEED = Number(process.env.ROSKD_SEED ?? Date.now() % 1_000_000_007);
const rng = seededRandom(SEED);
console.log(`bench-ceilings: seed ${SEED} (ROSKD_SEED=${SEED} replays this run)`);

test.before(gpuInit);

const f32 = (v: number) => Math.fround(v);

for (const [chains, width, unroll, wg, op] of [
  [8, 4, 4, 64, 'fma'],
  [4, 4, 8, 64, 'muladd'],
  [16, 1, 4, 64, 'fma'],
  [8, 1, 8, 256, 'muladd'],
] as const) {
  test(`bench_fma_unrolled ${width === 4 ? 'vec4' : 'f32'} ${chains} chains x${unroll} wg${wg} ${op}`, async () => {
    const threads = 3 * wg;
    const iters = 2 + Math.floor(rng.uniform() * 6);
    const b = f32(0.9 + 0.09 * rng.uniform());
    const c = f32(0.01 + 0.1 * rng.uniform());
    const out = new rk.Tensor([threads], 'f32');
    dispatch({ name: 'bench_fma_unrolled', shader: 'bench_fma_unrolled', defines: unrolledFmaDefines(chains, width, unroll, wg, op) }, { iters, b, c }, [out.binding], groupsFor(threads, wg));
    const got = await read64(out);
    out.dispose();
    const want = new Float64Array(threads);
    for (let i = 0; i < threads; i++) {
      const x = f32(i * 1e-3);
      let s = 0;
      for (let k = 0; k < chains; k++) {
        let a = x + k;
        for (let n = 0; n < iters * unroll; n++) a = a * b + c;
        s += a;
      }
      want[i] = width * s;
    }
    expectClose(got, want, 1e-5, `${chains}x${unroll} ${op}`);
  });
}

test('unrolledFmaDefines writes one step per chain per unroll', () => {
  const d = unrolledFmaDefines(3, 1, 2, 64);
  assert.is((d.BODY as string).match(/fma\(/g)!.length, 6);
  assert.is(d.SUM, 'a0 + a1 + a2');
});

test.run();
