// `kd/predict.ts --labels SOURCE`: a saved model scored against labelled images (Node side: reads
// the files; the numbers are evaluation.ts). A SOURCE is
//   file.npz   MedMNIST layout (<split>_images, <split>_labels; --split, default test); its class
//              names (from the MedMNIST name in the file name) must equal the model's, in order
//   file.csv   columns image|file|path and label|labels; image paths relative to the CSV's folder;
//              a label is a class name (multi-label: names joined by | or ;, empty for none)
//   folder     ROOT/<class>/*.png|jpg, or ROOT/<split>/<class>/* when ROOT has split folders
// For CSV and folders the labels name classes, which are mapped onto the model's by name; every
// label class must be one of the model's (a test set may lack some). Otherwise the model is
// refused with both lists named.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import * as rk from '../engine/index.ts';
import { loadSafetensors } from '../engine/node/safetensors-file.ts';
import { prepareImage } from './data/image.ts';
import { collectImages, readCsv, subdirs } from './data/node-files.ts';
import { loadMedMNISTFile } from './data/medmnist-files.ts';
import { requireColumn } from './data/csv.ts';
import type { SplitName } from './data/dataset.ts';
import { predictLogits } from './inference.ts';
import { probabilities } from './metrics.ts';
import { buildModel, copyCheckedWeights, readModelMeta, type ModelMeta } from './model-file.ts';
import { evaluateProbs, type Evaluation } from './evaluation.ts';

export interface Labelled {
  /** uint8 CHW images at the model's input size, concatenated */
  images: Uint8Array;
  n: number;
  /** in the model's class order: ids [n], or 0/1 [n * C] for multi-label */
  labels: Int32Array | Uint8Array;
  /** the class names the labels use (as found in the source) */
  labelClasses: string[];
  files?: string[];
  skipped: { file: string; reason: string }[];
}

export interface LabelOptions {
  split?: SplitName;
  onBadImage?: 'skip' | 'fail';
}

/** The refusal: names both class lists. */
export class ClassMismatchError extends Error {
  override name = 'ClassMismatchError';
}

function refuse(source: string, labelClasses: readonly string[], meta: ModelMeta, how: string): never {
  throw new ClassMismatchError(`${source}: the labels' classes [${labelClasses.join(', ')}] do not match the model's [${meta.classes.join(', ')}] (${how}); is this the data the model was trained for?`);
}

function readImages(files: string[], meta: ModelMeta, onBad: 'skip' | 'fail'): { images: Uint8Array[]; ok: boolean[]; skipped: Labelled['skipped'] } {
  const images: Uint8Array[] = [];
  const ok: boolean[] = [];
  const skipped: Labelled['skipped'] = [];
  for (const f of files) {
    try {
      images.push(prepareImage(readFileSync(f), f, { height: meta.height, width: meta.width, channels: meta.channels as 1 | 3, fit: 'cover' }));
      ok.push(true);
    } catch (e) {
      if (onBad === 'fail') throw new Error(`unreadable image ${f}: ${(e as Error).message} (use --on-bad-image skip to go on without it)`);
      skipped.push({ file: f, reason: (e as Error).message });
      ok.push(false);
    }
  }
  return { images, ok, skipped };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
}

function fromNpz(path: string, meta: ModelMeta, split: SplitName): Labelled {
  const ds = loadMedMNISTFile(path, { size: meta.height });
  const same = ds.classes.length === meta.classes.length && ds.classes.every((c, k) => c === meta.classes[k]);
  if (!same) refuse(path, ds.classes, meta, 'npz labels are class indices, so the lists must be equal and in the same order');
  if (ds.task !== meta.task) throw new ClassMismatchError(`${path}: a ${ds.task} set, the model is ${meta.task}`);
  if (ds.channels !== meta.channels || ds.width !== meta.width) throw new Error(`${path}: images are ${ds.channels}x${ds.height}x${ds.width}, the model takes ${meta.channels}x${meta.height}x${meta.width}`);
  const s = ds[split];
  return { images: s.images, n: s.n, labels: s.labels, labelClasses: ds.classes, skipped: [] };
}

function namesToLabels(rows: { file: string; names: string[] }[], meta: ModelMeta, source: string): { labels: Int32Array | Uint8Array; labelClasses: string[] } {
  const seen = [...new Set(rows.flatMap((r) => r.names))].sort();
  const unknown = seen.filter((c) => !meta.classes.includes(c));
  if (unknown.length) refuse(source, seen, meta, `not classes of the model: ${unknown.join(', ')}`);
  const C = meta.classes.length;
  if (meta.task === 'multilabel') {
    const labels = new Uint8Array(rows.length * C);
    rows.forEach((r, i) => r.names.forEach((c) => (labels[i * C + meta.classes.indexOf(c)] = 1)));
    return { labels, labelClasses: seen };
  }
  rows.forEach((r) => {
    if (r.names.length !== 1) throw new Error(`${source}: ${r.file} has ${r.names.length} labels (${r.names.join(', ') || 'none'}); a ${meta.task} model needs exactly one`);
  });
  return { labels: Int32Array.from(rows, (r) => meta.classes.indexOf(r.names[0])), labelClasses: seen };
}

function fromRows(rows: { file: string; names: string[] }[], meta: ModelMeta, source: string, onBad: 'skip' | 'fail'): Labelled {
  if (rows.length === 0) throw new Error(`${source}: no labelled images found`);
  namesToLabels(rows, meta, source); // refuse before decoding anything
  const r = readImages(rows.map((x) => x.file), meta, onBad);
  const kept = rows.filter((_, i) => r.ok[i]);
  return { images: concat(r.images), n: kept.length, ...namesToLabels(kept, meta, source), files: kept.map((x) => x.file), skipped: r.skipped };
}

function fromCsv(path: string, meta: ModelMeta, onBad: 'skip' | 'fail'): Labelled {
  const csv = readCsv(path);
  const fi = requireColumn(csv, 'image', 'file', 'path', 'filename');
  const li = requireColumn(csv, 'label', 'labels', 'class');
  const base = dirname(resolve(path));
  const rows = csv.rows.map((row) => ({
    file: join(base, row[fi] ?? ''),
    names: (row[li] ?? '').split(/[|;]/).map((s) => s.trim()).filter(Boolean),
  }));
  return fromRows(rows, meta, path, onBad);
}

function fromFolder(root: string, meta: ModelMeta, split: SplitName, onBad: 'skip' | 'fail'): Labelled {
  if (meta.task === 'multilabel') throw new Error(`${root}: class folders give one label per image; a multi-label model needs a CSV (see --help)`);
  const top = subdirs(root);
  const splitDir = top.find((d) => d.toLowerCase() === split || (split === 'val' && ['valid', 'validation'].includes(d.toLowerCase())));
  const hasSplits = top.some((d) => ['train', 'val', 'valid', 'validation', 'test'].includes(d.toLowerCase()));
  if (hasSplits && !splitDir) throw new Error(`${root}: has split folders (${top.join(', ')}) but no "${split}" (see --split)`);
  const base = splitDir ? join(root, splitDir) : root;
  const rows: { file: string; names: string[] }[] = [];
  for (const c of subdirs(base)) for (const f of collectImages([join(base, c)])) rows.push({ file: f, names: [c] });
  return fromRows(rows, meta, base, onBad);
}

/** Reads a labelled set for a model (see the file comment for the sources). */
export function loadLabelled(source: string, meta: ModelMeta, opts: LabelOptions = {}): Labelled {
  if (!existsSync(source)) throw new Error(`--labels ${source}: no such file or folder`);
  const split = opts.split ?? 'test';
  const onBad = opts.onBadImage ?? 'fail';
  if (statSync(source).isDirectory()) return fromFolder(source, meta, split, onBad);
  if (/\.npz$/i.test(source)) return fromNpz(source, meta, split);
  if (/\.csv$/i.test(source)) return fromCsv(source, meta, onBad);
  throw new Error(`--labels ${source}: expected a .npz (MedMNIST layout), a .csv (image,label) or a folder of class folders`);
}

export interface EvaluateResult {
  model: string;
  labels: string;
  split?: SplitName;
  meta: ModelMeta;
  evaluation: Evaluation;
  skipped: Labelled['skipped'];
  /** probabilities [n * C] in the model's class order */
  probs: Float32Array;
}

/** Scores a model file against a labelled set. */
export async function evaluateModelFile(modelPath: string, source: string, opts: LabelOptions & { batchSize?: number } = {}): Promise<EvaluateResult> {
  await rk.init();
  const file = await loadSafetensors(modelPath);
  const meta = readModelMeta(file.metadata, modelPath);
  const data = loadLabelled(source, meta, opts);
  if (data.n === 0) throw new Error(`--labels ${source}: no images to evaluate`);
  const model = buildModel(meta, 0);
  try {
    copyCheckedWeights(model, file, modelPath);
    const { logits } = await predictLogits(model, meta, { images: data.images, n: data.n }, { batchSize: opts.batchSize ?? 64 });
    const probs = probabilities(logits, meta.classes.length, meta.task === 'multilabel');
    const evaluation = evaluateProbs(probs, data.labels, meta.task, meta.classes);
    return { model: modelPath, labels: source, split: /\.npz$/i.test(source) ? (opts.split ?? 'test') : undefined, meta, evaluation, skipped: data.skipped, probs };
  } finally {
    model.dispose();
  }
}
