// The common pipeline of the image-file datasets (ChestX-ray14, ISIC 2019, HAM10000, class
// folders): each layout lists its items (id, label, group, official split), then buildImageSet
// reads them from the decoded-image cache or decodes them (image-decode.ts), and splits them.
// Labels and splits are recomputed each load (cheap), so changing split options never re-decodes.
import { type Dataset, type Split, type SplitName, type Task, makeDataset } from './dataset.ts';
import { DEFAULT_MAX_PIXELS, type PrepareOptions } from './image.ts';
import { decodeAll } from './image-decode.ts';
import { cachePath, filesIdentity, readCache, writeCache } from './image-cache.ts';
import { checkClassesInTrain } from './labels.ts';
import { groupedStratifiedSplit, multilabelStrata } from './split.ts';
import { nowMs } from './util.ts';

export interface FolderLoadOptions {
  /** Square output size in pixels (default 64). */
  size?: number;
  /** 1 = gray (luma), 3 = RGB. Defaults: 1 for ChestX-ray14, 3 for dermoscopy. */
  channels?: 1 | 3;
  /** 'cover' (default) centre-crops to square before resizing; 'stretch' distorts. */
  fit?: 'cover' | 'stretch';
  /** What to do with a missing/unreadable image: 'fail' (default) throws naming it; 'skip' drops and reports it. */
  onBadImage?: 'skip' | 'fail';
  /** 16-bit PNG handling (see image.ts). */
  depth16?: 'full' | 'minmax';
  /** Images declaring more pixels than this are bad images (checked from the header; default 100 MP). */
  maxPixels?: number;
  /** train/val/test fractions when there is no official split (default [0.7, 0.1, 0.2]). */
  fractions?: [number, number, number];
  /** Fraction of an official train(+val) list held out as val, grouped by patient (default 0.1). */
  valFraction?: number;
  /** Split seed (default 0). */
  seed?: number;
  /** Decoded-image cache directory; false disables caching. Default $ROSKD_CACHE or ~/.cache/roskd. */
  cacheDir?: string | false;
  /** Use only the first N metadata rows (quick experiments). */
  limit?: number;
  /** Decoding threads; default: up to 8 for >200 images, else in-thread. 0 = in-thread. */
  workers?: number;
  /** Progress messages (default: silent). */
  log?: (msg: string) => void;
}

export interface BadImage {
  id: string;
  file: string;
  reason: string;
}

export interface LoadInfo {
  /** Metadata file or folder the dataset came from. */
  source: string;
  /** Wall time of the whole load, ms. */
  loadMs: number;
  /** Time spent decoding images (0 on a cache hit), ms. */
  decodeMs: number;
  fromCache: boolean;
  cacheFile?: string;
  /** Images decoded (or read from cache). */
  images: number;
  /** Skipped images (onBadImage: 'skip'). */
  skipped: BadImage[];
  /** Metadata rows not used (e.g. in neither official list). */
  unassigned: number;
}

export type LoadedDataset = Dataset & { load: LoadInfo };

export interface Item {
  id: string;
  label: number | Uint8Array;
  group: string;
  /** Official split when the source defines one. 'trainval' = to be divided into train/val. */
  split?: SplitName | 'trainval';
}

export interface BuildSpec {
  kind: string;
  name: string;
  task: Task;
  classes: string[];
  items: Item[];
  /** Resolves item ids to files (called on every load: the cache key holds each file's identity). */
  locate: () => Map<string, string>;
  /** Paths whose identity invalidates the cache. */
  keyFiles: string[];
  keyExtra?: unknown;
  source: string;
  defaultChannels: 1 | 3;
  unassigned?: number;
}

/** Cache or decode the items' images, then split them (official lists or grouped stratified). */
export async function buildImageSet(spec: BuildSpec, opts: FolderLoadOptions): Promise<LoadedDataset> {
  const t0 = nowMs();
  const log = opts.log ?? (() => {});
  const size = opts.size ?? 64;
  const channels = opts.channels ?? spec.defaultChannels;
  const prep: PrepareOptions = { size, channels, fit: opts.fit ?? 'cover', depth16: opts.depth16, maxPixels: opts.maxPixels ?? DEFAULT_MAX_PIXELS };
  const items = spec.items;
  const ids = items.map((it) => it.id);
  // The files are located (and stat-ed) on every load: the cache is keyed on each one's identity.
  const files = spec.locate();
  const paths = items.map((it) => files.get(it.id));
  const cacheFile =
    opts.cacheDir === false
      ? undefined
      : cachePath(
          { kind: spec.kind, keyFiles: spec.keyFiles, keyExtra: spec.keyExtra, imagesKey: filesIdentity(paths), prep, onBadImage: opts.onBadImage ?? 'fail', ids },
          opts.cacheDir,
        );
  const px = channels * size * size;
  let images: Uint8Array;
  let ok: Uint8Array;
  let bad: BadImage[];
  let decodeMs = 0;
  let fromCache = false;
  const cached = cacheFile ? readCache(cacheFile) : null;
  if (cached && cached.meta.ids.length * px === cached.images.length) {
    // Cache rows are the decodable items in item order.
    if (cached.meta.ids.length === items.length && cached.meta.ids.every((id, i) => id === items[i].id)) {
      // Common case (no bad images): use the cached array as is, no copy.
      images = cached.images;
      ok = new Uint8Array(items.length).fill(1);
    } else {
      const pos = new Map<string, number>();
      cached.meta.ids.forEach((id, k) => pos.set(id, k));
      images = new Uint8Array(items.length * px);
      ok = new Uint8Array(items.length);
      for (let i = 0; i < items.length; i++) {
        const k = pos.get(items[i].id);
        if (k === undefined) continue;
        images.set(cached.images.subarray(k * px, (k + 1) * px), i * px);
        ok[i] = 1;
      }
    }
    bad = cached.meta.bad;
    fromCache = true;
    log(`loaded ${cached.meta.ids.length} decoded images from cache ${cacheFile}`);
  } else {
    const td = nowMs();
    log(`decoding ${items.length} images from ${spec.source} to ${channels}x${size}x${size}`);
    ({ images, ok, bad } = await decodeAll(paths, ids, prep, opts, spec.source));
    decodeMs = nowMs() - td;
    if (cacheFile) {
      const okIdx: number[] = [];
      for (let i = 0; i < items.length; i++) if (ok[i]) okIdx.push(i);
      const packed = new Uint8Array(okIdx.length * px);
      okIdx.forEach((i, k) => packed.set(images.subarray(i * px, (i + 1) * px), k * px));
      writeCache(cacheFile, packed, { ids: okIdx.map((i) => ids[i]), bad, size, channels }, log);
    }
  }
  if (bad.length) log(`skipped ${bad.length} unreadable/missing images (first: ${bad[0].file || bad[0].id}: ${bad[0].reason})`);

  // Usable items, then splits.
  const use: number[] = [];
  for (let i = 0; i < items.length; i++) if (ok[i]) use.push(i);
  const C = spec.classes.length;
  const strataOf = (idx: number[]): Int32Array => {
    if (spec.task === 'multilabel') {
      const lab = new Uint8Array(idx.length * C);
      idx.forEach((i, k) => lab.set(items[i].label as Uint8Array, k * C));
      return multilabelStrata(lab, idx.length, C);
    }
    return Int32Array.from(idx, (i) => items[i].label as number);
  };
  const splitIdx: Record<SplitName, number[]> = { train: [], val: [], test: [] };
  const seed = opts.seed ?? 0;
  const hasOfficial = use.some((i) => items[i].split !== undefined);
  if (hasOfficial) {
    // Without an official val, val is carved out of train by group.
    const hasVal = use.some((i) => items[i].split === 'val');
    const trainval: number[] = [];
    for (const i of use) {
      const s = items[i].split;
      if (s === 'trainval' || (s === 'train' && !hasVal)) trainval.push(i);
      else if (s) splitIdx[s].push(i);
    }
    if (trainval.length) {
      const vf = opts.valFraction ?? 0.1;
      const [tr, va] = groupedStratifiedSplit(strataOf(trainval), trainval.map((i) => items[i].group), [1 - vf, vf], seed);
      splitIdx.train.push(...Array.from(tr, (k) => trainval[k]));
      splitIdx.val.push(...Array.from(va, (k) => trainval[k]));
      splitIdx.train.sort((a, b) => a - b);
      splitIdx.val.sort((a, b) => a - b);
    }
  } else {
    const fr = opts.fractions ?? [0.7, 0.1, 0.2];
    const parts = groupedStratifiedSplit(strataOf(use), use.map((i) => items[i].group), fr, seed);
    (['train', 'val', 'test'] as const).forEach((s, k) => (splitIdx[s] = Array.from(parts[k], (j) => use[j])));
  }
  if (spec.task !== 'multilabel') {
    // A class seen only in val/test (e.g. a class folder missing under train/) cannot be learnt.
    const lab = (sp: SplitName) => splitIdx[sp].map((i) => items[i].label as number);
    checkClassesInTrain(
      { train: lab('train'), val: lab('val'), test: lab('test') },
      C,
      (sp, row) => `${spec.source}: ${sp} split, image ${items[splitIdx[sp][row]].id}`,
      (k) => spec.classes[k],
    );
  }
  const mk = (idx: number[]): Split => {
    const im = new Uint8Array(idx.length * px);
    idx.forEach((i, k) => im.set(images.subarray(i * px, (i + 1) * px), k * px));
    let labels: Int32Array | Uint8Array;
    if (spec.task === 'multilabel') {
      labels = new Uint8Array(idx.length * C);
      idx.forEach((i, k) => (labels as Uint8Array).set(items[i].label as Uint8Array, k * C));
    } else labels = Int32Array.from(idx, (i) => items[i].label as number);
    return { images: im, labels, n: idx.length, groups: idx.map((i) => items[i].group), ids: idx.map((i) => items[i].id) };
  };
  const ds = makeDataset(
    { name: spec.name, task: spec.task, classes: spec.classes, channels, height: size, width: size },
    { train: mk(splitIdx.train), val: mk(splitIdx.val), test: mk(splitIdx.test) },
  );
  const nUsed = splitIdx.train.length + splitIdx.val.length + splitIdx.test.length;
  const load: LoadInfo = {
    source: spec.source,
    loadMs: nowMs() - t0,
    decodeMs,
    fromCache,
    cacheFile,
    images: use.length,
    skipped: bad,
    unassigned: (spec.unassigned ?? 0) + (use.length - nUsed),
  };
  log(`${spec.name}: train ${ds.train.n}, val ${ds.val.n}, test ${ds.test.n} in ${(load.loadMs / 1000).toFixed(2)} s${fromCache ? ' (cache)' : ''}`);
  return Object.assign(ds, { load });
}

export function applyLimit<T>(rows: T[], limit: number | undefined): T[] {
  return limit !== undefined && limit >= 0 ? rows.slice(0, limit) : rows;
}

export function dirList(v: string | string[] | undefined, fallback: string[]): string[] {
  if (v === undefined) return fallback;
  return Array.isArray(v) ? v : [v];
}

