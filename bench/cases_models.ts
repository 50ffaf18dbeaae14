// End-to-end training step (forward, KD loss, backward, SGD-momentum step) of the project's
// models at 28 px, batch 64, 1 input channel, 2 classes (a PneumoniaMNIST-sized student):
// images/s, peak live GPU bytes, and the share of GPU time spent outside conv / batch-norm /
// matmul kernels (from a profiled step). The PyTorch column (bench/torch.ts) runs the same step
// on torchvision's models built by test/fixtures/torch/make_fixtures.py. Models come from
// models/index.ts (`createModel(name, { numClasses, inChannels, smallInput, width })`); while that
// file does not exist these rows are skipped.
import { existsSync } from 'node:fs';
import * as rk from '../engine/index.ts';
import * as ops from './ops.ts';
import { fail, pass, randomData, seededRandom } from './check.ts';
import type { Case } from './harness.ts';

const MODELS_INDEX = new URL('../models/index.ts', import.meta.url);
const BATCH = 64;
const PX = 28;
const CHANNELS = 1;
const CLASSES = 2;
/** the step's loss and optimizer, shared with the PyTorch column */
const KD = { T: 4, alpha: 0.7 };
const SGD = { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 };

/** Kernels that count as "conv / BN / matmul" work. */
export const CORE_KERNEL = /^(conv|dwconv|depthwise|batchnorm|batch_norm|bn|matmul|linear|gemm)/i;

interface Model {
  call(x: rk.Tensor): rk.Tensor;
  parameters(): rk.Tensor[];
  train(on?: boolean): unknown;
  dispose(): void;
}

async function loadModel(name: string, width: number): Promise<Model> {
  const mod = (await import(MODELS_INDEX.href)) as { createModel?: (n: string, o: object) => Model };
  if (typeof mod.createModel !== 'function') throw new Error('models/index.ts does not export createModel');
  return mod.createModel(name, { numClasses: CLASSES, inChannels: CHANNELS, smallInput: true, width });
}

/** heavy: a step takes seconds (width-1 ResNet-50 / DenseNet-121 / MobileNet-V2): one warm-up-free pair of runs */
function modelCase(name: string, width: number, quick: boolean, heavy = false): Case {
  const widthLabel = width === 1 ? '1' : `1/${Math.round(1 / width)}`;
  return {
    name: `train step ${name} width ${widthLabel} b${BATCH} ${PX}px`,
    kind: 'train',
    work: BATCH,
    quick,
    maxRepeat: heavy ? 2 : width === 1 ? 2 : 3,
    // the check step already compiled every pipeline of the forward and backward
    warmup: heavy ? 0 : 1,
    torch: { op: 'train', model: name, width, batch: BATCH, px: PX, inChannels: CHANNELS, classes: CLASSES, ...KD, ...SGD, threads: 2 },
    // the check step compiles every pipeline, so --quick needs no separate warm-up
    quickBudget: { repeat: 1, warmup: 0 },
    needs: () => {
      if (!existsSync(MODELS_INDEX)) return 'models/index.ts does not exist yet';
      return ops.missingGrad('conv2d') ?? ops.missingGrad('batchNorm2d') ?? ops.missingGrad('kdLoss') ?? (ops.haveSGD() ? null : 'rk.optim.SGD not available yet');
    },
    async setup() {
      const model = await loadModel(name, width);
      model.train(true);
      const params = model.parameters();
      const opt = ops.sgd(params, SGD);
      const rng = seededRandom(64);
      const x = rk.tensor(randomData(BATCH * CHANNELS * PX * PX, rng).f32, [BATCH, CHANNELS, PX, PX]);
      const zt = rk.tensor(randomData(BATCH * CLASSES, rng, 3).f32, [BATCH, CLASSES]);
      const labels = rk.tensor(Int32Array.from({ length: BATCH }, () => Math.floor(rng.uniform() * CLASSES)), [BATCH], 'i32');
      const zeroGrad = (): void => opt.zeroGrad();
      const step = async (): Promise<number | null> => {
        const loss = rk.tidy(() => {
          const l = ops.kdLoss(model.call(x), zt, labels, KD.T, KD.alpha);
          l.backward();
          return l;
        });
        await opt.step();
        zeroGrad();
        loss.dispose();
        return null;
      };
      let peak = 0;
      return {
        wallOnly: true,
        roskd: {
          prepare: () => rk.resetPeak(),
          run: async () => void (await step()),
          after: () => void (peak = Math.max(peak, rk.memoryStats().peakBytes)),
        },
        async check() {
          // No CPU reference for whole networks (the per-op rows and the model tests cover the
          // maths): one forward + backward must give logits [B, classes], a finite loss and a
          // finite gradient of the right shape for every parameter.
          const logits = model.call(x);
          const loss = ops.kdLoss(logits, zt, labels, KD.T, KD.alpha);
          loss.backward();
          const shapeOk = logits.shape.length === 2 && logits.shape[0] === BATCH && logits.shape[1] === CLASSES;
          const la = await logits.toArray();
          const lv = await loss.item();
          const described = logits.describe();
          logits.dispose();
          loss.dispose();
          const missingGrad = params.filter((p) => !p.grad || p.grad.shape.join() !== p.shape.join()).length;
          let bad = 0;
          for (const p of params) if (p.grad && !(await p.grad.toArray()).every(Number.isFinite)) bad++;
          zeroGrad();
          if (!shapeOk) return fail(`logits ${described}, expected [${BATCH}, ${CLASSES}]`);
          if (!la.every(Number.isFinite)) return fail('non-finite logits');
          if (!Number.isFinite(lv)) return fail(`loss ${lv}`);
          if (missingGrad || bad) return fail(`${missingGrad} of ${params.length} params without a gradient, ${bad} with non-finite values`);
          const nParams = params.reduce((a, p) => a + p.size, 0);
          return pass(`sanity: finite logits, loss ${lv.toFixed(3)}, ${params.length} finite grads (${(nParams / 1e6).toFixed(2)}M params)`);
        },
        async extra(kernels) {
          // The share of GPU time outside conv / BN / matmul kernels, from a profiled step (run after the timed, unprofiled ones).
          let total = 0;
          let core = 0;
          const others: [string, number][] = [];
          for (const [k, e] of kernels ?? []) {
            total += e.ms;
            if (CORE_KERNEL.test(k)) core += e.ms;
            else others.push([k, e.ms]);
          }
          others.sort((a, b) => b[1] - a[1]);
          return {
            peakBytes: peak,
            params: params.reduce((a, p) => a + p.size, 0),
            stepGpuMs: total,
            outsideFraction: total > 0 ? (total - core) / total : NaN,
            topOtherKernels: others
              .slice(0, 5)
              .map(([k, ms]) => `${k} ${ms.toFixed(1)} ms`)
              .join(', '),
          };
        },
        dispose() {
          zeroGrad();
          for (const t of [x, zt, labels]) t.dispose();
          opt.dispose();
          model.dispose();
        },
      };
    },
  };
}

export function modelCases(): Case[] {
  return [
    modelCase('resnet18', 0.25, true),
    modelCase('resnet18', 1, false),
    modelCase('resnet50', 0.25, false),
    modelCase('resnet50', 1, false, true),
    modelCase('mobilenet_v2', 0.25, false),
    modelCase('mobilenet_v2', 1, false, true),
    modelCase('densenet121', 0.25, false),
    modelCase('densenet121', 1, false, true),
  ];
}
