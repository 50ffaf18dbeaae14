// 1,000 training steps (forward + backward + clipping + optimizer step, in tidy) leave GPU
// memory exactly where it was after step 10.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuInit, rk } from './helpers.ts';

await gpuInit();
const { nn, optim } = rk;

test('1,000-step training loop: liveBytes after the last step equals liveBytes after step 10', async () => {
  rk.manualSeed(3);
  const N = 32;
  const rng = new rk.Rng(5);
  const x = rk.keep(rk.randn([N, 8], { rng }));
  const y = rk.keep(rk.tensor(Int32Array.from({ length: N }, () => rng.int(4)), [N], 'i32'));
  const model = new nn.Sequential(new nn.Linear(8, 32), new nn.ReLU(), new nn.Dropout(0.1), new nn.Linear(32, 16), new nn.ReLU6(), new nn.Linear(16, 4));
  const opt = new optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 1e-4 });
  const sched = optim.stepLR(0.05, 300, 0.5);
  const stats: { live: number; buffers: number }[] = [];
  let first = 0;
  let last = 0;
  for (let s = 1; s <= 1000; s++) {
    opt.lr = sched(s);
    const loss = rk.tidy(() => {
      const l = rk.crossEntropy(model.call(x), y);
      l.backward();
      optim.clipGradNormTensor(model.parameters(), 5); // the norm tensor is released by the tidy
      opt.step();
      opt.zeroGrad();
      return l;
    });
    if (s === 1) first = await loss.item();
    if (s === 1000) last = await loss.item();
    loss.dispose();
    if (s % 100 === 0) await rk.sync(); // keep the queue short
    if (s === 10 || s === 1000) {
      const m = rk.memoryStats();
      stats.push({ live: m.liveBytes, buffers: m.liveBuffers });
    }
  }
  console.log(`  loss ${first.toFixed(3)} -> ${last.toFixed(3)}; live after step 10: ${stats[0].live} B in ${stats[0].buffers} buffers, after step 1000: ${stats[1].live} B in ${stats[1].buffers}`);
  assert.is(stats[1].live, stats[0].live, 'liveBytes');
  assert.is(stats[1].buffers, stats[0].buffers, 'liveBuffers');
  assert.ok(last < first, 'it trained');
  // after dispose only the inputs remain
  opt.dispose();
  model.dispose();
  for (const t of [x, y]) t.dispose();
  assert.is(rk.memoryStats().liveBytes, 0, 'everything released');
});

test('without tidy: Module.call releases its intermediates and backward frees the graph', async () => {
  const x = rk.keep(rk.randn([16, 8], { rng: new rk.Rng(1) }));
  const y = rk.keep(rk.tensor(Int32Array.from({ length: 16 }, (_, i) => i % 3), [16], 'i32'));
  const model = new nn.Sequential(new nn.Linear(8, 24), new nn.ReLU(), new nn.Sequential(new nn.Linear(24, 24), new nn.Tanh()), new nn.Linear(24, 3));
  const opt = new optim.AdamW(model.parameters(), { lr: 1e-2 });
  let live = 0;
  for (let s = 1; s <= 200; s++) {
    const out = model.call(x);
    const loss = rk.crossEntropy(out, y);
    out.dispose(); // the graph keeps what backward needs
    loss.backward();
    loss.dispose();
    opt.step();
    opt.zeroGrad();
    if (s === 5) live = rk.memoryStats().liveBytes;
  }
  assert.is(rk.memoryStats().liveBytes, live);
  opt.dispose();
  model.dispose();
  x.dispose();
  y.dispose();
});

test.run();
