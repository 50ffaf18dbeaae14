// Core dataset types shared by every loader, batch assembly and the trainer.
// Images are kept as uint8 NCHW (4x smaller than float32; normalisation happens
// per batch when batches are assembled).

export type Task = 'binary' | 'multiclass' | 'multilabel';

export interface Split {
  /** N*C*H*W, values 0..255, NCHW order. */
  images: Uint8Array;
  /** Int32Array[N] for binary/multiclass; Uint8Array[N*numClasses] (0/1) for multilabel. */
  labels: Int32Array | Uint8Array;
  n: number;
  /** Patient / lesion id per sample (used for leakage-free splits). */
  groups?: string[];
  /** Source identifier per sample (file name, row id...). */
  ids?: string[];
}

export interface Dataset {
  name: string;
  task: Task;
  classes: string[];
  channels: number;
  height: number;
  width: number;
  /** Per-channel mean / std in [0,1] pixel units, computed on train. */
  mean: number[];
  std: number[];
  train: Split;
  val: Split;
  test: Split;
}

export type SplitName = 'train' | 'val' | 'test';
export const SPLIT_NAMES: readonly SplitName[] = ['train', 'val', 'test'];

export function numClasses(ds: Pick<Dataset, 'classes'>): number {
  return ds.classes.length;
}

/** Multilabel splits store a Uint8Array; single-label ones an Int32Array. */
export function isMultilabel(split: Pick<Split, 'labels'>): split is Split & { labels: Uint8Array } {
  return split.labels instanceof Uint8Array;
}

/** Label entries per sample: 1 for single-label, numClasses for multilabel. */
export function labelStride(split: Pick<Split, 'labels' | 'n'>): number {
  if (split.n === 0) return 1;
  return split.labels.length / split.n;
}

/** Pixels per sample (C*H*W). */
export function sampleSize(split: Pick<Split, 'images' | 'n'>): number {
  if (split.n === 0) return 0;
  return split.images.length / split.n;
}

/** Label of sample i: a class index, or (multilabel) a 0/1 view of length numClasses. */
export function labelOf(split: Split & { labels: Int32Array }, i: number): number;
export function labelOf(split: Split & { labels: Uint8Array }, i: number): Uint8Array;
export function labelOf(split: Split, i: number): number | Uint8Array;
export function labelOf(split: Split, i: number): number | Uint8Array {
  if (i < 0 || i >= split.n) throw new RangeError(`labelOf: index ${i} out of range [0, ${split.n})`);
  if (split.labels instanceof Uint8Array) {
    const L = labelStride(split);
    return split.labels.subarray(i * L, (i + 1) * L);
  }
  return split.labels[i];
}

/** Image of sample i as a CHW view (no copy). */
export function imageOf(split: Split, i: number): Uint8Array {
  const s = sampleSize(split);
  return split.images.subarray(i * s, (i + 1) * s);
}

/** A new split holding copies of the given samples, in the given order. */
export function subsetSplit(split: Split, indices: ArrayLike<number>): Split {
  const m = indices.length;
  const s = sampleSize(split);
  const L = labelStride(split);
  const images = new Uint8Array(m * s);
  const labels = split.labels instanceof Uint8Array ? new Uint8Array(m * L) : new Int32Array(m);
  for (let k = 0; k < m; k++) {
    const i = indices[k];
    if (!(i >= 0 && i < split.n)) throw new RangeError(`subsetSplit: index ${i} out of range [0, ${split.n})`);
    images.set(split.images.subarray(i * s, (i + 1) * s), k * s);
    if (L === 1 && !(split.labels instanceof Uint8Array)) labels[k] = split.labels[i];
    else labels.set(split.labels.subarray(i * L, (i + 1) * L), k * L);
  }
  const out: Split = { images, labels, n: m };
  if (split.groups) out.groups = Array.from({ length: m }, (_, k) => split.groups![indices[k]]);
  if (split.ids) out.ids = Array.from({ length: m }, (_, k) => split.ids![indices[k]]);
  return out;
}

/** Samples per class (single-label) or positives per label (multilabel). */
export function classCounts(split: Split, nClasses: number): number[] {
  const counts = new Array<number>(nClasses).fill(0);
  if (split.labels instanceof Uint8Array) {
    const L = labelStride(split);
    for (let i = 0; i < split.n; i++) for (let c = 0; c < L; c++) counts[c] += split.labels[i * L + c] ? 1 : 0;
  } else {
    for (let i = 0; i < split.n; i++) {
      const y = split.labels[i];
      if (y >= 0 && y < nClasses) counts[y]++;
    }
  }
  return counts;
}

/** Per-channel mean and std in [0,1] units over all pixels of NCHW uint8 images. */
export function computeMeanStd(images: Uint8Array, n: number, channels: number): { mean: number[]; std: number[] } {
  const mean: number[] = [];
  const std: number[] = [];
  if (n === 0) return { mean: new Array(channels).fill(0.5), std: new Array(channels).fill(0.25) };
  const hw = images.length / n / channels;
  for (let c = 0; c < channels; c++) {
    // Histogram instead of float sums: exact and fast for uint8.
    const hist = new Float64Array(256);
    for (let i = 0; i < n; i++) {
      const base = (i * channels + c) * hw;
      for (let p = 0; p < hw; p++) hist[images[base + p]]++;
    }
    let s = 0;
    let s2 = 0;
    const cnt = n * hw;
    for (let v = 0; v < 256; v++) {
      s += hist[v] * v;
      s2 += hist[v] * v * v;
    }
    const m = s / cnt;
    const variance = Math.max(0, s2 / cnt - m * m);
    mean.push(m / 255);
    // Guard against constant images (std 0 would blow up normalisation).
    std.push(Math.max(Math.sqrt(variance) / 255, 1e-3));
  }
  return { mean, std };
}

/** Throws with a descriptive message if sizes are inconsistent. */
export function validateDataset(ds: Dataset): void {
  const px = ds.channels * ds.height * ds.width;
  const C = ds.classes.length;
  if (ds.mean.length !== ds.channels || ds.std.length !== ds.channels)
    throw new Error(`${ds.name}: mean/std must have ${ds.channels} entries`);
  for (const name of SPLIT_NAMES) {
    const sp = ds[name];
    if (sp.images.length !== sp.n * px)
      throw new Error(`${ds.name}/${name}: images has ${sp.images.length} values, expected n*C*H*W = ${sp.n * px}`);
    if (ds.task === 'multilabel') {
      if (!(sp.labels instanceof Uint8Array) || sp.labels.length !== sp.n * C)
        throw new Error(`${ds.name}/${name}: multilabel labels must be Uint8Array of n*numClasses = ${sp.n * C}`);
    } else {
      if (!(sp.labels instanceof Int32Array) || sp.labels.length !== sp.n)
        throw new Error(`${ds.name}/${name}: labels must be Int32Array of length n = ${sp.n}`);
      for (let i = 0; i < sp.n; i++)
        if (sp.labels[i] < 0 || sp.labels[i] >= C)
          throw new Error(`${ds.name}/${name}: label ${sp.labels[i]} at ${i} outside [0, ${C})`);
    }
    if (sp.groups && sp.groups.length !== sp.n) throw new Error(`${ds.name}/${name}: groups length ${sp.groups.length} != n ${sp.n}`);
    if (sp.ids && sp.ids.length !== sp.n) throw new Error(`${ds.name}/${name}: ids length ${sp.ids.length} != n ${sp.n}`);
  }
}

/** One-paragraph human summary, handy for training logs. */
export function describeDataset(ds: Dataset): string {
  const C = ds.classes.length;
  const lines = [
    `${ds.name}: ${ds.task}, ${C} classes, ${ds.channels}x${ds.height}x${ds.width}, ` +
      `mean [${ds.mean.map((v) => v.toFixed(3)).join(', ')}] std [${ds.std.map((v) => v.toFixed(3)).join(', ')}]`,
  ];
  for (const name of SPLIT_NAMES) {
    const sp = ds[name];
    const counts = classCounts(sp, C);
    lines.push(`  ${name.padEnd(5)} n=${sp.n}  ${ds.task === 'multilabel' ? 'positives' : 'per class'}: ${counts.join('/')}`);
  }
  return lines.join('\n');
}

/** Make a Dataset from three splits, computing mean/std on train. */
export function makeDataset(
  meta: { name: string; task: Task; classes: string[]; channels: number; height: number; width: number },
  splits: { train: Split; val: Split; test: Split },
): Dataset {
  const { mean, std } = computeMeanStd(splits.train.images, splits.train.n, meta.channels);
  const ds: Dataset = { ...meta, mean, std, ...splits };
  validateDataset(ds);
  return ds;
}
