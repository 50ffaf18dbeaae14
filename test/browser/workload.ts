// The computation test/browser.test.ts runs twice, in Chromium (WebGPU in the page) and in Node
// (Dawn): a few kernels with their gradients and a few SGD steps of a small ResNet-18, all on
// seeded inputs. Only portable code is imported (the page bundle must not pull in Node).
import * as rk from '../../engine/index.ts';
import { createModel } from '../../models/index.ts';

/** Named results as plain arrays (they cross page.evaluate as JSON). */
export type Results = Record<string, number[]>;

async function read(t: rk.Tensor): Promise<number[]> {
  return Array.from(await t.toArray());
}

/** Runs the workload on the engine's open device (call rk.init() first). */
export async function runWorkload(): Promise<Results> {
  const out: Results = {};
  const rng = new rk.Rng(20261206);
  const labelsFor = (n: number, c: number) => rk.tensor(Int32Array.from({ length: n }, () => rng.int(c)), [n], 'i32');

  // conv2d 3x3, stride 1, pad 1, with bias; y and the three gradients of sum(y * g)
  {
    const x = rk.randn([2, 8, 10, 10], { rng }).requireGrad();
    const w = rk.randn([16, 8, 3, 3], { rng, std: 0.2 }).requireGrad();
    const b = rk.randn([16], { rng }).requireGrad();
    const g = rk.randn([2, 16, 10, 10], { rng });
    const y = rk.conv2d(x, w, b, { stride: 1, padding: 1 });
    rk.sum(rk.mul(y, g)).backward();
    out['conv2d.y'] = await read(y);
    out['conv2d.dx'] = await read(x.grad!);
    out['conv2d.dw'] = await read(w.grad!);
    out['conv2d.db'] = await read(b.grad!);
  }
  // conv2d 3x3 stride 2 (the ResNet downsampling shape; a different backward-data path)
  {
    const x = rk.randn([2, 8, 9, 9], { rng }).requireGrad();
    const w = rk.randn([8, 8, 3, 3], { rng, std: 0.2 }).requireGrad();
    const g = rk.randn([2, 8, 5, 5], { rng });
    const y = rk.conv2d(x, w, null, { stride: 2, padding: 1 });
    rk.sum(rk.mul(y, g)).backward();
    out['conv2d_s2.y'] = await read(y);
    out['conv2d_s2.dx'] = await read(x.grad!);
    out['conv2d_s2.dw'] = await read(w.grad!);
  }
  // batch norm in training mode: output, updated running statistics, gradients
  {
    const x = rk.randn([4, 6, 5, 5], { rng, mean: 0.5, std: 2 }).requireGrad();
    const gamma = rk.randn([6], { rng, mean: 1, std: 0.1 }).requireGrad();
    const beta = rk.randn([6], { rng, std: 0.1 }).requireGrad();
    const rm = rk.zeros([6]);
    const rv = rk.ones([6]);
    const g = rk.randn([4, 6, 5, 5], { rng });
    const y = rk.batchNorm2d(x, gamma, beta, rm, rv, { training: true, momentum: 0.1 });
    rk.sum(rk.mul(y, g)).backward();
    out['batchnorm.y'] = await read(y);
    out['batchnorm.running_mean'] = await read(rm);
    out['batchnorm.running_var'] = await read(rv);
    out['batchnorm.dx'] = await read(x.grad!);
    out['batchnorm.dgamma'] = await read(gamma.grad!);
    out['batchnorm.dbeta'] = await read(beta.grad!);
  }
  // knowledge-distillation loss and its gradient
  {
    const zs = rk.randn([12, 7], { rng, std: 2 }).requireGrad();
    const zt = rk.randn([12, 7], { rng, std: 2 });
    const loss = rk.kdLoss(zs, zt, labelsFor(12, 7), { T: 4, alpha: 0.7 });
    loss.backward();
    out['kdLoss.loss'] = await read(loss);
    out['kdLoss.dzs'] = await read(zs.grad!);
  }
  // matmul, odd sizes
  {
    const a = rk.randn([33, 47], { rng });
    const b = rk.randn([47, 29], { rng });
    out['matmul'] = await read(rk.matmul(a, b));
  }
  // batched matmul big enough for SwiftShader's own tile (128x64 outputs per workgroup, A loads
  // shared across 4-lane subgroups; Node runs lavapipe's), with partial tiles on both edges
  {
    const a = rk.randn([2, 150, 44], { rng });
    const b = rk.randn([2, 44, 70], { rng });
    out['matmul_big'] = await read(rk.matmul(a, b));
    out['matmul_big_tA'] = await read(rk.matmul(rk.randn([2, 44, 152], { rng }), b, { transA: true }));
  }
  // conv 3x3 64->64: the Winograd path (transforms + batched GEMM, 144 rows: the big tile) and its gradients
  {
    const x = rk.randn([4, 64, 24, 24], { rng }).requireGrad();
    const w = rk.randn([64, 64, 3, 3], { rng, std: 0.05 }).requireGrad();
    const g = rk.randn([4, 64, 24, 24], { rng });
    const y = rk.conv2d(x, w, null, { stride: 1, padding: 1 });
    rk.sum(rk.mul(y, g)).backward();
    out['conv2d_wino.y'] = await read(y);
    out['conv2d_wino.dx'] = await read(x.grad!);
    out['conv2d_wino.dw'] = await read(w.grad!);
  }
  // safetensors on bytes (no file system, no Buffer): save a layer's weights, load them into another
  {
    const a = new rk.nn.Linear(5, 3, { rng });
    const bytes = await rk.io.encodeModelWeights(a, { note: 'browser' });
    const b = new rk.nn.Linear(5, 3, { rng });
    const file = rk.io.parseSafetensors(bytes, 'linear.safetensors');
    rk.io.copyIntoModel(b, file, 'linear.safetensors');
    out['safetensors.bytes'] = Array.from(bytes);
    out['safetensors.loaded_weight'] = await read(b.weight);
  }
  // ResNet-18 (width 1/8, small-input stem), 3 SGD steps with momentum on 16x16 images
  {
    const model = createModel('resnet18', { numClasses: 10, inChannels: 3, smallInput: true, width: 0.125, seed: 3 });
    model.train();
    const opt = new rk.optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
    const x = rk.randn([4, 3, 16, 16], { rng });
    const y = labelsFor(4, 10);
    const losses: number[] = [];
    for (let step = 0; step < 3; step++) {
      const loss = rk.tidy(() => {
        const l = rk.crossEntropy(model.call(x), y);
        l.backward();
        opt.step();
        opt.zeroGrad();
        return l;
      });
      losses.push(await loss.item());
      loss.dispose();
    }
    out['resnet18.losses'] = losses;
    model.eval();
    out['resnet18.eval_logits'] = await read(rk.noGrad(() => model.call(x)));
  }
  return out;
}
