// Teacher subsets and mini-batch iteration. Batches are built on the fly from
// the uint8 split: gather, (augment,) normalise to float32 NCHW.
import type { Split } from './dataset.ts';
import { labelStride, sampleSize } from './dataset.ts';
import { type AugmentOptions, augmentInto, defaultAugment, drawAugment, normaliseInto } from './augment.ts';
import { Rng, permutation } from './rng.ts';

/**
 * K random subsets of 0..n-1, each of size round(fraction*n), drawn
 * independently (without replacement within a subset), so subsets overlap:
 * with fraction f two teachers share about f^2*n samples. Each is sorted.
 */
export function subsets(n: number, K: number, fraction: number, seed: number): Int32Array[] {
  if (!(fraction > 0 && fraction <= 1)) throw new Error(`subsets: fraction must be in (0, 1], got ${fraction}`);
  const m = Math.round(fraction * n);
  const out: Int32Array[] = [];
  for (let k = 0; k < K; k++) {
    const p = permutation(n, new Rng('subset', seed, k));
    out.push(p.slice(0, m).sort());
  }
  return out;
}

export interface Batch {
  /** B*C*H*W, normalised (v/255 - mean)/std. */
  x: Float32Array;
  /** Int32Array[B] class ids, or Float32Array[B*L] 0/1 targets for multilabel. */
  y: Int32Array | Float32Array;
  /** Positions of the batch samples in the split. */
  indices: Int32Array;
  /** Batch size B (the last batch may be smaller). */
  size: number;
}

export interface BatchOptions {
  /** Shuffle order each epoch (default true). */
  shuffle?: boolean;
  seed?: number;
  epoch?: number;
  /** Augmentation; true = defaultAugment(width). Default none. */
  augment?: AugmentOptions | boolean;
  /** Per-channel normalisation (in [0,1] units); its length gives the channel count. */
  mean: number[];
  std: number[];
  /** Label override with the split's layout (e.g. noisy labels). */
  labels?: Int32Array | Uint8Array;
  /** Restrict to these split positions (e.g. a teacher's subset). Default all. */
  indices?: ArrayLike<number>;
  /** Image height/width; default square from the sample size. */
  height?: number;
  width?: number;
  /** Drop a final partial batch (default false: it is included). */
  dropLast?: boolean;
}

export function numBatches(n: number, batchSize: number, dropLast = false): number {
  return dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
}

/** The sample order for an epoch: shuffled by (seed, epoch), or as given. */
export function epochOrder(indices: ArrayLike<number>, shuffle: boolean, seed: number, epoch: number): Int32Array {
  const order = Int32Array.from(indices);
  if (shuffle) new Rng('order', seed, epoch).shuffle(order);
  return order;
}

/** Iterate mini-batches of a split (see BatchOptions). */
export function* batches(split: Split, batchSize: number, opts: BatchOptions): Generator<Batch> {
  if (!(batchSize >= 1)) throw new Error(`batches: batchSize must be >= 1, got ${batchSize}`);
  const C = opts.mean.length;
  if (opts.std.length !== C) throw new Error(`batches: mean has ${C} entries, std ${opts.std.length}`);
  const px = sampleSize(split);
  const hw = px / C;
  if (split.n > 0 && !Number.isInteger(hw)) throw new Error(`batches: sample size ${px} is not divisible by ${C} channels`);
  const w = opts.width ?? opts.height ?? Math.round(Math.sqrt(hw));
  const h = opts.height ?? hw / w;
  if (split.n > 0 && h * w !== hw) throw new Error(`batches: cannot infer HxW from ${hw} pixels per channel; pass height/width`);
  const labels = opts.labels ?? split.labels;
  if (labels.length !== split.labels.length || labels.constructor !== split.labels.constructor)
    throw new Error(`batches: labels override must match the split's labels (${split.labels.constructor.name}[${split.labels.length}])`);
  const multilabel = labels instanceof Uint8Array;
  const L = labelStride(split);
  const seed = opts.seed ?? 0;
  const epoch = opts.epoch ?? 0;
  const aug = opts.augment === true ? defaultAugment(w) : opts.augment || undefined;
  const all = opts.indices ?? Int32Array.from({ length: split.n }, (_, i) => i);
  const order = epochOrder(all, opts.shuffle ?? true, seed, epoch);
  const nb = numBatches(order.length, batchSize, opts.dropLast);
  for (let b = 0; b < nb; b++) {
    const idx = order.subarray(b * batchSize, Math.min(order.length, (b + 1) * batchSize));
    const B = idx.length;
    const x = new Float32Array(B * px);
    const y = multilabel ? new Float32Array(B * L) : new Int32Array(B);
    for (let k = 0; k < B; k++) {
      const i = idx[k];
      if (!(i >= 0 && i < split.n)) throw new RangeError(`batches: index ${i} out of range [0, ${split.n})`);
      const src = split.images.subarray(i * px, (i + 1) * px);
      if (aug) {
        // Per-sample stream: the same (seed, epoch, sample) always gets the same augmentation.
        const d = drawAugment(aug, new Rng('augment', seed, epoch, i));
        augmentInto(src, C, h, w, d, opts.mean, opts.std, x, k * px);
      } else normaliseInto(src, C, hw, opts.mean, opts.std, x, k * px);
      if (multilabel) for (let c = 0; c < L; c++) y[k * L + c] = labels[i * L + c];
      else y[k] = labels[i];
    }
    yield { x, y, indices: idx.slice(), size: B };
  }
}
