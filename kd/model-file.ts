// A model file: the architecture, its options, classes and input normalisation travel in the
// safetensors __metadata__ ("roskd" entry), so a saved model is all predict.ts and attack.ts need.
// Building the model from that description, and saving / loading its weights.
import * as rk from '../engine/index.ts';
import { copyIntoModel, type HostTensor, type SafetensorsFile } from '../engine/io/safetensors.ts';
import { createModel } from '../models/index.ts';
import { hashSeed } from '../engine/rng.ts';
import { useSmallInput, type Method, type Options } from './config.ts';
import type { Dataset } from './data/dataset.ts';
import type { RunStore } from './run-store.ts';
import { parseJson } from './data/json.ts';

export type Module = rk.nn.Module;

export interface ModelMeta {
  format: 'roskd-model';
  version: 1;
  arch: string;
  options: { numClasses: number; inChannels: number; smallInput: boolean; width: number };
  task: Dataset['task'];
  classes: string[];
  mean: number[];
  std: number[];
  channels: number;
  height: number;
  width: number;
  role: 'teacher' | 'student';
  method?: Method;
  dataset: string;
}

/** The description of a teacher or student of a run with options o on dataset ds. */
export function modelMeta(o: Options, ds: Dataset, arch: string, width: number, role: 'teacher' | 'student', method?: Method): ModelMeta {
  return {
    format: 'roskd-model', version: 1, arch,
    options: { numClasses: ds.classes.length, inChannels: ds.channels, smallInput: useSmallInput(o), width },
    task: ds.task, classes: ds.classes, mean: ds.mean, std: ds.std, channels: ds.channels, height: ds.height, width: ds.width, role, method, dataset: ds.name,
  };
}

/** Teacher i's architecture (--teacher-archs, cycled) and the seeds of each model's initialisation. */
export const teacherArch = (o: Options, i: number): string => o.teacherArchs[i % o.teacherArchs.length];
export const teacherSeed = (o: Options, i: number): number => hashSeed(o.seed, 'teacher-init', i);
export const studentSeed = (o: Options): number => hashSeed(o.seed, 'student-init'); // same init for every method: a fair comparison

/** safetensors __metadata__ (string map): the full description under "roskd", plus readable flat keys. */
export function metadataStrings(m: ModelMeta): Record<string, string> {
  return { roskd: JSON.stringify(m), arch: m.arch, classes: m.classes.join(','), task: m.task, role: m.role };
}

export function buildModel(m: Pick<ModelMeta, 'arch' | 'options'>, seed: number): Module {
  return createModel(m.arch, { ...m.options, seed }) as unknown as Module;
}

/** Reads the model description stored by kd/train.ts in the file's metadata. */
export function readModelMeta(metadata: Record<string, string> | null, path: string): ModelMeta {
  const raw = metadata?.roskd;
  if (!raw) throw new Error(`${path}: no "roskd" entry in the safetensors __metadata__ (was it saved by kd/train.ts?); cannot tell the architecture, classes or normalisation`);
  const m = parseJson<ModelMeta>(raw, `${path}: safetensors __metadata__ entry "roskd"`);
  if (m.format !== 'roskd-model' || !m.arch || !Array.isArray(m.classes)) throw new Error(`${path}: unrecognised roskd metadata (format ${JSON.stringify(m.format)})`);
  return m;
}

/** Every parameter, buffer and integer buffer of a model under prefix + its dotted name. */
export function modelTensors(model: Module, prefix: string, out: Map<string, rk.Tensor | HostTensor>): void {
  for (const [n, t] of [...model.namedParameters(), ...model.namedBuffers()]) out.set(prefix + n, t);
  for (const [n, b] of model.namedIntBuffers()) out.set(prefix + n, { dtype: 'I64', shape: [], data: BigInt64Array.of(BigInt(b.value)) });
}

/** A NaN or infinity in a tensor that is loaded or about to be saved. */
export class NonFiniteError extends Error {
  override name = 'NonFiniteError';
  constructor(message: string, readonly tensor: string, readonly value: number) {
    super(message);
  }
}

/** The first non-finite value among float tensors: tensor name, index, value; null if all are finite. */
export function findNonFinite(tensors: Map<string, HostTensor | rk.Tensor>): { tensor: string; index: number; value: number; count: number } | null {
  for (const [name, t] of tensors) {
    if (t instanceof rk.Tensor || !(t.data instanceof Float32Array || t.data instanceof Float64Array)) continue;
    const d = t.data;
    let first = -1;
    let count = 0;
    for (let i = 0; i < d.length; i++)
      if (!Number.isFinite(d[i])) {
        if (first < 0) first = i;
        count++;
      }
    if (first >= 0) return { tensor: name, index: first, value: d[first], count };
  }
  return null;
}

/** Throws NonFiniteError naming `source` and the tensor when a float tensor holds NaN or an infinity. */
export function checkFinite(tensors: Map<string, HostTensor | rk.Tensor>, source: string): void {
  const bad = findNonFinite(tensors);
  if (bad) throw new NonFiniteError(`${source}: tensor ${bad.tensor} holds ${bad.value} (${bad.count} non-finite value${bad.count > 1 ? 's' : ''}, first at index ${bad.index})`, bad.tensor, bad.value);
}

/**
 * The one way kd/ puts stored weights into a model (predict, attack, study, resume, teacher
 * reuse): non-finite weights or BN statistics are refused, naming the file and the tensor.
 */
export function copyCheckedWeights(model: Module, file: SafetensorsFile, source: string): void {
  checkFinite(file.tensors, `${source}: refusing non-finite weights`);
  copyIntoModel(model, file, source);
}

/** Loads a model-only .safetensors (e.g. a finished teacher) from a store into `model`. */
export async function loadWeights(model: Module, store: Pick<RunStore, 'loadTensors' | 'path'>, name: string): Promise<SafetensorsFile> {
  const file = await store.loadTensors(name);
  copyCheckedWeights(model, file, store.path(name));
  return file;
}

/** f32 GPU tensors read back (all at once, to check them before they are written); the rest pass through. */
export async function toHostTensors(tensors: Map<string, rk.Tensor | HostTensor>): Promise<Map<string, rk.Tensor | HostTensor>> {
  const host = await Promise.all(
    [...tensors].map(async ([n, t]): Promise<[string, rk.Tensor | HostTensor]> => (t instanceof rk.Tensor && t.dtype === 'f32' ? [n, { dtype: 'F32', shape: [...t.shape], data: await t.toArray() }] : [n, t])),
  );
  return new Map(host);
}

/**
 * Saves a model with metadata (atomic). The host copy being written is checked first: a
 * non-finite parameter or buffer throws NonFiniteError (naming `what` and the tensor) and
 * nothing is written.
 */
export async function saveModel(model: Module, store: Pick<RunStore, 'saveTensors' | 'path'>, name: string, metadata: Record<string, string>): Promise<void> {
  const t = new Map<string, rk.Tensor | HostTensor>();
  modelTensors(model, '', t);
  const host = await toHostTensors(t);
  checkFinite(host, store.path(name));
  await store.saveTensors(name, host, metadata);
}
