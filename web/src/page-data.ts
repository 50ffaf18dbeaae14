// Datasets from what a page is given: a folder of class subfolders (an <input webkitdirectory>
// file list: root/<class>/*.png|jpg, or root/{train,val,test}/<class>/*), a MedMNIST-style .npz,
// or the synthetic phantoms. Images are decoded and resized by kd/data/image.ts (the same code
// and the same 'cover' fit as kd/train.ts's folder loader), split like kd's folder loader
// (grouped stratified, 70/10/20, seeded) when there is no official split.
import { groupedStratifiedSplit } from '../../kd/data/split.ts';
import { makeDataset, type Dataset, type Split, type SplitName } from '../../kd/data/dataset.ts';
import { prepareImage } from '../../kd/data/image.ts';
import { readNpz } from '../../kd/data/npy.ts';
import { readZipEntries, InflateLimitError, type ZipCodec } from '../../kd/data/zip.ts';
import { medmnistFromArrays } from '../../kd/data/medmnist.ts';
import { makeSynthetic } from '../../kd/data/synthetic.ts';

const IMAGE_RE = /\.(png|jpe?g)$/i;
const SPLIT_DIRS: Record<string, SplitName> = { train: 'train', val: 'val', valid: 'val', validation: 'val', test: 'test' };

export interface FolderFile {
  /** the path below the chosen folder's parent, as webkitRelativePath gives it: root/class/img.png */
  path: string;
  bytes(): Promise<Uint8Array>;
}

export interface LoadResult {
  ds: Dataset;
  load: Record<string, unknown>;
  skipped: { file: string; reason: string }[];
}

/** A dataset from class folders; errors name the folder or file at fault. */
export async function datasetFromFolder(files: FolderFile[], opts: { size: number; channels: 1 | 3; seed: number; onProgress?: (done: number, total: number) => void }): Promise<LoadResult> {
  if (files.length === 0) throw new Error('the chosen folder is empty: it needs one sub-folder per class with PNG/JPEG images inside');
  const root = files[0].path.split('/')[0];
  const items: { file: FolderFile; cls: string; split?: SplitName }[] = [];
  const ignored: string[] = [];
  for (const f of files) {
    const parts = f.path.split('/').slice(1); // below the chosen folder
    if (!IMAGE_RE.test(f.path)) {
      ignored.push(f.path);
      continue;
    }
    const split = parts.length >= 3 ? SPLIT_DIRS[parts[0].toLowerCase()] : undefined;
    const rest = split ? parts.slice(1) : parts;
    if (rest.length < 2) {
      ignored.push(f.path); // an image directly in the folder: no class
      continue;
    }
    items.push({ file: f, cls: rest[0], split });
  }
  const classes = [...new Set(items.map((i) => i.cls))].sort();
  if (items.length === 0) throw new Error(`${root}: no PNG/JPEG images in class sub-folders (${files.length} file(s), none usable: give one sub-folder per class)`);
  if (classes.length < 2) throw new Error(`${root}: need at least two class folders, found one (${classes[0]}): a classifier needs two or more classes`);
  const official = items.some((i) => i.split === 'train');
  const px = opts.channels * opts.size * opts.size;
  const images: Uint8Array[] = [];
  const kept: typeof items = [];
  const skipped: LoadResult['skipped'] = [];
  for (const [k, it] of items.entries()) {
    try {
      images.push(prepareImage(await it.file.bytes(), it.file.path, { height: opts.size, width: opts.size, channels: opts.channels, fit: 'cover' }));
      kept.push(it);
    } catch (e) {
      skipped.push({ file: it.file.path, reason: (e as Error).message });
    }
    opts.onProgress?.(k + 1, items.length);
  }
  if (kept.length === 0) throw new Error(`${root}: none of the ${items.length} images could be decoded (first: ${skipped[0]?.reason})`);
  const labels = kept.map((it) => classes.indexOf(it.cls));
  let parts: Record<SplitName, number[]>;
  if (official) {
    parts = { train: [], val: [], test: [] };
    kept.forEach((it, i) => parts[it.split ?? 'train'].push(i));
    if (parts.val.length === 0 || parts.test.length === 0) {
      const tr = Int32Array.from(parts.train);
      const [a, b, c] = groupedStratifiedSplit(Array.from(tr, (i) => labels[i]), undefined, parts.test.length ? [0.9, 0.1, 0] : [0.7, 0.1, 0.2], opts.seed);
      parts = { train: Array.from(a, (i) => tr[i]), val: parts.val.length ? parts.val : Array.from(b, (i) => tr[i]), test: parts.test.length ? parts.test : Array.from(c, (i) => tr[i]) };
    }
  } else {
    const [a, b, c] = groupedStratifiedSplit(labels, undefined, [0.7, 0.1, 0.2], opts.seed);
    parts = { train: Array.from(a), val: Array.from(b), test: Array.from(c) };
  }
  const split = (idx: number[]): Split => {
    const im = new Uint8Array(idx.length * px);
    idx.forEach((i, k) => im.set(images[i], k * px));
    return { images: im, labels: Int32Array.from(idx, (i) => labels[i]), n: idx.length, ids: idx.map((i) => kept[i].file.path) };
  };
  for (const s of ['train', 'val', 'test'] as const)
    if (parts[s].length === 0) throw new Error(`${root}: the ${s} split is empty (${kept.length} images in ${classes.length} classes are too few: add images)`);
  const ds = makeDataset(
    { name: root, task: classes.length === 2 ? 'binary' : 'multiclass', classes, channels: opts.channels, height: opts.size, width: opts.size },
    { train: split(parts.train), val: split(parts.val), test: split(parts.test) },
  );
  return { ds, skipped, load: { source: `folder ${root}`, images: kept.length, skipped, ignored: ignored.length } };
}

/** Inflates an archive's deflated members with the browser's DecompressionStream, ahead of kd's synchronous zip reader. */
async function preInflate(bytes: Uint8Array, file: string): Promise<ZipCodec> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const done = new Map<number, Uint8Array>();
  for (const e of readZipEntries(bytes, file)) {
    if (e.method !== 8) continue;
    const lh = e.localHeaderOffset;
    const start = lh + 30 + dv.getUint16(lh + 26, true) + dv.getUint16(lh + 28, true);
    const raw = bytes.subarray(start, start + e.compressedSize);
    const ds = new Blob([raw.slice()]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = ds.getReader();
    for (;;) {
      const { done: end, value } = await reader.read();
      if (end) break;
      chunks.push(value);
      size += value.length;
      if (size > e.size) {
        await reader.cancel();
        break; // over the declared size: the codec below throws InflateLimitError
      }
    }
    const out = new Uint8Array(size);
    let o = 0;
    for (const c of chunks) (out.set(c, o), (o += c.length));
    done.set(start, out);
  }
  return {
    inflateRaw(data: Uint8Array, maxOutput: number): Uint8Array {
      const out = done.get(data.byteOffset - bytes.byteOffset);
      if (!out) throw new Error('member was not inflated');
      if (out.length > maxOutput) throw new InflateLimitError(maxOutput);
      return out;
    },
    deflateRaw(): Uint8Array {
      throw new Error('deflate is not available in the page');
    },
  };
}

/** A MedMNIST-style .npz ({train,val,test}_{images,labels}); the name (e.g. breastmnist.npz) picks known classes. */
export async function datasetFromNpz(name: string, bytes: Uint8Array, opts: { size?: number }): Promise<LoadResult> {
  const codec = await preInflate(bytes, name);
  const arrays = readNpz(bytes, name, codec);
  const ds = medmnistFromArrays(arrays, name.replace(/\.npz$/i, ''), name, { size: opts.size });
  return { ds, skipped: [], load: { source: `npz ${name}` } };
}

export function syntheticDataset(opts: { n: number; size: number; channels: 1 | 3; seed: number }): LoadResult {
  const nEval = Math.max(8, Math.ceil(opts.n / 4));
  const ds = makeSynthetic({ train: opts.n, val: nEval, test: nEval, size: opts.size, seed: opts.seed, channels: opts.channels });
  return { ds, skipped: [], load: { source: 'synthetic' } };
}
