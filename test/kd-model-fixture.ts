// Test helper: a model file as kd/train.ts saves it (weights + "roskd" metadata), built from a
// fresh initialisation; optionally with the classifier zeroed and its bias set, so every input
// gets exactly the given logits (evaluation fixtures with known answers).
import { writeFileSync } from 'node:fs';
import * as rk from '../engine/index.ts';
import { saveSafetensors, type HostTensor } from '../engine/node/safetensors-file.ts';
import { buildModel, metadataStrings, modelTensors, type ModelMeta } from '../kd/model-file.ts';
import { encodePng } from '../kd/data/image.ts';

export interface FixtureModel {
  arch?: string;
  width?: number;
  classes: string[];
  task?: ModelMeta['task'];
  size?: number;
  seed?: number;
  /** every input gets these logits (the last linear layer's weight zeroed, its bias set) */
  constantLogits?: number[];
}

export function fixtureMeta(o: FixtureModel): ModelMeta {
  const size = o.size ?? 16;
  return {
    format: 'roskd-model', version: 1, arch: o.arch ?? 'resnet18',
    options: { numClasses: o.classes.length, inChannels: 1, smallInput: true, width: o.width ?? 0.0625 },
    task: o.task ?? (o.classes.length === 2 ? 'binary' : 'multiclass'), classes: o.classes, mean: [0.5], std: [0.25],
    channels: 1, height: size, width: size, role: 'student', method: 'ce', dataset: 'fixture',
  };
}

export async function writeFixtureModel(path: string, o: FixtureModel): Promise<ModelMeta> {
  const meta = fixtureMeta(o);
  const model = buildModel(meta, o.seed ?? 7);
  try {
    const t = new Map<string, rk.Tensor | HostTensor>();
    modelTensors(model, '', t);
    if (o.constantLogits) {
      const K = o.classes.length;
      // the classifier: the last 2-D parameter with K rows, and its bias
      const w = [...t.entries()].filter(([, v]) => v.shape.length === 2 && v.shape[0] === K).at(-1);
      if (!w) throw new Error('fixture: no classifier weight found');
      const stem = w[0].replace(/weight$/, '');
      t.set(w[0], { dtype: 'F32', shape: [...w[1].shape], data: new Float32Array(w[1].shape[0] * w[1].shape[1]) });
      t.set(`${stem}bias`, { dtype: 'F32', shape: [K], data: Float32Array.from(o.constantLogits) });
    }
    await saveSafetensors(path, t, metadataStrings(meta));
  } finally {
    model.dispose();
  }
  return meta;
}

/** A grey PNG of random pixels (seeded). */
export function writeRandomPng(path: string, size: number, seed: number): Uint8Array {
  let s = seed * 2654435761 + 1;
  const px = Uint8Array.from({ length: size * size }, () => ((s = (s * 1103515245 + 12345) >>> 0), s >>> 24));
  writeFileSync(path, encodePng(px, size, size, 1));
  return px;
}
