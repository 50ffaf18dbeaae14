// Classifying images with a model file in the page, exactly as kd/classify.ts (kd/predict.ts) does
// it: metadata from the safetensors header, prepareImage (same decoders, same 'cover' resize to
// the model's input), predictLogits (the same normalisation), probabilities (the same host-side
// softmax / sigmoid). Grad-CAM (models/gradcam.ts) adds the heat map of each predicted class.
import * as rk from '../../engine/index.ts';
import { parseSafetensors, copyIntoModel } from '../../engine/io/safetensors.ts';
import { prepareImage } from '../../kd/data/image.ts';
import { makeBatch } from '../../kd/data/batch.ts';
import { predictLogits } from '../../kd/inference.ts';
import { probabilities } from '../../kd/metrics.ts';
import { buildModel, readModelMeta, type ModelMeta, type Module } from '../../kd/model-file.ts';
import { gradCam } from '../../models/gradcam.ts';
import { camToImageSize, imageFromChw, overlayHeatmap, enlarge, type Rgba } from '../../models/gradcam-render.ts';

export interface LoadedModel {
  name: string;
  meta: ModelMeta;
  model: Module;
  params: number;
}

/** A model from .safetensors bytes; errors name the file and what is wrong with it. */
export function loadModelBytes(name: string, bytes: Uint8Array): LoadedModel {
  const file = parseSafetensors(bytes, name);
  const meta = readModelMeta(file.metadata, name);
  let model: Module;
  try {
    model = buildModel(meta, 0);
  } catch (e) {
    throw new Error(`${name}: cannot build architecture ${meta.arch}: ${(e as Error).message}`);
  }
  try {
    copyIntoModel(model, file, name);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { name, meta, model, params: model.numParameters() };
}

export interface PagePrediction {
  file: string;
  prediction: string | string[];
  confidence: number;
  probabilities: Record<string, number>;
  /** the model's input with the Grad-CAM heat map of the predicted class, or null where it failed */
  cam: Rgba | null;
  camError?: string;
}

/** Predictions for image files; unreadable images land in `skipped` with the reason. */
export async function classifyBytes(m: LoadedModel, files: { name: string; bytes: Uint8Array }[], opts: { threshold?: number; cam?: boolean } = {}): Promise<{ predictions: PagePrediction[]; skipped: { file: string; reason: string }[] }> {
  const { meta, model } = m;
  const px = meta.channels * meta.height * meta.width;
  const good: { name: string; chw: Uint8Array }[] = [];
  const skipped: { file: string; reason: string }[] = [];
  for (const f of files) {
    try {
      good.push({ name: f.name, chw: prepareImage(f.bytes, f.name, { height: meta.height, width: meta.width, channels: meta.channels as 1 | 3, fit: 'cover' }) });
    } catch (e) {
      const msg = (e as Error).message;
      skipped.push({ file: f.name, reason: msg.startsWith(`${f.name}: `) ? msg.slice(f.name.length + 2) : msg });
    }
  }
  if (good.length === 0) return { predictions: [], skipped };
  const all = new Uint8Array(good.length * px);
  good.forEach((g, i) => all.set(g.chw, i * px));
  const C = meta.classes.length;
  const multilabel = meta.task === 'multilabel';
  const { logits } = await predictLogits(model, meta, { images: all, n: good.length }, { batchSize: 64 });
  const p = probabilities(logits, C, multilabel);
  const thr = opts.threshold ?? 0.5;
  const predictions: PagePrediction[] = [];
  for (const [i, g] of good.entries()) {
    const row = Array.from(p.subarray(i * C, (i + 1) * C));
    const top = row.indexOf(Math.max(...row));
    let cam: Rgba | null = null;
    let camError: string | undefined;
    if (opts.cam !== false) {
      try {
        cam = await camOverlay(m, g.chw, top);
      } catch (e) {
        camError = (e as Error).message;
      }
    }
    predictions.push({
      file: g.name,
      prediction: multilabel ? meta.classes.filter((_, k) => row[k] >= thr) : meta.classes[top],
      confidence: row[top],
      probabilities: Object.fromEntries(meta.classes.map((c, k) => [c, row[k]])),
      cam,
      camError,
    });
  }
  return { predictions, skipped };
}

/** Grad-CAM of class k on one prepared image, blended over it, enlarged to at least 112 px. */
async function camOverlay(m: LoadedModel, chw: Uint8Array, k: number): Promise<Rgba> {
  const { meta, model } = m;
  const xs = makeBatch(meta, { images: chw }, [0]);
  const x = rk.tensor(xs, [1, meta.channels, meta.height, meta.width]);
  try {
    const r = await gradCam(model, x, { classIndex: k, activation: meta.task === 'multilabel' ? 'sigmoid' : 'softmax' });
    const heat = camToImageSize(r.maps, r.shape, 0, meta.height, meta.width);
    const over = overlayHeatmap(imageFromChw(chw, meta.channels as 1 | 3, meta.height, meta.width), heat, { alpha: 0.45 });
    const scale = Math.max(1, Math.ceil(112 / meta.width));
    return enlarge(over, scale) as Rgba;
  } finally {
    x.dispose();
  }
}

export function predictionsCsv(classes: string[], preds: PagePrediction[]): string {
  const q = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const head = ['file', 'prediction', 'confidence', ...classes.map((c) => `p(${c})`)];
  const rows = preds.map((p) => [q(p.file), q(Array.isArray(p.prediction) ? p.prediction.join('+') : p.prediction), p.confidence.toPrecision(7), ...classes.map((c) => p.probabilities[c].toPrecision(7))].join(','));
  return [head.map(q).join(','), ...rows].join('\n') + '\n';
}
