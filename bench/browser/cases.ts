// The cases `npm run bench -- --browser` runs both in a page and in Node: conv 3x3 (forward and
// both gradients), a matmul, and a whole ResNet-18 training step (the page's training loop in
// miniature). Environment-free: bundled for the page as it is.
import * as rk from '../../engine/index.ts';
import { createModel } from '../../models/index.ts';
import { convCases } from '../cases_conv.ts';
import { basicCases } from '../cases_basic.ts';
import { pass, fail } from '../check.ts';
import type { Case } from '../harness.ts';

/** One SGD step of a resnet18 (small-input stem) on a batch of 28 px grey images, as kd/fit.ts runs it. */
function trainStepCase(width: number, B: number, size: number): Case {
  return {
    name: `train step resnet18 w=${width} b${B} ${size}px`,
    kind: 'train',
    work: B,
    quick: true,
    needs: () => null,
    async setup() {
      const model = createModel('resnet18', { numClasses: 4, inChannels: 1, smallInput: true, width, seed: 1 });
      const opt = new rk.optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
      const xs = new Float32Array(B * size * size).map((_, i) => Math.sin(i * 0.37));
      const ys = Int32Array.from({ length: B }, (_, i) => i % 4);
      const x = rk.tensor(xs, [B, 1, size, size]);
      const y = rk.tensor(ys, [B], 'i32');
      model.train();
      const step = () =>
        rk.tidy(() => {
          const loss = rk.crossEntropy(model.call(x), y);
          loss.backward();
          opt.step();
          opt.zeroGrad();
          return loss;
        });
      return {
        roskd: { run: () => void step().dispose() },
        async check() {
          const l = step();
          const v = await l.item();
          l.dispose();
          return Number.isFinite(v) && v > 0 ? pass(`loss ${v.toFixed(4)} finite`) : fail(`loss ${v}`);
        },
        dispose() {
          x.dispose();
          y.dispose();
          opt.dispose();
          model.dispose();
        },
      };
    },
  };
}

const WANTED = ['conv3x3 64->64 b16 28px forward', 'conv3x3 64->64 b16 28px backward-data', 'conv3x3 64->64 b16 28px backward-weight', 'matmul 512x512x512'];

export function browserBenchCases(): Case[] {
  const byName = new Map([...convCases(), ...basicCases()].map((c) => [c.name, c]));
  return [...WANTED.map((n) => byName.get(n)!), trainStepCase(0.0625, 32, 28)];
}
