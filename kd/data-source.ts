// The dataset a run trains on, as --data names it (synthetic, MedMNIST, ChestX-ray14, ISIC 2019,
// HAM10000, class folders), and its noisy training labels. Node side: the loaders read files.
import { statSync } from 'node:fs';
import { hashSeed } from '../engine/rng.ts';
import { UsageError, type Options } from './config.ts';
import { type Dataset, subsetSplit } from './data/dataset.ts';
import { makeSynthetic } from './data/synthetic.ts';
import { loadMedMNIST, type DownloadProgress } from './data/medmnist-files.ts';
import type { LoadedDataset } from './data/image-set.ts';
import { loadChestXray14 } from './data/chestxray14.ts';
import { loadIsic2019 } from './data/isic2019.ts';
import { loadHam10000 } from './data/ham10000.ts';
import { loadImageFolder } from './data/image-folder.ts';
import { injectNoise, expectedTransition } from './data/noise.ts';
import type { RunStore } from './run-store.ts';

export interface PreparedData {
  ds: Dataset;
  /** noisy training labels (what every model trains on) */
  noisy: Int32Array | Uint8Array;
  noise: Record<string, unknown>;
  load: Record<string, unknown>;
}

/** Loads the dataset named by --data (see --help), applies --train-limit. */
export async function loadData(o: Options, log: (s: string) => void = () => {}, onDownload?: DownloadProgress): Promise<{ ds: Dataset; load: Record<string, unknown> }> {
  const t0 = performance.now();
  const spec = o.data;
  const colon = spec.indexOf(':');
  const kind = colon > 1 ? spec.slice(0, colon).toLowerCase() : '';
  const arg = colon > 1 ? spec.slice(colon + 1) : '';
  const ch: 1 | 3 | undefined = o.channels === 1 || o.channels === 3 ? o.channels : undefined;
  const common = { size: o.size, channels: ch, onBadImage: o.onBadImage, maxPixels: o.maxPixels, seed: o.seed, log };
  const imageDir = o.images ? checkImagesDir(o.images) : undefined;
  let ds: Dataset;
  let extra: Record<string, unknown> = {};
  if (spec === 'synthetic') {
    const nEval = Math.max(8, Math.ceil(o.syntheticN / 4));
    ds = makeSynthetic({ train: o.syntheticN, val: nEval, test: nEval, size: o.size, seed: o.seed, channels: ch ?? 1, difficulty: o.syntheticDifficulty });
  } else if (kind === 'chestxray14') {
    ds = await loadChestXray14({ ...common, imageDir, ...(arg.toLowerCase().endsWith('.csv') ? { csv: arg } : { root: arg }) });
  } else if (kind === 'isic2019') ds = await loadIsic2019({ ...common, imageDir, csv: arg });
  else if (kind === 'ham10000') ds = await loadHam10000({ ...common, imageDir, csv: arg });
  else if (kind === 'folder') ds = await loadImageFolder({ ...common, root: arg });
  else if (kind) throw new UsageError(`--data: unknown source ${JSON.stringify(kind)} (synthetic, <medmnist name>, file.npz, chestxray14:, isic2019:, ham10000:, folder:)`);
  else ds = await loadMedMNIST(spec, { size: o.size, log, onProgress: onDownload });
  if ('load' in ds) {
    const l = (ds as LoadedDataset).load;
    extra = { source: l.source, fromCache: l.fromCache, decodeMs: Math.round(l.decodeMs), images: l.images, skipped: l.skipped, unassigned: l.unassigned };
    if (l.skipped.length) log(`skipped ${l.skipped.length} unreadable image(s): ${l.skipped.slice(0, 5).map((b) => `${b.file} (${b.reason})`).join('; ')}${l.skipped.length > 5 ? ' ...' : ''}`);
  }
  if (o.trainLimit > 0 && o.trainLimit < ds.train.n) ds = { ...ds, train: subsetSplit(ds.train, Int32Array.from({ length: o.trainLimit }, (_, i) => i)) };
  for (const s of ['train', 'val', 'test'] as const) if (ds[s].n === 0) throw new Error(`${ds.name}: the ${s} split is empty`);
  return { ds, load: { name: ds.name, task: ds.task, classes: ds.classes, shape: [ds.channels, ds.height, ds.width], n: { train: ds.train.n, val: ds.val.n, test: ds.test.n }, ms: Math.round(performance.now() - t0), ...extra } };
}

/** --images must be a folder (or a link to one): a typo would otherwise report every image missing. */
function checkImagesDir(dir: string): string {
  let st;
  try {
    st = statSync(dir); // follows symbolic links
  } catch (e) {
    throw new UsageError(`--images ${dir}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such folder (or a broken link)' : (e as Error).message}`);
  }
  if (!st.isDirectory()) throw new UsageError(`--images ${dir}: not a folder`);
  return dir;
}

/** Dataset + noisy training labels (noise.json holds the realised transition matrix). */
export async function prepareData(o: Options, run: RunStore | null, log: (s: string) => void = () => {}, onDownload?: DownloadProgress): Promise<PreparedData> {
  const { ds, load } = await loadData(o, log, onDownload);
  const C = ds.classes.length;
  const nopts = { type: o.noiseType, rate: o.noiseRate, seed: hashSeed(o.seed, 'label-noise') };
  const res = ds.train.labels instanceof Uint8Array ? injectNoise(ds.train.labels, C, nopts) : injectNoise(ds.train.labels, C, nopts);
  const noise: Record<string, unknown> = {
    type: o.noiseType, rate: o.noiseRate, seed: nopts.seed, task: ds.task, classes: ds.classes,
    realisedRate: res.realisedRate, flippedCount: res.flipped.reduce((a, b) => a + b, 0),
    // T[clean][noisy]: realised (row-normalised counts) and what the noise model implies
    transition: res.transition, counts: res.counts,
    ...(ds.task === 'multilabel' ? { perLabelRate: (res as { perLabelRate: number[] }).perLabelRate, note: 'multi-label: counts/transition pooled over label bits (0/1)' } : { expectedTransition: expectedTransition(C, nopts) }),
  };
  if (run) run.writeJson('noise.json', noise);
  return { ds, noisy: res.labels, noise, load };
}
