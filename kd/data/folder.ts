// Loaders for image datasets as users download them: NIH ChestX-ray14,
// ISIC 2019, HAM10000 and plain class folders. Images are decoded once
// (optionally on worker threads), resized to the model size and cached as an
// uncompressed npz keyed by the metadata file's identity and the decode options,
// so a second load only reads one file. Labels and splits are recomputed from
// the CSV each time (cheap), so changing split options never re-decodes.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { type Dataset, type Split, type SplitName, type Task, makeDataset } from './dataset.ts';
import { readCsv, requireColumn, findColumn } from './csv.ts';
import { prepareImage, type PrepareOptions } from './image.ts';
import { defaultCacheDir, encodeNpz, readZip, parseNpy } from './npz.ts';
import { groupedStratifiedSplit, multilabelStrata } from './split.ts';
import { writeFileAtomic, nowMs } from './util.ts';

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

interface Item {
  id: string;
  label: number | Uint8Array;
  group: string;
  /** Official split when the source defines one. 'trainval' = to be divided into train/val. */
  split?: SplitName | 'trainval';
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);
const CACHE_VERSION = 1;

// ---------------------------------------------------------------- file index

/** Map of file name and stem -> path for all images under dirs (recursive, depth-limited). */
function indexImages(dirs: string[], maxDepth = 4): Map<string, string> {
  const index = new Map<string, string>();
  const walk = (dir: string, depth: number) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (depth < maxDepth && !e.name.startsWith('.')) walk(p, depth + 1);
      } else if (IMAGE_EXT.has(extname(e.name).toLowerCase())) {
        if (!index.has(e.name)) index.set(e.name, p);
        const stem = e.name.slice(0, e.name.length - extname(e.name).length);
        if (!index.has(stem)) index.set(stem, p);
      }
    }
  };
  for (const d of dirs) walk(d, 0);
  return index;
}

function statKey(path: string): { path: string; mtimeMs: number; size: number } | { path: string; missing: true } {
  try {
    const s = statSync(path);
    return { path: resolve(path), mtimeMs: s.mtimeMs, size: s.size };
  } catch {
    return { path: resolve(path), missing: true };
  }
}

// ---------------------------------------------------------------- decoding

async function decodeAll(
  files: (string | undefined)[],
  ids: string[],
  prep: PrepareOptions,
  opts: FolderLoadOptions,
  where: string,
): Promise<{ images: Uint8Array; ok: Uint8Array; bad: BadImage[] }> {
  const n = files.length;
  const px = prep.channels * (prep.size ?? 0) * (prep.size ?? 0);
  const images = new Uint8Array(n * px);
  const ok = new Uint8Array(n);
  const bad: BadImage[] = [];
  const log = opts.log ?? (() => {});
  const fail = (i: number, reason: string) => {
    const b = { id: ids[i], file: files[i] ?? '', reason };
    if ((opts.onBadImage ?? 'fail') === 'fail') throw new Error(`${where}: bad image ${b.file || b.id}: ${reason}`);
    bad.push(b);
  };
  const t0 = nowMs();
  let done = 0;
  let lastLog = t0;
  const progress = () => {
    done++;
    const t = nowMs();
    if (t - lastLog > 5000) {
      lastLog = t;
      const rate = done / ((t - t0) / 1000);
      log(`decoded ${done}/${n} images (${rate.toFixed(0)}/s, ~${((n - done) / rate).toFixed(0)} s left)`);
    }
  };
  const store = (i: number, data: Uint8Array) => {
    images.set(data, i * px);
    ok[i] = 1;
  };
  const missing = (i: number) => fail(i, `not found (id ${ids[i]})`);

  const present: number[] = [];
  for (let i = 0; i < n; i++) {
    if (files[i]) present.push(i);
    else {
      missing(i);
      progress();
    }
  }
  const nWorkers = opts.workers ?? (present.length > 200 ? Math.min(8, Math.max(1, availableParallelism() - 1)) : 0);
  if (nWorkers > 0 && present.length > 0) {
    const res = await decodeWithWorkers(present, files as string[], prep, nWorkers, store, fail, progress);
    if (res === 'ok') return { images, ok, bad };
    log('worker threads unavailable, decoding in-thread');
  }
  for (const i of present) {
    const f = files[i]!;
    try {
      store(i, prepareImage(readFileSync(f), f, prep));
    } catch (e) {
      const msg = (e as Error).message;
      fail(i, msg.startsWith(f) ? msg.slice(f.length + 2) : msg);
    }
    progress();
  }
  return { images, ok, bad };
}

/** Runs the decode on worker threads; returns 'unavailable' if workers cannot start (then the caller decodes in-thread). */
async function decodeWithWorkers(
  queue: number[],
  files: string[],
  prep: PrepareOptions,
  nWorkers: number,
  store: (i: number, px: Uint8Array) => void,
  fail: (i: number, reason: string) => void,
  progress: () => void,
): Promise<'ok' | 'unavailable'> {
  // Workers do not inherit tsx's loader for a .ts entry in Node 20, so bootstrap it explicitly.
  let tsxApi: string;
  try {
    tsxApi = import.meta.resolve('tsx/esm/api');
  } catch {
    return 'unavailable';
  }
  const entry = new URL('./decode-worker.ts', import.meta.url).href;
  const code = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  const workers: Worker[] = [];
  nWorkers = Math.min(nWorkers, queue.length);
  let started = false;
  try {
    await new Promise<void>((resolveAll, rejectAll) => {
      let remaining = queue.length;
      let next = 0;
      let failed = false;
      const abort = (e: unknown) => {
        if (failed) return;
        failed = true;
        rejectAll(e);
      };
      const feed = (w: Worker) => {
        if (next < queue.length) {
          const i = queue[next++];
          w.postMessage({ i, file: files[i] });
        }
      };
      for (let k = 0; k < nWorkers; k++) {
        const w = new Worker(code, { eval: true, workerData: prep });
        workers.push(w);
        w.on('message', (m: { i: number; px?: Uint8Array; error?: string }) => {
          started = true;
          if (failed) return;
          try {
            if (m.px) store(m.i, m.px);
            else {
              const f = files[m.i];
              const msg = m.error ?? 'unknown error';
              fail(m.i, msg.startsWith(f) ? msg.slice(f.length + 2) : msg);
            }
            progress();
          } catch (e) {
            abort(e);
            return;
          }
          if (--remaining === 0) resolveAll();
          else feed(w);
        });
        w.on('error', abort);
        // A worker that dies without an error event would otherwise leave us waiting forever.
        w.on('exit', (code) => {
          if (remaining > 0) abort(new Error(`image decode worker exited (code ${code}) with ${remaining} images left`));
        });
        // Two tasks in flight per worker hides message latency.
        feed(w);
        feed(w);
      }
    });
  } catch (e) {
    if (!started && !(e instanceof Error && e.message.includes('bad image'))) return 'unavailable';
    throw e;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return 'ok';
}

// ---------------------------------------------------------------- cache

interface CacheMeta {
  version: number;
  ids: string[];
  bad: BadImage[];
  size: number;
  channels: number;
}

function readCache(path: string): { images: Uint8Array; meta: CacheMeta } | null {
  if (!existsSync(path)) return null;
  try {
    const z = readZip(path);
    const meta = JSON.parse(z.get('meta.json')!.toString('utf8')) as CacheMeta;
    const arr = parseNpy(z.get('images.npy')!, `${path}: images.npy`);
    if (meta.version !== CACHE_VERSION || !(arr.data instanceof Uint8Array)) return null;
    return { images: arr.data, meta };
  } catch {
    return null; // a corrupt cache is just a miss
  }
}

// ---------------------------------------------------------------- generic pipeline

interface BuildSpec {
  kind: string;
  name: string;
  task: Task;
  classes: string[];
  items: Item[];
  /** Resolves item ids to files (only called on a cache miss). */
  locate: () => Map<string, string>;
  /** Paths whose identity invalidates the cache. */
  keyFiles: string[];
  keyExtra?: unknown;
  source: string;
  defaultChannels: 1 | 3;
  unassigned?: number;
}

async function build(spec: BuildSpec, opts: FolderLoadOptions): Promise<LoadedDataset> {
  const t0 = nowMs();
  const log = opts.log ?? (() => {});
  const size = opts.size ?? 64;
  const channels = opts.channels ?? spec.defaultChannels;
  const prep: PrepareOptions = { size, channels, fit: opts.fit ?? 'cover', depth16: opts.depth16 };
  const items = spec.items;
  const ids = items.map((it) => it.id);
  const key = createHash('sha256')
    .update(
      JSON.stringify({
        v: CACHE_VERSION,
        kind: spec.kind,
        files: spec.keyFiles.map(statKey),
        extra: spec.keyExtra ?? null,
        prep,
        onBadImage: opts.onBadImage ?? 'fail',
        ids: createHash('sha256').update(ids.join('\n')).digest('hex'),
      }),
    )
    .digest('hex')
    .slice(0, 20);
  const cacheFile = opts.cacheDir === false ? undefined : join(opts.cacheDir ?? defaultCacheDir(), 'decoded', `${spec.kind}-${size}px-${channels}ch-${key}.npz`);
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
    const index = spec.locate();
    const files = items.map((it) => index.get(it.id));
    const td = nowMs();
    log(`decoding ${items.length} images from ${spec.source} to ${channels}x${size}x${size}`);
    ({ images, ok, bad } = await decodeAll(files, ids, prep, opts, spec.source));
    decodeMs = nowMs() - td;
    if (cacheFile) {
      const okIdx: number[] = [];
      for (let i = 0; i < items.length; i++) if (ok[i]) okIdx.push(i);
      const packed = new Uint8Array(okIdx.length * px);
      okIdx.forEach((i, k) => packed.set(images.subarray(i * px, (i + 1) * px), k * px));
      const meta: CacheMeta = { version: CACHE_VERSION, ids: okIdx.map((i) => ids[i]), bad, size, channels };
      try {
        writeFileAtomic(
          cacheFile,
          encodeNpz({ images: { data: packed, shape: [okIdx.length, channels, size, size] } }, { extra: { 'meta.json': Buffer.from(JSON.stringify(meta)) } }),
        );
      } catch (e) {
        log(`could not write cache ${cacheFile}: ${(e as Error).message}`);
      }
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

function applyLimit<T>(rows: T[], limit: number | undefined): T[] {
  return limit !== undefined && limit >= 0 ? rows.slice(0, limit) : rows;
}

function dirList(v: string | string[] | undefined, fallback: string[]): string[] {
  if (v === undefined) return fallback;
  return Array.isArray(v) ? v : [v];
}

// ---------------------------------------------------------------- ChestX-ray14

/** The 14 NIH findings, in the order used by the paper and by ChestMNIST. */
export const CHESTXRAY14_FINDINGS = [
  'Atelectasis', 'Cardiomegaly', 'Effusion', 'Infiltration', 'Mass', 'Nodule', 'Pneumonia',
  'Pneumothorax', 'Consolidation', 'Edema', 'Emphysema', 'Fibrosis', 'Pleural_Thickening', 'Hernia',
];

export interface ChestXray14Options extends FolderLoadOptions {
  /** Folder with Data_Entry_2017.csv (and images/, train_val_list.txt, test_list.txt). */
  root?: string;
  /** Explicit metadata CSV (default <root>/Data_Entry_2017.csv or Data_Entry_2017_v2020.csv). */
  csv?: string;
  /** Image folder(s), searched recursively (default <root>). */
  imageDir?: string | string[];
  /** Official lists; default <root>/train_val_list.txt and test_list.txt when present; false = ignore. */
  trainValList?: string | false;
  testList?: string | false;
}

function readList(path: string): Set<string> {
  return new Set(
    readFileSync(path, 'utf8')
      .split(/\r?\n/)
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

export async function loadChestXray14(opts: ChestXray14Options): Promise<LoadedDataset> {
  const root = opts.root ?? (opts.csv ? dirname(opts.csv) : undefined);
  if (!root) throw new Error('loadChestXray14: give root (folder with Data_Entry_2017.csv) or csv');
  const csvPath =
    opts.csv ?? [join(root, 'Data_Entry_2017.csv'), join(root, 'Data_Entry_2017_v2020.csv')].find((p) => existsSync(p)) ?? join(root, 'Data_Entry_2017.csv');
  const csv = readCsv(csvPath);
  const cImg = requireColumn(csv, 'Image Index');
  const cLab = requireColumn(csv, 'Finding Labels');
  const cPat = requireColumn(csv, 'Patient ID');
  const pick = (v: string | false | undefined, def: string) => (v === false ? undefined : v ?? (existsSync(def) ? def : undefined));
  const tvPath = pick(opts.trainValList, join(root, 'train_val_list.txt'));
  const testPath = pick(opts.testList, join(root, 'test_list.txt'));
  const trainVal = tvPath ? readList(tvPath) : undefined;
  const test = testPath ? readList(testPath) : undefined;
  const L = CHESTXRAY14_FINDINGS.length;
  const findIdx = new Map(CHESTXRAY14_FINDINGS.map((f, k) => [f.toLowerCase(), k]));
  findIdx.set('pleural thickening', 12);
  const items: Item[] = [];
  let unassigned = 0;
  const rows = applyLimit(csv.rows.map((r, k) => [r, csv.lines[k]] as const), opts.limit);
  for (const [r, line] of rows) {
    const id = (r[cImg] ?? '').trim();
    if (!id) continue;
    const label = new Uint8Array(L);
    for (const f of (r[cLab] ?? '').split('|')) {
      const name = f.trim();
      if (!name || name === 'No Finding') continue;
      const k = findIdx.get(name.toLowerCase());
      if (k === undefined) throw new Error(`${csvPath}:${line}: unknown finding ${JSON.stringify(name)} in column "Finding Labels" (known: ${CHESTXRAY14_FINDINGS.join(', ')}, No Finding)`);
      label[k] = 1;
    }
    let split: Item['split'];
    if (trainVal || test) {
      if (test?.has(id)) split = 'test';
      else if (trainVal?.has(id)) split = 'trainval';
      else if (!trainVal) split = 'trainval'; // only a test list given: everything else is train/val
      else {
        unassigned++;
        continue;
      }
    }
    items.push({ id, label, group: `patient:${(r[cPat] ?? '').trim() || id}`, split });
  }
  const dirs = dirList(opts.imageDir, [root]);
  return build(
    {
      kind: 'chestxray14',
      name: 'chestxray14',
      task: 'multilabel',
      classes: CHESTXRAY14_FINDINGS,
      items,
      locate: () => indexImages(dirs),
      keyFiles: [csvPath, ...dirs],
      source: csvPath,
      defaultChannels: 1,
      unassigned,
    },
    opts,
  );
}

// ---------------------------------------------------------------- ISIC 2019

export interface Isic2019Options extends FolderLoadOptions {
  /** ISIC_2019_Training_GroundTruth.csv: `image` + one-hot class columns. */
  csv: string;
  /** Default: folder of the CSV (searched recursively, e.g. ISIC_2019_Training_Input/). */
  imageDir?: string | string[];
  /** ISIC_2019_Training_Metadata.csv for lesion_id grouping; default next to csv when present; false = no grouping. */
  metadataCsv?: string | false;
}

export async function loadIsic2019(opts: Isic2019Options): Promise<LoadedDataset> {
  const csv = readCsv(opts.csv);
  const cImg = requireColumn(csv, 'image');
  const classCols = csv.header.map((h, k) => [h.trim(), k] as const).filter(([h, k]) => k !== cImg && h !== '');
  if (classCols.length < 2) throw new Error(`${opts.csv}: expected one-hot class columns after "image" (e.g. MEL,NV,BCC,...), found ${classCols.length}`);
  const classes = classCols.map(([h]) => h);
  const metaPath =
    opts.metadataCsv === false ? undefined : opts.metadataCsv ?? [join(dirname(opts.csv), 'ISIC_2019_Training_Metadata.csv')].find((p) => existsSync(p));
  const lesion = new Map<string, string>();
  if (metaPath) {
    const meta = readCsv(metaPath);
    const mi = requireColumn(meta, 'image');
    const ml = requireColumn(meta, 'lesion_id');
    for (const r of meta.rows) if (r[ml]?.trim()) lesion.set(r[mi].trim(), r[ml].trim());
  }
  const items: Item[] = [];
  const rows = applyLimit(csv.rows.map((r, k) => [r, csv.lines[k]] as const), opts.limit);
  for (const [r, line] of rows) {
    const id = (r[cImg] ?? '').trim();
    if (!id) continue;
    let label = -1;
    for (let c = 0; c < classCols.length; c++) {
      const raw = (r[classCols[c][1]] ?? '').trim();
      const v = Number(raw);
      if (raw === '' || !Number.isFinite(v)) throw new Error(`${opts.csv}:${line}: column "${classCols[c][0]}" has non-numeric value ${JSON.stringify(raw)}`);
      if (v >= 0.5) {
        if (label >= 0) throw new Error(`${opts.csv}:${line}: image ${id} is marked as both ${classes[label]} and ${classes[c]} (expected one-hot)`);
        label = c;
      }
    }
    if (label < 0) throw new Error(`${opts.csv}:${line}: image ${id} has no class set (expected one-hot over ${classes.join(',')})`);
    const les = lesion.get(id);
    items.push({ id, label, group: les ? `lesion:${les}` : `image:${id}` });
  }
  const dirs = dirList(opts.imageDir, [dirname(opts.csv)]);
  return build(
    {
      kind: 'isic2019',
      name: 'isic2019',
      task: classes.length === 2 ? 'binary' : 'multiclass',
      classes,
      items,
      locate: () => indexImages(dirs),
      keyFiles: [opts.csv, ...dirs, ...(metaPath ? [metaPath] : [])],
      source: opts.csv,
      defaultChannels: 3,
    },
    opts,
  );
}

// ---------------------------------------------------------------- HAM10000

/** HAM10000 diagnosis codes (alphabetical, the common convention). */
export const HAM10000_CLASSES = ['akiec', 'bcc', 'bkl', 'df', 'mel', 'nv', 'vasc'];

export interface Ham10000Options extends FolderLoadOptions {
  /** HAM10000_metadata.csv: image_id, dx, lesion_id. */
  csv: string;
  /** Default: folder of the CSV (recursive; finds HAM10000_images_part_1/2). */
  imageDir?: string | string[];
}

export async function loadHam10000(opts: Ham10000Options): Promise<LoadedDataset> {
  const csv = readCsv(opts.csv);
  const cImg = requireColumn(csv, 'image_id');
  const cDx = requireColumn(csv, 'dx');
  const cLes = findColumn(csv, 'lesion_id');
  const items: Item[] = [];
  const rows = applyLimit(csv.rows.map((r, k) => [r, csv.lines[k]] as const), opts.limit);
  for (const [r, line] of rows) {
    const id = (r[cImg] ?? '').trim();
    if (!id) continue;
    const dx = (r[cDx] ?? '').trim().toLowerCase();
    const label = HAM10000_CLASSES.indexOf(dx);
    if (label < 0) throw new Error(`${opts.csv}:${line}: unknown dx ${JSON.stringify(dx)} in column "dx" (known: ${HAM10000_CLASSES.join(', ')})`);
    const les = cLes >= 0 ? (r[cLes] ?? '').trim() : '';
    items.push({ id, label, group: les ? `lesion:${les}` : `image:${id}` });
  }
  const dirs = dirList(opts.imageDir, [dirname(opts.csv)]);
  return build(
    {
      kind: 'ham10000',
      name: 'ham10000',
      task: 'multiclass',
      classes: HAM10000_CLASSES,
      items,
      locate: () => indexImages(dirs),
      keyFiles: [opts.csv, ...dirs],
      source: opts.csv,
      defaultChannels: 3,
    },
    opts,
  );
}

// ---------------------------------------------------------------- class folders

export interface ImageFolderOptions extends FolderLoadOptions {
  /** root/<class>/*.png|jpg, or root/{train,val,test}/<class>/* for an official split. */
  root: string;
  name?: string;
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
      .map((e) => e.name)
      .sort();
  } catch (e) {
    throw new Error(`cannot read folder ${dir}: ${(e as Error).message}`);
  }
}

export async function loadImageFolder(opts: ImageFolderOptions): Promise<LoadedDataset> {
  const top = subdirs(opts.root);
  const splitDirs = top.filter((d) => ['train', 'val', 'valid', 'validation', 'test'].includes(d.toLowerCase()));
  const official = splitDirs.some((d) => d.toLowerCase() === 'train');
  const splitOf = (d: string): SplitName => (d.toLowerCase() === 'train' ? 'train' : d.toLowerCase() === 'test' ? 'test' : 'val');
  const bases = official ? splitDirs.map((d) => [join(opts.root, d), splitOf(d)] as const) : [[opts.root, undefined] as const];
  const classSet = new Set<string>();
  for (const [b] of bases) for (const c of subdirs(b)) classSet.add(c);
  const classes = [...classSet].sort();
  if (classes.length < 2) throw new Error(`${opts.root}: need at least two class folders, found ${classes.length ? classes.join(', ') : 'none'}`);
  const items: Item[] = [];
  const files = new Map<string, string>();
  for (const [b, split] of bases)
    for (const c of classes) {
      const dir = join(b, c);
      if (!existsSync(dir)) continue;
      const names = readdirSync(dir)
        .filter((f) => IMAGE_EXT.has(extname(f).toLowerCase()))
        .sort();
      for (const f of names) {
        const id = `${split ? split + '/' : ''}${c}/${f}`;
        files.set(id, join(dir, f));
        items.push({ id, label: classes.indexOf(c), group: `image:${id}`, split });
      }
    }
  const limited = applyLimit(items, opts.limit);
  // The listing itself is part of the key: adding files must invalidate the cache.
  const listing = createHash('sha256').update(limited.map((it) => it.id).join('\n')).digest('hex');
  return build(
    {
      kind: 'folder',
      name: opts.name ?? basename(resolve(opts.root)),
      task: classes.length === 2 ? 'binary' : 'multiclass',
      classes,
      items: limited,
      locate: () => files,
      keyFiles: [opts.root],
      keyExtra: listing,
      source: opts.root,
      defaultChannels: 1,
    },
    opts,
  );
}
