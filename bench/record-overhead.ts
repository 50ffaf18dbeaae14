// Dispatch overhead: the JS side of one small ResNet-18 training step (width 1/16, batch 8, 16 px:
// forward, backward, AdamW, ~435 launches recorded and flushed every 64), without waiting for the
// GPU. Reports wall time (min, median of 100 steps) and the main thread's own CPU time per step
// (Linux /proc; unaffected by other processes, unlike wall time on a shared machine).
// Usage: npx tsx bench/record-overhead.ts [repo root, to compare another checkout]
const root = process.argv[2] ?? new URL('..', import.meta.url).pathname;
const rk = await import(`${root}/engine/index.ts`);
const { createModel } = await import(`${root}/models/index.ts`);
await rk.init();
const model = createModel('resnet18', { numClasses: 10, inChannels: 3, smallInput: true, width: 1 / 16, seed: 1 });
model.train(true);
const opt = new rk.optim.AdamW(model.parameters(), { lr: 1e-3, weightDecay: 5e-4 });
const B = 8, PX = 16;
const x = rk.randn([B, 3, PX, PX]);
const y = rk.tensor(Int32Array.from({ length: B }, (_, i) => i % 10), [B], 'i32');
import { readFileSync } from 'node:fs';
const mainTicks = () => { const f = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' '); return Number(f[11]) + Number(f[12]); };
let ticks = 0;
const rec: number[] = [];
for (let i = 0; i < 105; i++) {
  await rk.sync();
  const t = performance.now();
  const k0 = mainTicks();
  const loss = rk.tidy(() => { const l = rk.crossEntropy(model.call(x), y); l.backward(); opt.step(); opt.zeroGrad(); return l; });
  const ms = performance.now() - t;
  if (i >= 5) ticks += mainTicks() - k0;
  await loss.item(); loss.dispose();
  if (i >= 5) rec.push(ms);
}
rec.sort((a, b) => a - b);
const { recorder } = await import(`${root}/engine/program.ts`);
console.log(JSON.stringify({ root, recordMinMs: +rec[0].toFixed(2), recordMedianMs: +rec[50].toFixed(2), mainThreadCpuMsPerStep: +((ticks * 10) / 100).toFixed(2), dispatchesPerStep: Math.round(recorder.dispatchCount / 105) }));
