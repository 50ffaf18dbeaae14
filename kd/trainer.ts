// The generic epoch loop: trains ONE model with cross-entropy or a KD loss on noisy labels,
// validates every epoch on clean labels, keeps the best epoch's weights, and makes every step
// of that recoverable:
//  - a checkpoint (model + optimizer + EMA + extra state + loop position) is written atomically
//    after every epoch and on Ctrl-C / an injected abort, so `--resume` continues exactly where
//    the run stopped (all randomness is derived from (seed, model, epoch, step), so a resumed
//    run replays the same shuffles, augmentations and teacher draws);
//  - a non-finite loss stops before the optimizer step, naming model/epoch/step, and leaves
//    the last good checkpoint untouched;
//  - a finished model leaves its final .safetensors (best-epoch weights, metadata for predict)
//    and a done record, and is skipped by later calls.
import * as rk from '../engine/index.ts';
import { saveSafetensors, loadSafetensors, copyIntoModel, type HostTensor, type SafetensorsFile } from '../engine/io/safetensors.ts';
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import type { Dataset, Split } from './data/dataset.ts';
import { Rng, permutation } from './data/rng.ts';
import type { RunDir } from './run-dir.ts';
import * as metrics from './metrics.ts';
import { augmentInto, drawAugment, normaliseInto, type AugmentOptions } from './data/augment.ts';

export type Module = rk.nn.Module;

// ---------------------------------------------------------------- progress

export interface ProgressInfo {
  stage: string;
  model: string;
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss: number;
  ips: number;
  eta: number;
}

const fmtSecs = (s: number): string => (!Number.isFinite(s) ? '?' : s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`);

/** A live status line on a TTY (rewritten in place), plain lines otherwise, or nothing. */
export class Progress {
  private live = '';
  private lastDraw = 0;
  private lastPlain = 0;
  constructor(
    readonly mode: 'tty' | 'plain' | 'none',
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly print: (line: string) => void = (l) => console.log(l),
  ) {}

  static auto(mode: 'auto' | 'tty' | 'plain' | 'none'): Progress {
    return new Progress(mode === 'auto' ? (process.stderr.isTTY ? 'tty' : 'plain') : mode);
  }

  update(p: ProgressInfo): void {
    if (this.mode === 'none') return;
    const now = performance.now();
    const line = `[${p.stage}] ${p.model} epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} ${p.ips.toFixed(0)} img/s ETA ${fmtSecs(p.eta)}`;
    if (this.mode === 'tty') {
      if (now - this.lastDraw < 150 && p.step !== p.steps) return;
      this.lastDraw = now;
      this.live = line;
      this.out.write(`\r\x1b[2K${line.slice(0, (this.out.columns ?? 160) - 1)}`);
    } else if (now - this.lastPlain > 30_000) {
      // plain output (logs, CI): one line every 30 s at most, plus the per-epoch lines
      this.lastPlain = now;
      this.print(line);
    }
  }

  /** A permanent line (clears the live line first). */
  log(line: string): void {
    if (this.mode === 'none') return;
    this.clear();
    this.print(line);
  }

  clear(): void {
    if (this.mode === 'tty' && this.live) {
      this.out.write('\r\x1b[2K');
      this.live = '';
    }
  }
}

// ---------------------------------------------------------------- errors and interruption

export class NanLossError extends Error {
  override name = 'NanLossError';
}
export class InterruptedError extends Error {
  override name = 'InterruptedError';
}

let interruptRequested = false;
/** Asks the running loop to checkpoint and stop after the current step (Ctrl-C does this). */
export function requestInterrupt(): void {
  interruptRequested = true;
}
export function clearInterrupt(): void {
  interruptRequested = false;
}
export const isInterruptRequested = (): boolean => interruptRequested;
let trainingLoops = 0;
/** True while an epoch loop runs (a Ctrl-C then waits for the step's checkpoint; kd/supervise.ts). */
export const isTraining = (): boolean => trainingLoops > 0;

/** Test hooks (never set from the command line). */
export interface TrainHooks {
  /** called after every optimizer step; returning 'abort' acts like Ctrl-C */
  onStep?(info: { model: string; epoch: number; step: number }): void | 'abort';
  /** may overwrite the normalised input batch or its labels in place (fault injection) before the forward */
  corruptBatch?(info: { model: string; epoch: number; step: number }, x: Float32Array, labels: Int32Array | Float32Array): void;
}

// ---------------------------------------------------------------- scores

export interface ClassScores {
  name: string;
  support: number;
  precision: number;
  recall: number;
  f1: number;
  auc: number;
}

export interface Scores {
  acc: number;
  f1: number;
  auc: number;
  /** mean clean-label cross-entropy (BCE for multi-label) */
  loss: number;
  n: number;
  perClass: ClassScores[];
  /** confusion[true][pred] (single-label) */
  confusion?: number[][];
}

/** Probabilities from logits: softmax rows, or sigmoid elements for multi-label. */
export function probabilities(logits: Float32Array, C: number, multilabel: boolean): Float32Array {
  const p = new Float32Array(logits.length);
  if (multilabel) {
    for (let i = 0; i < p.length; i++) p[i] = 1 / (1 + Math.exp(-logits[i]));
    return p;
  }
  for (let o = 0; o < p.length; o += C) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, logits[o + c]);
    let z = 0;
    for (let c = 0; c < C; c++) z += p[o + c] = Math.exp(logits[o + c] - m);
    for (let c = 0; c < C; c++) p[o + c] /= z;
  }
  return p;
}

/** Accuracy, macro-F1, macro AUC (one-vs-rest; per label for multi-label) and a per-class table (kd/metrics.ts). */
export function scoreProbs(probs: Float32Array, labels: Int32Array | Uint8Array, task: Dataset['task'], C: number, classes: readonly string[]): Scores {
  const m = metrics.evaluate(probs, labels, C, task, [...classes]);
  return {
    acc: m.accuracy, f1: m.macroF1, auc: m.auc, loss: NaN, n: probs.length / C,
    perClass: m.perClass.map((r) => ({ name: r.name, support: r.support, precision: r.precision, recall: r.recall, f1: r.f1, auc: r.auc })),
    confusion: m.confusion,
  };
}

export function scoreLogits(logits: Float32Array, labels: Int32Array | Uint8Array, task: Dataset['task'], C: number, classes: readonly string[]): Scores {
  return scoreProbs(probabilities(logits, C, task === 'multilabel'), labels, task, C, classes);
}

// ---------------------------------------------------------------- batches

/** Training augmentation (kd/data/augment.ts): random crop after zero padding, flip, small rotation/scale. */
export type Augment = AugmentOptions;
export const NO_AUGMENT: Augment = {};

const augmenting = (a: Augment): boolean => (a.pad ?? 0) > 0 || !!a.hflip || (a.rotate ?? 0) > 0 || (a.scale ?? 0) > 0;

/**
 * Normalised float NCHW batch from uint8 images, (v/255 - mean_c) / std_c, augmented with
 * parameters drawn from `rng` when `aug` asks for it.
 */
export function makeBatch(ds: Pick<Dataset, 'channels' | 'height' | 'width' | 'mean' | 'std'>, split: Pick<Split, 'images'>, idx: ArrayLike<number>, aug: Augment = NO_AUGMENT, rng?: Rng): Float32Array {
  const { channels: C, height: H, width: W } = ds;
  const px = C * H * W;
  const out = new Float32Array(idx.length * px);
  const on = rng && augmenting(aug);
  for (let b = 0; b < idx.length; b++) {
    const src = split.images.subarray(idx[b] * px, idx[b] * px + px);
    if (on) augmentInto(src, C, H, W, drawAugment(aug, rng), ds.mean, ds.std, out, b * px);
    else normaliseInto(src, C, H * W, ds.mean, ds.std, out, b * px);
  }
  return out;
}

/** Logits of a model on split images (eval mode, no grad), [N, numClasses] row-major. */
export async function predictLogits(
  model: Module,
  ds: Pick<Dataset, 'channels' | 'height' | 'width' | 'mean' | 'std'>,
  split: Pick<Split, 'images' | 'n'>,
  opts: { batchSize?: number; idx?: ArrayLike<number>; onBatch?: (done: number, total: number) => void } = {},
): Promise<{ logits: Float32Array; C: number }> {
  const n = opts.idx ? opts.idx.length : split.n;
  const bs = opts.batchSize ?? 256;
  const wasTraining = model.training;
  model.eval();
  const parts: Float32Array[] = [];
  let C = 0;
  try {
    for (let s = 0; s < n; s += bs) {
      const m = Math.min(bs, n - s);
      const idx = opts.idx ? Array.from({ length: m }, (_, k) => opts.idx![s + k]) : Array.from({ length: m }, (_, k) => s + k);
      const xs = makeBatch(ds, split, idx);
      const out = rk.noGrad(() =>
        rk.tidy(() => {
          const x = rk.tensor(xs, [m, ds.channels, ds.height, ds.width]);
          return model.call(x);
        }),
      );
      C = out.shape[1];
      parts.push((await out.toArray()) as Float32Array);
      out.dispose();
      opts.onBatch?.(s + m, n);
    }
  } finally {
    model.train(wasTraining);
  }
  const logits = new Float32Array(n * C);
  let o = 0;
  for (const p of parts) {
    logits.set(p, o);
    o += p.length;
  }
  return { logits, C };
}

// ---------------------------------------------------------------- optimisation

export interface OptimConfig {
  optimizer: 'sgd' | 'adamw';
  lr: number;
  momentum: number;
  weightDecay: number;
  /** weight decay of 1-D parameters (norm scales/shifts, biases); negative or absent: weightDecay */
  normBiasDecay?: number;
  warmupEpochs: number;
  schedule: 'cosine' | 'constant';
}

/** Learning rate at a fractional epoch position t in [0, epochs). */
export function lrAt(c: OptimConfig, t: number, epochs: number): number {
  if (c.warmupEpochs > 0 && t < c.warmupEpochs) return (c.lr * (t + 1e-3)) / c.warmupEpochs;
  if (c.schedule === 'constant') return c.lr;
  const span = Math.max(1e-9, epochs - c.warmupEpochs);
  const p = Math.min(1, Math.max(0, (t - c.warmupEpochs) / span));
  return 0.5 * c.lr * (1 + Math.cos(Math.PI * p));
}

export function makeOptimizer(all: rk.Tensor[], c: OptimConfig): rk.optim.Optimizer {
  // 1-D tensors are batch-norm scales/shifts and biases: their own group when they decay differently
  const own = c.normBiasDecay !== undefined && c.normBiasDecay >= 0 && c.normBiasDecay !== c.weightDecay;
  const params: rk.optim.Params = own
    ? [{ params: all.filter((p) => p.shape.length > 1) }, { params: all.filter((p) => p.shape.length <= 1), weightDecay: c.normBiasDecay }]
    : all;
  if (c.optimizer === 'adamw') return new rk.optim.AdamW(params, { lr: c.lr, weightDecay: c.weightDecay });
  return new rk.optim.SGD(params, { lr: c.lr, momentum: c.momentum, nesterov: c.momentum > 0, weightDecay: c.weightDecay });
}

/** Optimizer state for the checkpoint: tensors under optim.<key>, the rest as JSON. */
function optimizerToHost(opt: rk.optim.Optimizer, out: Map<string, HostTensor | rk.Tensor>, owned: rk.Tensor[]): unknown {
  const sd = opt.stateDict();
  for (const [k, t] of sd.tensors) {
    out.set(`optim.${k}`, t);
    owned.push(t);
  }
  return { hyper: sd.hyper, steps: sd.steps, keys: [...sd.tensors.keys()] };
}

function optimizerFromHost(opt: rk.optim.Optimizer, json: { hyper: rk.optim.Hyper; steps: number[]; keys: string[] }, file: SafetensorsFile, source: string): void {
  const tensors = new Map<string, rk.Tensor>();
  try {
    for (const k of json.keys) {
      const t = file.tensors.get(`optim.${k}`);
      if (!t) throw new Error(`${source}: checkpoint lacks optimizer tensor optim.${k}`);
      tensors.set(k, rk.keep(rk.tensor(t.data as Float32Array, t.shape, 'f32')));
    }
    try {
      opt.loadStateDict({ hyper: json.hyper, steps: json.steps, tensors });
    } catch (e) {
      // the usual cause: parameter groups in another order (--norm-bias-decay changed since the checkpoint)
      throw new Error(`${source}: the optimizer state does not fit this run (was it started with other --optimizer or --norm-bias-decay options?): ${(e as Error).message}`);
    }
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

// ---------------------------------------------------------------- the loop

export interface SoftTargetRequest {
  /** training-set indices of the batch samples */
  idx: Int32Array;
  epoch: number;
  step: number;
  /** the (augmented, normalised) input batch, for online teachers */
  x: rk.Tensor;
}

/** Host-side state a loss keeps across steps (temporal smoothing), saved in checkpoints. */
export interface ExtraState {
  save(): Map<string, HostTensor>;
  load(tensors: Map<string, HostTensor>): void;
}

export interface TrainSpec {
  /** model key: teacher-0, student-roskd, ... (names files, metrics lines, RNG streams) */
  name: string;
  /** role in the progress line */
  stage: string;
  model: Module;
  /** builds a second, identical model (for the EMA copy) */
  makeModel?: () => Module;
  ds: Dataset;
  /** the training labels the model may see (noisy), full train-set length */
  trainLabels: Int32Array | Uint8Array;
  /** training-set indices this model trains on (a teacher's subset) */
  trainIdx: Int32Array;
  epochs: number;
  batchSize: number;
  evalBatchSize: number;
  optim: OptimConfig;
  augment: Augment;
  seed: number;
  selectBy: 'auc' | 'acc' | 'f1' | 'loss';
  /** 0 = no EMA; else the decay of the evaluated weight average */
  ema: number;
  /** KD: T and alpha, with soft-target logits per batch (null = plain CE for that batch) */
  kd?: { T: number; alpha: number; targets(req: SoftTargetRequest): Promise<Float32Array | null> };
  extra?: ExtraState;
  /** metadata stored in the final .safetensors (architecture, options, classes, normalisation) */
  metadata: Record<string, string>;
  finalFile: string;
  run: RunDir;
  resume: boolean;
  progress: Progress;
  hooks?: TrainHooks;
}

export interface EpochRecord {
  epoch: number;
  loss: number;
  lr: number;
  val: Scores;
  secs: number;
  images: number;
}

export interface TrainResult {
  name: string;
  bestEpoch: number;
  bestVal: Scores;
  history: EpochRecord[];
  /** wall time spent training (summed over resumed sessions), seconds */
  secs: number;
  images: number;
  skipped: boolean;
  resumedFrom?: { epoch: number; step: number };
}

interface LoopState {
  epoch: number; // 1-based epoch in progress
  step: number; // steps of that epoch already done
  lossSum: number;
  lossCount: number;
  imagesEpoch: number;
  secsEpoch: number;
  bestEpoch: number;
  bestScore: number;
  history: EpochRecord[];
  secs: number;
  images: number;
  optimStep: number;
}

export function scoreOf(s: Scores, by: TrainSpec['selectBy']): number {
  const v = by === 'loss' ? -s.loss : by === 'auc' ? s.auc : by === 'acc' ? s.acc : s.f1;
  if (Number.isFinite(v)) return v;
  return Number.isFinite(s.acc) ? s.acc : -Infinity; // AUC undefined (one class in val)
}

/** Copies all of src's parameters and buffers into dst (same architecture). */
function copyWeights(dst: Module, src: Module): void {
  const s = new Map([...src.namedParameters(), ...src.namedBuffers()]);
  for (const [n, t] of [...dst.namedParameters(), ...dst.namedBuffers()]) rk.copyInto(t, s.get(n)!);
  const si = new Map(src.namedIntBuffers());
  for (const [n, b] of dst.namedIntBuffers()) b.value = si.get(n)!.value;
}

/** ema <- d ema + (1 - d) model for parameters; buffers copied. */
function emaUpdate(ema: Module, model: Module, d: number): void {
  const m = new Map(model.namedParameters());
  rk.noGrad(() =>
    rk.tidy(() => {
      for (const [n, e] of ema.namedParameters()) rk.axpyInPlace(e, rk.sub(m.get(n)!, e), 1 - d);
      const b = new Map(model.namedBuffers());
      for (const [n, e] of ema.namedBuffers()) rk.copyInto(e, b.get(n)!);
    }),
  );
  const mi = new Map(model.namedIntBuffers());
  for (const [n, x] of ema.namedIntBuffers()) x.value = mi.get(n)!.value;
}

function modelTensors(model: Module, prefix: string, out: Map<string, rk.Tensor | HostTensor>): void {
  for (const [n, t] of [...model.namedParameters(), ...model.namedBuffers()]) out.set(prefix + n, t);
  for (const [n, b] of model.namedIntBuffers()) out.set(prefix + n, { dtype: 'I64', shape: [], data: BigInt64Array.of(BigInt(b.value)) });
}

function subFile(file: SafetensorsFile, prefix: string): SafetensorsFile {
  const tensors = new Map<string, HostTensor>();
  for (const [n, t] of file.tensors) if (n.startsWith(prefix)) tensors.set(n.slice(prefix.length), t);
  return { tensors, metadata: null };
}

/** Loads a model-only .safetensors (e.g. a finished teacher) into `model`. */
export async function loadWeights(model: Module, path: string): Promise<SafetensorsFile> {
  const file = await loadSafetensors(path);
  copyIntoModel(model, file, path);
  return file;
}

/** Saves a model with metadata (atomic). */
export async function saveModel(model: Module, path: string, metadata: Record<string, string>): Promise<void> {
  const t = new Map<string, rk.Tensor | HostTensor>();
  modelTensors(model, '', t);
  await saveSafetensors(path, t, metadata);
}

function softmaxRowsCE(logits: Float32Array, labels: Int32Array | Uint8Array, C: number, multilabel: boolean): number {
  // Mean clean-label loss on validation (CE, or BCE per element for multi-label).
  const n = logits.length / C;
  let s = 0;
  for (let i = 0; i < n; i++) {
    if (multilabel) {
      for (let c = 0; c < C; c++) {
        const x = logits[i * C + c];
        s += (Math.max(x, 0) - x * labels[i * C + c] + Math.log1p(Math.exp(-Math.abs(x)))) / C;
      }
    } else {
      let m = -Infinity;
      for (let c = 0; c < C; c++) m = Math.max(m, logits[i * C + c]);
      let z = 0;
      for (let c = 0; c < C; c++) z += Math.exp(logits[i * C + c] - m);
      s += m + Math.log(z) - logits[i * C + labels[i]];
    }
  }
  return s / Math.max(1, n);
}

/** Validation/test scores of a model on a split with its (clean) labels. */
export async function evaluateModel(model: Module, ds: Dataset, split: Split, batchSize: number, onBatch?: (d: number, t: number) => void): Promise<{ scores: Scores; logits: Float32Array }> {
  const { logits, C } = await predictLogits(model, ds, split, { batchSize, onBatch });
  const scores = scoreLogits(logits, split.labels, ds.task, C, ds.classes);
  scores.loss = softmaxRowsCE(logits, split.labels, C, ds.task === 'multilabel');
  return { scores, logits };
}

/**
 * Trains spec.model to completion (or resumes it), returning its history and best epoch. On
 * return the model holds the best epoch's weights (EMA weights when --ema is on).
 */
export async function trainModel(spec: TrainSpec): Promise<TrainResult> {
  const { run, name, ds, progress } = spec;
  const doneFile = run.doneFile(name);
  // ---- finished before: load it and report
  if (existsSync(doneFile) && existsSync(spec.finalFile)) {
    const done = JSON.parse(readFileSync(doneFile, 'utf8')) as TrainResult;
    await loadWeights(spec.model, spec.finalFile);
    progress.log(`${name}: already trained (best epoch ${done.bestEpoch}, ${spec.finalFile}); skipped`);
    return { ...done, skipped: true };
  }
  const ckptFile = run.checkpointFile(name);
  const bestFile = ckptFile.replace(/\.ckpt\.safetensors$/, '.best.safetensors');
  const multilabel = ds.task === 'multilabel';
  const C = ds.classes.length;
  const n = spec.trainIdx.length;
  if (n === 0) throw new Error(`${name}: no training images (empty subset)`);
  const B = Math.min(spec.batchSize, n);
  const stepsPerEpoch = Math.max(1, Math.floor(n / B)); // drop_last: equal-size batches for BN

  const ema = spec.ema > 0 ? (spec.makeModel ?? (() => { throw new Error('--ema needs makeModel'); }))() : null;
  if (ema) copyWeights(ema, spec.model);
  const opt = makeOptimizer(spec.model.parameters(), spec.optim);
  const st: LoopState = { epoch: 1, step: 0, lossSum: 0, lossCount: 0, imagesEpoch: 0, secsEpoch: 0, bestEpoch: 0, bestScore: -Infinity, history: [], secs: 0, images: 0, optimStep: 0 };
  let resumedFrom: TrainResult['resumedFrom'];

  // ---- resume
  if (existsSync(ckptFile)) {
    if (!spec.resume)
      throw new Error(`${run.root} holds an interrupted checkpoint of ${name} (${ckptFile}): pass --resume to continue it, or delete the file to start ${name} over`);
    const file = await loadSafetensors(ckptFile);
    const meta = JSON.parse(file.metadata?.roskd_state ?? 'null') as { loop: LoopState; optim: Parameters<typeof optimizerFromHost>[1] } | null;
    if (!meta) throw new Error(`${ckptFile}: not a roskd checkpoint (no roskd_state metadata)`);
    copyIntoModel(spec.model, subFile(file, 'model.'), ckptFile);
    if (ema) copyIntoModel(ema, subFile(file, 'ema.'), ckptFile);
    optimizerFromHost(opt, meta.optim, file, ckptFile);
    spec.extra?.load(subFile(file, 'extra.').tensors);
    Object.assign(st, meta.loop);
    resumedFrom = { epoch: st.epoch, step: st.step };
    progress.log(`${name}: resuming at epoch ${st.epoch}, step ${st.step}/${stepsPerEpoch}`);
  } else {
    run.resetMetrics(name);
    if (existsSync(bestFile)) unlinkSync(bestFile);
  }

  const saveCheckpoint = async (): Promise<void> => {
    const t = new Map<string, rk.Tensor | HostTensor>();
    modelTensors(spec.model, 'model.', t);
    if (ema) modelTensors(ema, 'ema.', t);
    const owned: rk.Tensor[] = [];
    try {
      const optJson = optimizerToHost(opt, t, owned);
      for (const [k, v] of spec.extra?.save() ?? []) t.set(`extra.${k}`, v);
      await saveSafetensors(ckptFile, t, { roskd_state: JSON.stringify({ loop: st, optim: optJson }), model: name });
    } finally {
      for (const x of owned) x.dispose();
    }
  };

  const evalModel = ema ?? spec.model;
  let stopping = false;
  if (interruptRequested) throw new InterruptedError(`${name}: interrupted before it started${existsSync(ckptFile) ? ` (checkpoint ${ckptFile} kept)` : ''}; continue with --resume`);
  const totalSteps = spec.epochs * stepsPerEpoch;
  const timer = { t0: performance.now(), stepsAtStart: (st.epoch - 1) * stepsPerEpoch + st.step };
  trainingLoops++;
  try {
    for (; st.epoch <= spec.epochs; st.epoch++, st.step = 0, st.lossSum = 0, st.lossCount = 0, st.imagesEpoch = 0, st.secsEpoch = 0) {
      const epoch = st.epoch;
      const order = permutation(n, new Rng('shuffle', spec.seed, name, epoch));
      spec.model.train();
      let tStep = performance.now();
      for (; st.step < stepsPerEpoch; ) {
        const step = st.step;
        const idx = new Int32Array(B);
        for (let k = 0; k < B; k++) idx[k] = spec.trainIdx[order[step * B + k]];
        const xs = makeBatch(ds, ds.train, idx, spec.augment, new Rng('augment', spec.seed, name, epoch, step));
        let ys: Int32Array | Float32Array;
        if (multilabel) {
          const lab = spec.trainLabels as Uint8Array;
          ys = new Float32Array(B * C);
          for (let k = 0; k < B; k++) for (let c = 0; c < C; c++) ys[k * C + c] = lab[idx[k] * C + c];
        } else {
          const lab = spec.trainLabels as Int32Array;
          ys = Int32Array.from(idx, (i) => lab[i]);
        }
        spec.hooks?.corruptBatch?.({ model: name, epoch, step }, xs, ys);
        opt.lr = lrAt(spec.optim, epoch - 1 + step / stepsPerEpoch, spec.epochs);
        const x = rk.tensor(xs, [B, ds.channels, ds.height, ds.width]);
        let lossT: rk.Tensor;
        try {
          const zt = spec.kd ? await spec.kd.targets({ idx, epoch, step, x }) : null;
          lossT = rk.tidy(() => {
            const logits = spec.model.call(x);
            const kd = spec.kd;
            let loss: rk.Tensor;
            if (multilabel) {
              const targets = rk.tensor(ys, [B, C]);
              loss = zt && kd ? rk.kdLossMultiLabel(logits, rk.tensor(zt, [B, C]), targets, { T: kd.T, alpha: kd.alpha }) : rk.kdLossMultiLabel(logits, logits, targets, { T: 1, alpha: 0 });
            } else {
              const y = rk.tensor(ys, [B], 'i32');
              // plain CE is the KD loss with alpha = 0 (the teacher input is then unused)
              loss = zt && kd ? rk.kdLoss(logits, rk.tensor(zt, [B, C]), y, { T: kd.T, alpha: kd.alpha }) : rk.kdLoss(logits, logits, y, { T: 1, alpha: 0 });
            }
            loss.backward();
            return loss;
          });
        } finally {
          x.dispose();
        }
        const lv = await lossT.item();
        lossT.dispose();
        if (!Number.isFinite(lv)) {
          spec.model.zeroGrad();
          const last = existsSync(ckptFile) ? `the last good checkpoint ${ckptFile} (epoch ${st.epoch - 1}${st.step ? `, step ${st.step}` : ''}) is kept` : 'no checkpoint had been written yet';
          throw new NanLossError(`${name}: loss is ${lv} at epoch ${epoch}, step ${step + 1}/${stepsPerEpoch}; stopped before the optimizer step; ${last}. Lower the learning rate or check the data.`);
        }
        opt.step();
        opt.zeroGrad();
        spec.model.zeroGrad();
        st.optimStep++;
        if (ema) emaUpdate(ema, spec.model, Math.min(spec.ema, (1 + st.optimStep) / (10 + st.optimStep)));
        st.step++;
        st.lossSum += lv * B;
        st.lossCount += B;
        st.imagesEpoch += B;
        st.images += B;
        const now = performance.now();
        const dt = (now - tStep) / 1000;
        tStep = now;
        st.secsEpoch += dt;
        st.secs += dt;
        const doneSteps = (epoch - 1) * stepsPerEpoch + st.step;
        const rate = (doneSteps - timer.stepsAtStart) / Math.max(1e-3, (now - timer.t0) / 1000);
        progress.update({ stage: spec.stage, model: name, epoch, epochs: spec.epochs, step: st.step, steps: stepsPerEpoch, loss: st.lossSum / st.lossCount, ips: rate * B, eta: (totalSteps - doneSteps) / Math.max(rate, 1e-9) });
        const hook = spec.hooks?.onStep?.({ model: name, epoch, step: st.step });
        if (hook === 'abort' || interruptRequested) {
          if (st.step < stepsPerEpoch) {
            await saveCheckpoint();
            throw new InterruptedError(`${name}: interrupted at epoch ${epoch}, step ${st.step}/${stepsPerEpoch}; checkpoint saved to ${ckptFile} (continue with --resume)`);
          }
          stopping = true; // the epoch is complete: validate and checkpoint it, then stop below
        }
      }
      // ---- end of epoch: validate, keep the best, checkpoint
      const t0 = performance.now();
      const { scores } = await evaluateModel(evalModel, ds, ds.val, spec.evalBatchSize);
      const rec: EpochRecord = { epoch, loss: st.lossSum / Math.max(1, st.lossCount), lr: opt.lr, val: scores, secs: st.secsEpoch, images: st.imagesEpoch };
      st.secs += (performance.now() - t0) / 1000;
      st.history.push(rec);
      run.appendMetrics({ model: name, epoch, loss: rec.loss, lr: rec.lr, val: { acc: scores.acc, f1: scores.f1, auc: scores.auc, loss: scores.loss }, secs: rec.secs, images: rec.images });
      const sc = scoreOf(scores, spec.selectBy);
      const improved = sc > st.bestScore || st.bestEpoch === 0;
      if (improved) {
        st.bestScore = sc;
        st.bestEpoch = epoch;
        await saveModel(evalModel, bestFile, spec.metadata);
      }
      progress.log(
        `${name} epoch ${epoch}/${spec.epochs}: train loss ${rec.loss.toFixed(4)}  val acc ${fmtPct(scores.acc)} f1 ${fmtPct(scores.f1)} auc ${fmtNum(scores.auc)}  ${(rec.images / Math.max(rec.secs, 1e-9)).toFixed(0)} img/s${improved ? '  *best' : ''}`,
      );
      // advance the loop position before saving: a resume starts the next epoch
      const next = { ...st, epoch: epoch + 1, step: 0, lossSum: 0, lossCount: 0, imagesEpoch: 0, secsEpoch: 0 };
      Object.assign(st, next);
      await saveCheckpoint();
      st.epoch = epoch; // the for-loop increments it
      // (an interrupt during the validation stops here too, after the epoch's checkpoint)
      if ((stopping || interruptRequested) && epoch < spec.epochs)
        throw new InterruptedError(`${name}: interrupted after epoch ${epoch}; checkpoint saved to ${ckptFile} (continue with --resume)`);
    }
  } finally {
    trainingLoops--;
    opt.dispose();
  }
  // ---- finished: best weights into the model, final file, done record
  const bestModel = evalModel;
  await loadWeights(bestModel, bestFile);
  if (bestModel !== spec.model) copyWeights(spec.model, bestModel);
  ema?.dispose();
  const best = st.history.find((h) => h.epoch === st.bestEpoch)!;
  const metadata = { ...spec.metadata, best_epoch: String(st.bestEpoch), val: JSON.stringify(best.val) };
  await saveModel(spec.model, spec.finalFile, metadata);
  const result: TrainResult = { name, bestEpoch: st.bestEpoch, bestVal: best.val, history: st.history, secs: st.secs, images: st.images, skipped: false, resumedFrom };
  run.writeJson(doneFile.slice(run.root.length + 1), result);
  for (const f of [ckptFile, bestFile]) if (existsSync(f)) unlinkSync(f);
  // interrupted during the last epoch: the model is finished and saved, stop before the next stage
  if (interruptRequested) throw new InterruptedError(`${name}: interrupted in its last epoch; finished and saved to ${spec.finalFile} (continue with --resume)`);
  return result;
}

export const fmtPct = (v: number): string => (Number.isFinite(v) ? (100 * v).toFixed(1) + '%' : '-');
export const fmtNum = (v: number, d = 3): string => (Number.isFinite(v) ? v.toFixed(d) : '-');
