// Classifying image files with a model saved by kd/train.ts (what kd/predict.ts prints): the
// architecture, its options, the classes, the input size and the normalisation all come from the
// file's safetensors __metadata__, so nothing else is needed.
import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import * as rk from '../engine/index.ts';
import { loadSafetensors } from '../engine/node/safetensors-file.ts';
import { prepareImage } from './data/image.ts';
import { collectImages } from './data/node-files.ts';
import { predictLogits } from './inference.ts';
import { probabilities } from './metrics.ts';
import { buildModel, copyCheckedWeights, readModelMeta, type ModelMeta } from './model-file.ts';
import { camOfImages, resolveCamClass } from './cam.ts';
import { imageFromChw } from '../models/gradcam-render.ts';
import { writeCamFiles } from '../models/node/gradcam-files.ts';

export interface Prediction {
  file: string;
  /** predicted class (single-label) or the labels with p >= threshold (multi-label) */
  prediction: string | string[];
  confidence: number;
  probabilities: Record<string, number>;
  /** with --cam: the files written and what they explain */
  cam?: { png: string; npy: string; class: string; classIndex: number; layer: string };
}

export interface CamRequest {
  /** output folder */
  dir: string;
  /** PyTorch module name of the target layer (default: the last convolutional stage) */
  layer?: string;
  /** class name or index to explain (default: each image's predicted class) */
  className?: string;
}

export interface PredictResult {
  model: string;
  meta: ModelMeta;
  predictions: Prediction[];
  skipped: { file: string; reason: string }[];
}

export async function predictFiles(modelPath: string, inputs: string[], opts: { onBadImage?: 'skip' | 'fail'; batchSize?: number; threshold?: number; cam?: CamRequest } = {}): Promise<PredictResult> {
  await rk.init();
  const file = await loadSafetensors(modelPath);
  const meta = readModelMeta(file.metadata, modelPath);
  const camClass = opts.cam?.className !== undefined ? resolveCamClass(opts.cam.className, meta.classes) : undefined;
  const files = collectImages(inputs);
  if (files.length === 0) throw new Error(`no PNG/JPEG images among ${inputs.join(', ')}`);
  const px = meta.channels * meta.height * meta.width;
  const images: Uint8Array[] = [];
  const good: string[] = [];
  const skipped: PredictResult['skipped'] = [];
  for (const f of files) {
    try {
      images.push(prepareImage(readFileSync(f), f, { height: meta.height, width: meta.width, channels: meta.channels as 1 | 3, fit: 'cover' }));
      good.push(f);
    } catch (e) {
      const msg = (e as Error).message;
      const reason = msg.startsWith(`${f}: `) ? msg.slice(f.length + 2) : msg;
      if ((opts.onBadImage ?? 'fail') === 'fail') throw new Error(`unreadable image ${f}: ${reason} (use --on-bad-image skip to go on without it)`);
      skipped.push({ file: f, reason });
    }
  }
  const model = buildModel(meta, 0);
  try {
    copyCheckedWeights(model, file, modelPath);
    const all = new Uint8Array(good.length * px);
    images.forEach((im, i) => all.set(im, i * px));
    const C = meta.classes.length;
    const predictions: Prediction[] = [];
    if (good.length) {
      const { logits } = await predictLogits(model, meta, { images: all, n: good.length }, { batchSize: opts.batchSize ?? 64 });
      const multilabel = meta.task === 'multilabel';
      const p = probabilities(logits, C, multilabel);
      const thr = opts.threshold ?? 0.5;
      good.forEach((f, i) => {
        const row = Array.from(p.subarray(i * C, (i + 1) * C));
        const top = row.indexOf(Math.max(...row));
        const probs = Object.fromEntries(meta.classes.map((c, k) => [c, row[k]]));
        const prediction = multilabel ? meta.classes.filter((_, k) => row[k] >= thr) : meta.classes[top];
        predictions.push({ file: f, prediction, confidence: row[top], probabilities: probs });
      });
      // by default each map explains the class the table shows (not a re-derived arg-max, which a
      // near tie could flip between the two forward passes)
      if (opts.cam) await writeCams(model, meta, all, good, predictions, opts.cam, camClass ?? predictions.map((q) => meta.classes.indexOf(topClass(q))));
    }
    return { model: modelPath, meta, predictions, skipped };
  } finally {
    model.dispose();
  }
}

/** The most probable class of a prediction (multi-label: the top label, even below the threshold). */
function topClass(p: Prediction): string {
  const e = Object.entries(p.probabilities);
  return e.reduce((a, b) => (b[1] > a[1] ? b : a))[0];
}

/** Grad-CAM files for every image: <dir>/<file stem>.cam.png and .cam.npy (stems made unique). */
async function writeCams(model: ReturnType<typeof buildModel>, meta: ModelMeta, all: Uint8Array, files: string[], predictions: Prediction[], cam: CamRequest, classIndex: number | number[]): Promise<void> {
  const used = new Map<string, number>();
  const stems = files.map((f) => {
    const stem = basename(f, extname(f));
    const k = (used.get(stem) ?? 0) + 1;
    used.set(stem, k);
    return k === 1 ? stem : `${stem}-${k}`;
  });
  const px = meta.channels * meta.height * meta.width;
  await camOfImages(model, meta, all, files.length, { layer: cam.layer, classIndex }, (i, c, batch, k) => {
    const image = imageFromChw(all.subarray(i * px, (i + 1) * px), meta.channels as 1 | 3, meta.height, meta.width);
    const written = writeCamFiles(cam.dir, stems[i], image, batch, k);
    predictions[i].cam = { ...written, class: meta.classes[c.classIndex], classIndex: c.classIndex, layer: c.layer };
  });
}

export function formatTable(r: PredictResult): string {
  const cls = r.meta.classes;
  const head = ['file', 'prediction', ...cls.map((c) => `p(${c})`)];
  const body = r.predictions.map((p) => [p.file, Array.isArray(p.prediction) ? p.prediction.join('+') || '(none)' : p.prediction, ...cls.map((c) => p.probabilities[c].toFixed(3))]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  const out = [line(head), ...body.map(line)];
  for (const p of r.predictions) if (p.cam) out.push(`grad-cam ${p.file}: ${p.cam.png} (class ${p.cam.class}, layer ${p.cam.layer})`);
  for (const s of r.skipped) out.push(`skipped ${s.file}: ${s.reason}`);
  return out.join('\n');
}
