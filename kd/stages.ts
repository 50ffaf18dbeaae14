// The RoS-KD stages themselves, shared by the command line (kd/pipeline.ts: resume, --stage, run
// directories, stage times) and the page (web/src/run-in-page.ts: an in-memory store): teachers on
// their subsets, the students of every method distilled from the stored teachers, and the test-set
// evaluation with the report. One implementation, so the page and the CLI cannot drift.
import * as rk from '../engine/index.ts';
import { hashSeed } from '../engine/rng.ts';
import { cacheTeacherLogits, type Options, type Method } from './config.ts';
import type { Augment } from './data/batch.ts';
import type { PreparedData } from './data-source.ts';
import { TeacherChooser, teacherProbabilities, bestTeacher, combineTeachers, gatherRows, TargetSmoother } from './roskd.ts';
import { trainModel, type TrainResult } from './fit.ts';
import { choosePerSample, combinePerSample, subsetMembership, teachersUsed } from './teacher-pool.ts';
import { teacherHealth, usableTeachers } from './teacher-health.ts';
import type { TrainHooks } from './interrupt.ts';
import { predictLogits } from './inference.ts';
import { scoreOf } from './metrics.ts';
import { buildModel, loadWeights, metadataStrings, modelMeta, teacherArch, teacherSeed, studentSeed, type Module } from './model-file.ts';
import type { Progress } from './progress.ts';
import type { RunStore } from './run-store.ts';
import { writeReport, type ReportData } from './report.ts';
import { evaluateRun } from './evaluate-run.ts';

export function augmentOf(o: Options): Augment {
  const affine = o.augment.includes('affine');
  return { pad: o.augment.includes('crop') ? o.cropPad : 0, hflip: o.augment.includes('flip'), rotate: affine ? 5 : 0, scale: affine ? 0.05 : 0 };
}

/** What every stage works on. */
export interface StageContext {
  o: Options;
  data: PreparedData;
  /** the teachers' training subsets (drawSubsets), one per teacher */
  subsets: Int32Array[];
  run: RunStore;
  progress: Progress;
  hooks?: TrainHooks;
  /** called once per finished model (the page counts steps and images for its run ETA) */
  onModelDone?: (name: string, r: TrainResult) => void;
}

function commonOf(c: StageContext) {
  const { o, data, run, progress, hooks } = c;
  return {
    ds: data.ds, trainLabels: data.noisy, batchSize: o.batchSize, evalBatchSize: o.evalBatchSize, augment: augmentOf(o), selectBy: o.selectBy, run, resume: o.resume, progress, hooks,
  };
}

/** Trains teachers `teacherIdx` on their subsets; each is saved to run.teacherFile(i) and disposed. */
export async function trainTeachers(c: StageContext, teacherIdx: readonly number[]): Promise<(TrainResult | null)[]> {
  const { o, run, progress, subsets } = c;
  const { ds } = c.data;
  const common = commonOf(c);
  const out: (TrainResult | null)[] = [];
  for (const i of teacherIdx) {
    const arch = teacherArch(o, i);
    const meta = modelMeta(o, ds, arch, o.teacherWidth, 'teacher');
    const model = buildModel(meta, teacherSeed(o, i));
    try {
      progress.log(`teacher ${i}: ${arch} (width ${o.teacherWidth}, ${(model.numParameters() / 1e3).toFixed(1)}k parameters) on ${subsets[i].length} images`);
      out[i] = await trainModel({
        ...common, name: `teacher-${i}`, stage: 'teachers', model, makeModel: () => buildModel(meta, teacherSeed(o, i)),
        trainIdx: subsets[i], epochs: o.teacherEpochs, epochsOption: '--teacher-epochs', seed: hashSeed(o.seed, 'teacher', i), ema: 0,
        optim: { optimizer: o.optimizer, lr: o.teacherLr, momentum: o.momentum, weightDecay: o.weightDecay, normBiasDecay: o.normBiasDecay, warmupEpochs: o.warmupEpochs, schedule: o.schedule },
        metadata: metadataStrings(meta), finalFile: run.teacherFile(i),
      });
      c.onModelDone?.(`teacher-${i}`, out[i]!);
    } finally {
      model.dispose();
    }
  }
  return out;
}

/**
 * Distils a student per method from the teachers stored in the run (all of them must be done).
 * `logitsKey(i)`: an identity of teacher i's stored file (e.g. its mtime and size) under which its
 * train-set logits are cached in the run; null keeps them in memory only.
 */
export async function trainStudents(c: StageContext, logitsKey: (i: number) => string | null = () => null): Promise<Partial<Record<Method, TrainResult>>> {
  const { o, run, progress, subsets } = c;
  const { ds } = c.data;
  const C = ds.classes.length;
  const common = commonOf(c);
  const needTeachers = o.methods.some((m) => m !== 'ce');
  const result: Partial<Record<Method, TrainResult>> = {};
  const teachers: Module[] = [];
  try {
    const teacherScores: number[] = [];
    // the teachers kd / avgkd / roskd use: all, or the healthy ones (--drop-collapsed-teachers)
    let active: number[] = [];
    if (needTeachers) {
      const missing = Array.from({ length: o.teachers }, (_, i) => i).filter((i) => !run.exists(run.teacherFile(i)) || !run.exists(run.doneFile(`teacher-${i}`)));
      if (missing.length)
        throw new Error(`the student stage needs every teacher: ${missing.map((i) => `teacher-${i}.safetensors`).join(', ')} missing in ${run.root}; run --stage teachers (or --teacher-index i for each) first`);
      const health = Array.from({ length: o.teachers }, (_, i) => teacherHealth(run.readJson<TrainResult>(run.doneFile(`teacher-${i}`))!.bestVal, ds.task === 'multilabel'));
      for (const [i, h] of health.entries()) if (h.collapsed) progress.log(`teacher-${i}: COLLAPSED (${h.reasons.join('; ')})${o.dropCollapsedTeachers ? '; left out (--drop-collapsed-teachers)' : '; still used (pass --drop-collapsed-teachers to leave it out)'}`);
      active = usableTeachers(health, o.dropCollapsedTeachers);
      for (const i of active) {
        const m = buildModel(modelMeta(o, ds, teacherArch(o, i), o.teacherWidth, 'teacher'), 0);
        await loadWeights(m, run, run.teacherFile(i));
        m.eval();
        teachers.push(m);
        const done = run.readJson<TrainResult>(run.doneFile(`teacher-${i}`))!;
        teacherScores.push(scoreOf(done.bestVal, o.selectBy));
      }
    }
    // Teacher logits on the unaugmented train set: computed once (and cached in the run when keyed).
    // (cached[j], teachers[j], teacherScores[j] and seen[j] are those of teacher active[j])
    const cached: Float32Array[] = [];
    if (needTeachers && cacheTeacherLogits(o)) {
      for (const [j, i] of active.entries()) {
        // keyed by the teacher file's identity: a retrained teacher never reuses stale logits
        const key = logitsKey(i);
        const f = key === null ? null : run.checkpointPath(`teacher-${i}.train-logits.${key}.f32`);
        const b = f ? run.readBytes(f) : null;
        if (b && b.byteLength === ds.train.n * C * 4) {
          cached.push(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
          continue;
        }
        const tl = performance.now();
        const { logits } = await predictLogits(teachers[j], ds, ds.train, { batchSize: o.evalBatchSize, onBatch: (d, n) => progress.update({ stage: 'student', model: `teacher-${i} logits`, epoch: 1, epochs: 1, step: d, steps: n, loss: 0, ips: d / Math.max(1e-3, (performance.now() - tl) / 1000), eta: ((n - d) * (performance.now() - tl)) / 1000 / Math.max(d, 1) }) });
        if (f) run.writeText(f, new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength));
        cached.push(logits);
        progress.log(`teacher-${i}: ${f ? 'cached ' : ''}logits on ${ds.train.n} training images (${((performance.now() - tl) / 1000).toFixed(1)} s)`);
      }
    }
    const probs = needTeachers ? teacherProbabilities(o.teacherWeighting, teacherScores) : undefined;
    const best = needTeachers ? bestTeacher(teacherScores) : 0;
    const K = active.length;
    const perBatch = Math.min(o.teachersPerBatch, Math.max(K, 1));
    if (needTeachers && perBatch < o.teachersPerBatch) progress.log(`--teachers-per-batch ${o.teachersPerBatch} > ${K} usable teachers: ${perBatch} per batch`);
    const seen = needTeachers ? subsetMembership(active.map((i) => subsets[i]), ds.train.n) : [];
    // logits of local teacher j for the batch: cached rows, or an online forward pass
    const batchRows = async (j: number, idx: Int32Array, x: rk.Tensor): Promise<Float32Array> => {
      if (cached.length) return gatherRows(cached[j], C, idx);
      const out = rk.noGrad(() => teachers[j].call(x));
      const a = (await out.toArray()) as Float32Array;
      out.dispose();
      return a;
    };
    for (const method of o.methods) {
      const meta = modelMeta(o, ds, o.student, o.studentWidth, 'student', method);
      const model = buildModel(meta, studentSeed(o));
      const name = `student-${method}`;
      const chooser = new TeacherChooser(method, K, { seed: hashSeed(o.seed, 'draw', method), probs, perBatch: method === 'roskd' ? perBatch : 1, best });
      const pooled = method === 'roskd' && o.teacherPool === 'out-of-subset';
      const smoother = method !== 'ce' && o.smoothing > 0 ? new TargetSmoother(ds.train.n, C, o.smoothing, o.temperature, ds.task === 'multilabel') : null;
      try {
        progress.log(`${name}: ${o.student} (width ${o.studentWidth}, ${(model.numParameters() / 1e3).toFixed(1)}k parameters)${method === 'kd' ? `, teacher ${active[best]}` : method === 'roskd' ? `, ${perBatch} of ${K} teachers per ${pooled ? 'sample, among those that did not train on it' : 'batch'} (${o.teacherWeighting})` : ''}${K < o.teachers && method !== 'ce' ? `; teachers ${active.join(', ')} only` : ''}`);
        result[method] = await trainModel({
          ...common, name, stage: 'student', model, makeModel: () => buildModel(meta, studentSeed(o)),
          trainIdx: Int32Array.from({ length: ds.train.n }, (_, i) => i), epochs: o.studentEpochs, epochsOption: '--student-epochs', seed: hashSeed(o.seed, 'student'), ema: o.ema,
          optim: { optimizer: o.optimizer, lr: o.studentLr, momentum: o.momentum, weightDecay: o.weightDecay, normBiasDecay: o.normBiasDecay, warmupEpochs: o.warmupEpochs, schedule: o.schedule },
          metadata: metadataStrings(meta), finalFile: run.studentFile(method),
          kd: method === 'ce' ? undefined : {
            T: o.temperature, alpha: o.alpha,
            targets: async ({ idx, epoch, step, x }) => {
              let zt: Float32Array;
              if (pooled) {
                const choices = choosePerSample(idx, epoch, step, { seed: hashSeed(o.seed, 'draw', 'roskd-pool'), seen, probs, perSample: perBatch });
                const rows = new Map<number, Float32Array>();
                for (const j of teachersUsed(choices)) rows.set(j, await batchRows(j, idx, x));
                zt = combinePerSample(rows, choices, C, o.temperature, ds.task === 'multilabel');
              } else {
                const rows: Float32Array[] = [];
                for (const j of chooser.choose(epoch, step)) rows.push(await batchRows(j, idx, x));
                zt = combineTeachers(rows, idx.length, C, o.temperature, ds.task === 'multilabel');
              }
              return smoother ? smoother.apply(idx, zt) : zt;
            },
          },
          extra: smoother ? {
            save: () => new Map([['q', { dtype: 'F32', shape: [smoother.q.length], data: smoother.q }], ['seen', { dtype: 'U8', shape: [smoother.seen.length], data: smoother.seen }]]),
            load: (t) => {
              const q = t.get('q');
              const s = t.get('seen');
              if (q) smoother.q.set(q.data as Float32Array);
              if (s) smoother.seen.set(s.data as Uint8Array);
            },
          } : undefined,
        });
        c.onModelDone?.(name, result[method]!);
      } finally {
        model.dispose();
      }
    }
  } finally {
    for (const t of teachers) t.dispose();
  }
  return result;
}

/**
 * The test-set evaluation of every stored model and the report (report.md, report.json, plots);
 * `beforeWrite` may add to the report first (the CLI's stage times).
 */
export async function evaluateAndReport(c: StageContext, print: (line: string) => void, beforeWrite?: (report: ReportData) => void): Promise<ReportData> {
  const report = await evaluateRun(c.o, c.data.ds, c.data, c.run, c.progress, print);
  beforeWrite?.(report);
  writeReport(c.run, report);
  return report;
}
