// Training throughput of a registry model: images/s for forward + backward + SGD step, after warm-up.
//   npx tsx bench/model-throughput.ts [model] [width] [batch] [size] [steps] [smallInput=1]
//   npx tsx bench/model-throughput.ts resnet18 0.25 64 28 3
import * as rk from '../engine/index.ts';
import { createModel } from '../models/index.ts';

const [name = 'resnet18', width = '1', batchArg = '64', sizeArg = '28', stepsArg = '3', smallArg = '1'] = process.argv.slice(2);
const N = Number(batchArg);
const S = Number(sizeArg);
const steps = Number(stepsArg);
const numClasses = 10;

await rk.init();
const model = createModel(name, { width: Number(width), smallInput: smallArg !== '0', inChannels: 3, numClasses, seed: 0 });
model.train();
const opt = new rk.optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
const rng = new rk.Rng(1);
const x = rk.randn([N, 3, S, S], { rng });
const labels = rk.tensor(Int32Array.from({ length: N }, () => rng.int(numClasses)), [N], 'i32');

async function step(): Promise<number> {
  const loss = rk.tidy(() => {
    const l = rk.crossEntropy(model.call(x), labels);
    l.backward();
    opt.step();
    opt.zeroGrad();
    return l;
  });
  const v = await loss.item(); // waits for the GPU
  loss.dispose();
  return v;
}

const t0 = performance.now();
await step(); // warm-up: pipeline compilation, pool growth
console.log(`${name} width ${width} batch ${N} ${S}x${S}: warm-up step ${((performance.now() - t0) / 1000).toFixed(1)} s, ${(model.numParameters() / 1e6).toFixed(2)} M params`);
const times: number[] = [];
for (let i = 0; i < steps; i++) {
  const t = performance.now();
  const l = await step();
  times.push((performance.now() - t) / 1000);
  console.log(`  step ${i + 1}: ${times[i].toFixed(2)} s, loss ${l.toFixed(4)}, ${(N / times[i]).toFixed(2)} img/s`);
}
const total = times.reduce((a, b) => a + b, 0);
console.log(`${name} width ${width}: ${(N * steps / total).toFixed(2)} img/s (mean of ${steps} steps), peak live ${(rk.memoryStats().peakBytes / 2 ** 20).toFixed(0)} MiB`);
