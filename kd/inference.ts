// Running a model over a split: logits in eval mode without gradients, and its scores on the
// split's (clean) labels.
import * as rk from '../engine/index.ts';
import type { Dataset, Split } from './data/dataset.ts';
import { makeBatch } from './data/batch.ts';
import { scoreLogits, type Scores } from './metrics.ts';

export type Module = rk.nn.Module;

/** Logits of a model on split images (eval mode, no grad), [N, numClasses] row-major. */
export async function predictLogits(
  model: Module,
  ds: Pick<Dataset, 'channels' | 'height' | 'width' | 'mean' | 'std'>,
  split: Pick<Split, 'images' | 'n'>,
  opts: { batchSize?: number; idx?: ArrayLike<number>; onBatch?: (done: number, total: number) => void } = {},
): Promise<{ logits: Float32Array; C: number }> {
  const n = opts.idx ? opts.idx.length : split.n;
  const bs = opts.batchSize ?? 256;
  const wasTraining = model.training;
  model.eval();
  const parts: Float32Array[] = [];
  let C = 0;
  try {
    for (let s = 0; s < n; s += bs) {
      const m = Math.min(bs, n - s);
      const idx = opts.idx ? Array.from({ length: m }, (_, k) => opts.idx![s + k]) : Array.from({ length: m }, (_, k) => s + k);
      const xs = makeBatch(ds, split, idx);
      const out = rk.noGrad(() =>
        rk.tidy(() => {
          const x = rk.tensor(xs, [m, ds.channels, ds.height, ds.width]);
          return model.call(x);
        }),
      );
      C = out.shape[1];
      parts.push((await out.toArray()) as Float32Array);
      out.dispose();
      opts.onBatch?.(s + m, n);
    }
  } finally {
    model.train(wasTraining);
  }
  const logits = new Float32Array(n * C);
  let o = 0;
  for (const p of parts) {
    logits.set(p, o);
    o += p.length;
  }
  return { logits, C };
}

/** Validation/test scores of a model on a split with its (clean) labels. */
export async function evaluateModel(model: Module, ds: Dataset, split: Split, batchSize: number, onBatch?: (d: number, t: number) => void): Promise<{ scores: Scores; logits: Float32Array }> {
  const { logits, C } = await predictLogits(model, ds, split, { batchSize, onBatch });
  return { scores: scoreLogits(logits, split.labels, ds.task, C, ds.classes), logits };
}
