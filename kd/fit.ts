// The generic epoch loop: trains ONE model with cross-entropy or a KD loss on noisy labels,
// validates every epoch on clean labels, keeps the best epoch's weights, and makes every step
// of that recoverable:
//  - a checkpoint (model + optimizer + EMA + extra state + loop position, checkpoint.ts) is
//    written after every epoch and on Ctrl-C / an injected abort, so `--resume` continues exactly
//    where the run stopped (all randomness is derived from (seed, model, epoch, step), so a
//    resumed run replays the same shuffles, augmentations and teacher draws);
//  - a non-finite loss stops before the optimizer step, naming model/epoch/step, and leaves
//    the last good checkpoint untouched; so do non-finite weights or BN statistics found when
//    a checkpoint or model is about to be written (exit 3, as for the loss);
//  - a resume must use the batch size and epoch count the checkpoint was made with;
//  - a finished model leaves its final .safetensors (best-epoch weights, metadata for predict)
//    and a done record, and is skipped by later calls.
// Everything it stores goes through a RunStore; it imports no node:* module.
import * as rk from '../engine/index.ts';
import { Rng, permutation } from '../engine/rng.ts';
import type { Dataset } from './data/dataset.ts';
import { makeBatch, type Augment } from './data/batch.ts';
import type { RunStore } from './run-store.ts';
import type { Scores, SelectBy } from './metrics.ts';
import { scoreOf } from './metrics.ts';
import { evaluateModel } from './inference.ts';
import { loadWeights, saveModel, NonFiniteError, type Module } from './model-file.ts';
import { UsageError } from './cli.ts';
import { readCheckpoint, writeCheckpoint, type ExtraState } from './checkpoint.ts';
import { copyWeights, emaUpdate } from './ema.ts';
import { lrAt, makeOptimizer, type OptimConfig } from './optim-setup.ts';
import { InterruptedError, NanLossError, isInterruptRequested, enterTraining, leaveTraining, type TrainHooks } from './interrupt.ts';
import { Progress, fmtNum, fmtPct } from './progress.ts';

export interface SoftTargetRequest {
  /** training-set indices of the batch samples */
  idx: Int32Array;
  epoch: number;
  step: number;
  /** the (augmented, normalised) input batch, for online teachers */
  x: rk.Tensor;
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
  selectBy: SelectBy;
  /** 0 = no EMA; else the decay of the evaluated weight average */
  ema: number;
  /** KD: T and alpha, with soft-target logits per batch (null = plain CE for that batch) */
  kd?: { T: number; alpha: number; targets(req: SoftTargetRequest): Promise<Float32Array | null> };
  extra?: ExtraState;
  /** metadata stored in the final .safetensors (architecture, options, classes, normalisation) */
  metadata: Record<string, string>;
  finalFile: string;
  run: RunStore;
  resume: boolean;
  /** the option that sets `epochs`, for messages (default --epochs) */
  epochsOption?: string;
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
  /** the run's batch size and epoch count (absent in checkpoints of older versions) */
  batchSize?: number;
  epochs?: number;
}

/** Optimizer steps per epoch for n training images: drop_last, so every batch has the same size (BN). */
export function stepsPerEpochOf(n: number, batchSize: number): number {
  return Math.max(1, Math.floor(n / Math.min(batchSize, Math.max(1, n))));
}

/**
 * Trains spec.model to completion (or resumes it), returning its history and best epoch. On
 * return the model holds the best epoch's weights (EMA weights when --ema is on).
 */
export async function trainModel(spec: TrainSpec): Promise<TrainResult> {
  const { run, name, ds, progress } = spec;
  const doneFile = run.doneFile(name);
  // ---- finished before: load it and report
  if (run.exists(doneFile) && run.exists(spec.finalFile)) {
    const done = run.readJson<TrainResult>(doneFile)!;
    await loadWeights(spec.model, run, spec.finalFile);
    progress.modelDone(name);
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
  const stepsPerEpoch = stepsPerEpochOf(n, spec.batchSize);

  const ema = spec.ema > 0 ? (spec.makeModel ?? (() => { throw new Error('--ema needs makeModel'); }))() : null;
  if (ema) copyWeights(ema, spec.model);
  const opt = makeOptimizer(spec.model.parameters(), spec.optim);
  const st: LoopState = { epoch: 1, step: 0, lossSum: 0, lossCount: 0, imagesEpoch: 0, secsEpoch: 0, bestEpoch: 0, bestScore: -Infinity, history: [], secs: 0, images: 0, optimStep: 0, batchSize: spec.batchSize, epochs: spec.epochs };
  let resumedFrom: TrainResult['resumedFrom'];

  // ---- resume
  if (run.exists(ckptFile)) {
    if (!spec.resume)
      throw new Error(`${run.root} holds an interrupted checkpoint of ${name} (${ckptFile}): pass --resume to continue it, or delete the file to start ${name} over`);
    Object.assign(st, await readCheckpoint<LoopState>(run, ckptFile, { model: spec.model, ema, opt, extra: spec.extra }));
    // the batch size fixes the steps per epoch and every per-step random stream; the epoch count
    // fixes the LR schedule: a resume with others would silently train another run
    const keep = (flag: string, was: number | undefined, now: number) => {
      if (was !== undefined && was !== now) throw new UsageError(`${flag} ${now} differs from ${was} in ${name}'s checkpoint ${ckptFile}: a resume continues the run as it was started; resume with ${flag} ${was}, or delete the checkpoint to start ${name} over`);
    };
    keep('--batch-size', st.batchSize, spec.batchSize);
    keep(spec.epochsOption ?? '--epochs', st.epochs, spec.epochs);
    resumedFrom = { epoch: st.epoch, step: st.step };
    // lines of epochs the resume redoes (written before a crash, after the checkpoint) would be duplicates
    run.resetMetrics(name, st.epoch);
    progress.log(`${name}: resuming at epoch ${st.epoch}, step ${st.step}/${stepsPerEpoch}`);
  } else {
    run.resetMetrics(name);
    run.remove(bestFile);
  }

  // which checkpoint is on disk, for the stop messages: end of epoch E (step 0 of E + 1) or epoch E step S
  let ckptAt = resumedFrom ? { ...resumedFrom } : null;
  const ckptLabel = (): string => (!ckptAt ? '' : ckptAt.step === 0 ? `end of epoch ${ckptAt.epoch - 1}` : `epoch ${ckptAt.epoch}, step ${ckptAt.step}/${stepsPerEpoch}`);
  const lastGood = (): string => (ckptAt ? `the last good checkpoint ${ckptFile} (${ckptLabel()}) is kept` : 'no checkpoint had been written yet');
  // a write that finds a non-finite parameter or buffer stops the run as a NaN loss does (nothing written)
  const guarded = async (where: string, write: () => Promise<void>): Promise<void> => {
    try {
      await write();
    } catch (e) {
      if (!(e instanceof NonFiniteError)) throw e;
      throw new NanLossError(`${name}: non-finite weights ${where}: ${e.message}; not saved; ${lastGood()}. Lower the learning rate or check the data.`);
    }
  };
  const saveCheckpoint = (where: string): Promise<void> =>
    guarded(where, async () => {
      await writeCheckpoint(run, ckptFile, { model: spec.model, ema, opt, extra: spec.extra, loop: st, name });
      ckptAt = { epoch: st.epoch, step: st.step };
    });

  const evalModel = ema ?? spec.model;
  let stopping = false;
  if (isInterruptRequested()) throw new InterruptedError(`${name}: interrupted before it started${run.exists(ckptFile) ? ` (checkpoint ${ckptFile} kept)` : ''}; continue with --resume`);
  const totalSteps = spec.epochs * stepsPerEpoch;
  const timer = { t0: performance.now(), stepsAtStart: (st.epoch - 1) * stepsPerEpoch + st.step };
  enterTraining();
  try {
    for (; st.epoch <= spec.epochs; st.epoch++, st.step = 0, st.lossSum = 0, st.lossCount = 0, st.imagesEpoch = 0, st.secsEpoch = 0) {
      const epoch = st.epoch;
      const order = permutation(n, Rng.keyed('shuffle', spec.seed, name, epoch));
      spec.model.train();
      let tStep = performance.now();
      for (; st.step < stepsPerEpoch; ) {
        const step = st.step;
        const idx = new Int32Array(B);
        for (let k = 0; k < B; k++) idx[k] = spec.trainIdx[order[step * B + k]];
        const xs = makeBatch(ds, ds.train, idx, spec.augment, Rng.keyed('augment', spec.seed, name, epoch, step));
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
        // dropout masks from (seed, model, epoch, step), not from how many steps ran in this process: resume-exact
        spec.model.reseedDropout(Rng.keyed('dropout', spec.seed, name, epoch, step).u32());
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
          throw new NanLossError(`${name}: loss is ${lv} at epoch ${epoch}, step ${step + 1}/${stepsPerEpoch}; stopped before the optimizer step; ${lastGood()}. Lower the learning rate or check the data.`);
        }
        opt.step();
        opt.zeroGrad();
        spec.model.zeroGrad();
        st.optimStep++;
        if (ema) emaUpdate(ema, spec.model, Math.min(spec.ema, (1 + st.optimStep) / (10 + st.optimStep)));
        spec.hooks?.corruptModel?.({ model: name, epoch, step }, spec.model);
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
        if (hook === 'abort' || isInterruptRequested()) {
          if (st.step < stepsPerEpoch) {
            await saveCheckpoint(`at epoch ${epoch}, step ${st.step}/${stepsPerEpoch}`);
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
      run.appendMetrics({ model: name, epoch, step: epoch * stepsPerEpoch, loss: rec.loss, lr: rec.lr, val: { acc: scores.acc, f1: scores.f1, auc: scores.auc, loss: scores.loss }, secs: rec.secs, images: rec.images, time: new Date().toISOString() });
      const sc = scoreOf(scores, spec.selectBy);
      const improved = sc > st.bestScore || st.bestEpoch === 0;
      if (improved) {
        st.bestScore = sc;
        st.bestEpoch = epoch;
        await guarded(`after epoch ${epoch}`, () => saveModel(evalModel, run, bestFile, spec.metadata));
      }
      progress.log(
        `${name} epoch ${epoch}/${spec.epochs}: train loss ${rec.loss.toFixed(4)}  val acc ${fmtPct(scores.acc)} f1 ${fmtPct(scores.f1)} auc ${fmtNum(scores.auc)}  ${(rec.images / Math.max(rec.secs, 1e-9)).toFixed(0)} img/s${improved ? '  *best' : ''}`,
      );
      // advance the loop position before saving: a resume starts the next epoch
      const next = { ...st, epoch: epoch + 1, step: 0, lossSum: 0, lossCount: 0, imagesEpoch: 0, secsEpoch: 0 };
      Object.assign(st, next);
      await saveCheckpoint(`after epoch ${epoch}`);
      st.epoch = epoch; // the for-loop increments it
      // (an interrupt during the validation stops here too, after the epoch's checkpoint)
      if ((stopping || isInterruptRequested()) && epoch < spec.epochs)
        throw new InterruptedError(`${name}: interrupted after epoch ${epoch}; checkpoint saved to ${ckptFile} (continue with --resume)`);
    }
  } finally {
    leaveTraining();
    opt.dispose();
  }
  // ---- finished: best weights into the model, final file, done record
  const bestModel = evalModel;
  await loadWeights(bestModel, run, bestFile);
  if (bestModel !== spec.model) copyWeights(spec.model, bestModel);
  ema?.dispose();
  const best = st.history.find((h) => h.epoch === st.bestEpoch)!;
  const metadata = { ...spec.metadata, best_epoch: String(st.bestEpoch), val: JSON.stringify(best.val) };
  await guarded(`in the best epoch ${st.bestEpoch}`, () => saveModel(spec.model, run, spec.finalFile, metadata));
  const result: TrainResult = { name, bestEpoch: st.bestEpoch, bestVal: best.val, history: st.history, secs: st.secs, images: st.images, skipped: false, resumedFrom };
  run.writeJson(doneFile.slice(run.root.length + 1), result);
  progress.modelDone(name);
  for (const f of [ckptFile, bestFile]) run.remove(f);
  // interrupted during the last epoch: the model is finished and saved, stop before the next stage
  if (isInterruptRequested()) throw new InterruptedError(`${name}: interrupted in its last epoch; finished and saved to ${spec.finalFile} (continue with --resume)`);
  return result;
}
