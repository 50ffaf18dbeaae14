// Grad-CAM of a saved model on prepared images (what `kd/predict.ts --cam` draws): the class and
// layer options resolved against the model's metadata, the images normalised as in training, and
// models/gradcam.ts run batch by batch. Pure (no node: imports): a browser page can use it; the
// files are written by classify.ts through models/node/gradcam-files.ts.
import * as rk from '../engine/index.ts';
import type { AnyModule } from '../engine/nn/module.ts';
import { defaultCamLayer, gradCam, layerNames, type GradCamResult } from '../models/gradcam.ts';
import { makeBatch } from './data/batch.ts';
import type { ModelMeta } from './model-file.ts';

/** The class index a --cam-class value names: one of the model's class names, or an index 0..C-1. */
export function resolveCamClass(spec: string, classes: readonly string[]): number {
  const byName = classes.indexOf(spec);
  if (byName >= 0) return byName;
  const ci = classes.findIndex((c) => c.toLowerCase() === spec.toLowerCase());
  if (ci >= 0) return ci;
  if (/^\d+$/.test(spec) && Number(spec) < classes.length) return Number(spec);
  throw new RangeError(`--cam-class ${JSON.stringify(spec)}: not a class of this model; give a name (${classes.join(', ')}) or an index 0..${classes.length - 1}`);
}

/** The --cam-layer to use (the default when not given); an unknown name lists the valid ones. */
export function resolveCamLayer(model: AnyModule, arch: string, layer?: string): string {
  if (!layer) return defaultCamLayer(model);
  const names = layerNames(model);
  if (names.includes(layer)) return layer;
  // Every module name is valid; list the stages and their blocks (the useful targets), then say how many more.
  const shown = names.filter((n) => n.split('.').length <= 2);
  throw new RangeError(`--cam-layer ${JSON.stringify(layer)}: ${arch} has no module of that name (PyTorch module names, as in named_modules()). Valid names include: ${shown.join(', ')}${names.length > shown.length ? `, and ${names.length - shown.length} deeper ones (e.g. ${names.find((n) => n.split('.').length > 2)})` : ''}; default ${defaultCamLayer(model)}`);
}

export interface CamOptions {
  /** module name (default: the architecture's last convolutional stage) */
  layer?: string;
  /** class to explain: one for every image, or one per image (default: each image's arg-max class in the CAM's own forward pass) */
  classIndex?: number | readonly number[];
  batchSize?: number;
}

/** One image's Grad-CAM: the raw map [h, w] and the class it explains. */
export interface ImageCam {
  map: Float32Array;
  h: number;
  w: number;
  classIndex: number;
  layer: string;
}

/**
 * Grad-CAM maps of n prepared images (uint8 CHW at the model's input size, concatenated), normalised
 * with the model's mean/std; `each` receives every image's map with the batch result it came from.
 */
export async function camOfImages(model: AnyModule, meta: ModelMeta, images: Uint8Array, n: number, opts: CamOptions, each: (i: number, cam: ImageCam, batch: GradCamResult, inBatch: number) => void): Promise<void> {
  const layer = resolveCamLayer(model, meta.arch, opts.layer);
  const bs = opts.batchSize ?? 16;
  const split = { images };
  for (let s = 0; s < n; s += bs) {
    const m = Math.min(bs, n - s);
    const x = rk.tensor(makeBatch(meta, split, Array.from({ length: m }, (_, k) => s + k)), [m, meta.channels, meta.height, meta.width]);
    try {
      const ci = opts.classIndex;
      const classIndex = typeof ci === 'object' ? ci.slice(s, s + m) : ci;
      const r = await gradCam(model, x, { layer, classIndex, activation: meta.task === 'multilabel' ? 'sigmoid' : 'softmax' });
      const [, h, w] = r.shape;
      for (let k = 0; k < m; k++) each(s + k, { map: r.maps.slice(k * h * w, (k + 1) * h * w), h, w, classIndex: r.classIndex[k], layer }, r, k);
    } finally {
      x.dispose();
    }
  }
}
