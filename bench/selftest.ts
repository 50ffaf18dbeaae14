// Proves the harness rejects a wrong fast kernel: with matmul replaced by one that is off by
// 1 %, or one that leaves NaN in its last column, `main` must mark the case FAIL and return
// non-zero; with the real op it must pass. Run: npx tsx bench/selftest.ts
import * as rk from '../engine/index.ts';
import { overrides } from './ops.ts';
import { main } from './run.ts';

const args = ['--filter', 'matmul 512', '--no-tfjs', '--no-torch', '--repeat', '1', '--warmup', '0'];
const results: [string, number, number][] = [];

results.push(['real matmul', await main(args, { latest: false }), 0]);

overrides.matmul = (a, b) => rk.tidy(() => rk.mulScalar(rk.matmul(a, b), 1.01));
results.push(['matmul off by 1 %', await main(args, { latest: false }), 1]);

overrides.matmul = (a, b) =>
  rk.tidy(() => {
    const n = b.shape[1];
    const mask = new Float32Array(n).fill(1);
    mask[n - 1] = NaN;
    return rk.mul(rk.matmul(a, b), rk.tensor(mask, [1, n]));
  });
results.push(['matmul with a NaN column', await main(args, { latest: false }), 1]);

let bad = 0;
for (const [what, got, want] of results) {
  const ok = got === want;
  if (!ok) bad++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}: exit code ${got}, expected ${want}`);
}
console.log(bad ? `${bad} selftest(s) failed` : 'selftest passed');
process.exitCode = bad ? 1 : 0;
