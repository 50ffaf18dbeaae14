// The RoS-KD run of kd/pipeline.ts (teachers on random subsets, then students with ce / kd /
// avgkd / roskd, then the test-set evaluation and the report) for a page: the dataset comes in
// memory, artefacts go to a MemoryStore, progress goes to callbacks. The training itself is kd's
// own library (fit.ts, roskd.ts, evaluate-run.ts, report.ts); this file only wires it, as
// pipeline.ts does for the command line (which also handles resume, stages and run directories).
import * as rk from '../../engine/index.ts';
import { hashSeed } from '../../engine/rng.ts';
import { cacheTeacherLogits, type Method, type Options } from '../../kd/config.ts';
import type { Dataset } from '../../kd/data/dataset.ts';
import { injectNoise, expectedTransition } from '../../kd/data/noise.ts';
import type { PreparedData } from '../../kd/data-source.ts';
import { drawSubsets, TeacherChooser, teacherProbabilities, bestTeacher, combineTeachers, gatherRows, TargetSmoother } from '../../kd/roskd.ts';
import { trainModel, type TrainResult } from '../../kd/fit.ts';
import { predictLogits } from '../../kd/inference.ts';
import { scoreOf } from '../../kd/metrics.ts';
import { buildModel, metadataStrings, modelMeta, teacherArch, teacherSeed, studentSeed, type Module } from '../../kd/model-file.ts';
import { Progress, type ProgressInfo } from '../../kd/progress.ts';
import { evaluateRun } from '../../kd/evaluate-run.ts';
import { writeReport, type ReportData } from '../../kd/report.ts';
import type { Augment } from '../../kd/data/batch.ts';
import { MemoryStore } from './memory-store.ts';

/** Progress that hands every update to the page instead of a terminal. */
class PageProgress extends Progress {
  constructor(private readonly onUpdate: (p: ProgressInfo) => void, print: (l: string) => void) {
    super('plain', { write: () => true }, print);
  }
  override update(p: ProgressInfo): void {
    this.onUpdate(p);
  }
}

export interface PageRunHooks {
  log(line: string): void;
  /** every optimizer step of every model; `done`/`total` count steps of the whole run */
  progress(p: ProgressInfo & { done: number; total: number; runEta: number }): void;
}

function augmentOf(o: Options): Augment {
  const affine = o.augment.includes('affine');
  return { pad: o.augment.includes('crop') ? o.cropPad : 0, hflip: o.augment.includes('flip'), rotate: affine ? 5 : 0, scale: affine ? 0.05 : 0 };
}

/** Noisy training labels as kd/data-source.ts's prepareData makes them (same seed, same record). */
export function addNoise(o: Options, ds: Dataset, load: Record<string, unknown>): PreparedData {
  const C = ds.classes.length;
  const nopts = { type: o.noiseType, rate: o.noiseRate, seed: hashSeed(o.seed, 'label-noise') };
  const res = ds.train.labels instanceof Uint8Array ? injectNoise(ds.train.labels, C, nopts) : injectNoise(ds.train.labels, C, nopts);
  const noise: Record<string, unknown> = {
    type: o.noiseType, rate: o.noiseRate, seed: nopts.seed, task: ds.task, classes: ds.classes, realisedRate: res.realisedRate,
    flippedCount: res.flipped.reduce((a, b) => a + b, 0), transition: res.transition, counts: res.counts,
    ...(ds.task === 'multilabel' ? {} : { expectedTransition: expectedTransition(C, nopts) }),
  };
  return { ds, noisy: res.labels, noise, load };
}

export interface PageRunResult {
  report: ReportData | null;
  teachers: TrainResult[];
  students: Partial<Record<Method, TrainResult>>;
  secs: number;
  images: number;
}

/** Total optimizer steps of a run (for the whole-run ETA). */
function totalSteps(o: Options, n: number, subsets: Int32Array[]): number {
  const steps = (m: number) => Math.max(1, Math.floor(m / Math.min(o.batchSize, m)));
  const teachers = o.methods.some((m) => m !== 'ce') ? subsets.reduce((a, s) => a + o.teacherEpochs * steps(s.length), 0) : 0;
  return teachers + o.methods.length * o.studentEpochs * steps(n);
}

export async function runInPage(o: Options, data: PreparedData, store: MemoryStore, hooks: PageRunHooks): Promise<PageRunResult> {
  const { ds, noisy } = data;
  const C = ds.classes.length;
  const t0 = performance.now();
  const subsets = drawSubsets(ds.train.n, o.teachers, o.subsetFraction, o.seed);
  for (const [i, s] of subsets.entries()) if (s.length < 2) throw new Error(`teacher ${i}: subset of ${s.length} image(s) is too small to train on (subset fraction ${o.subsetFraction} of ${ds.train.n})`);
  const total = totalSteps(o, ds.train.n, subsets);
  let before = 0; // steps of finished models
  let current = 0;
  let images = 0;
  const tRun = performance.now();
  const progress = new PageProgress((p) => {
    current = (p.epoch - 1) * p.steps + p.step;
    const done = before + current;
    const rate = done / Math.max(1e-3, (performance.now() - tRun) / 1000);
    hooks.progress({ ...p, done, total, runEta: (total - done) / Math.max(rate, 1e-9) });
  }, hooks.log);
  const finish = (r: TrainResult) => {
    before += current;
    current = 0;
    images += r.images;
  };
  const common = { ds, trainLabels: noisy, batchSize: o.batchSize, evalBatchSize: o.evalBatchSize, augment: augmentOf(o), selectBy: o.selectBy, run: store, resume: false, progress };
  const optim = (lr: number) => ({ optimizer: o.optimizer, lr, momentum: o.momentum, weightDecay: o.weightDecay, normBiasDecay: o.normBiasDecay, warmupEpochs: o.warmupEpochs, schedule: o.schedule });
  const result: PageRunResult = { report: null, teachers: [], students: {}, secs: 0, images: 0 };
  const needTeachers = o.methods.some((m) => m !== 'ce');

  // ---- teachers (only when a method distils)
  const teachers: Module[] = [];
  try {
    for (let i = 0; i < (needTeachers ? o.teachers : 0); i++) {
      const arch = teacherArch(o, i);
      const meta = modelMeta(o, ds, arch, o.teacherWidth, 'teacher');
      const model = buildModel(meta, teacherSeed(o, i));
      hooks.log(`teacher ${i}: ${arch} (width ${o.teacherWidth}, ${(model.numParameters() / 1e3).toFixed(1)}k parameters) on ${subsets[i].length} images`);
      const r = await trainModel({
        ...common, name: `teacher-${i}`, stage: 'teachers', model, makeModel: () => buildModel(meta, teacherSeed(o, i)),
        trainIdx: subsets[i], epochs: o.teacherEpochs, seed: hashSeed(o.seed, 'teacher', i), ema: 0, optim: optim(o.teacherLr),
        metadata: metadataStrings(meta), finalFile: store.teacherFile(i),
      });
      finish(r);
      result.teachers.push(r);
      model.eval();
      teachers.push(model);
    }
    // ---- students
    const scores = result.teachers.map((t) => scoreOf(t.bestVal, o.selectBy));
    const cached: Float32Array[] = [];
    if (needTeachers && cacheTeacherLogits(o)) for (const t of teachers) cached.push((await predictLogits(t, ds, ds.train, { batchSize: o.evalBatchSize })).logits);
    const probs = needTeachers ? teacherProbabilities(o.teacherWeighting, scores) : undefined;
    const best = needTeachers ? bestTeacher(scores) : 0;
    for (const method of o.methods) {
      const meta = modelMeta(o, ds, o.student, o.studentWidth, 'student', method);
      const model = buildModel(meta, studentSeed(o));
      const chooser = new TeacherChooser(method, o.teachers, { seed: hashSeed(o.seed, 'draw', method), probs, perBatch: method === 'roskd' ? o.teachersPerBatch : 1, best });
      const smoother = method !== 'ce' && o.smoothing > 0 ? new TargetSmoother(ds.train.n, C, o.smoothing, o.temperature, ds.task === 'multilabel') : null;
      hooks.log(`student-${method}: ${o.student} (width ${o.studentWidth}, ${(model.numParameters() / 1e3).toFixed(1)}k parameters)`);
      try {
        const r = await trainModel({
          ...common, name: `student-${method}`, stage: 'student', model, makeModel: () => buildModel(meta, studentSeed(o)),
          trainIdx: Int32Array.from({ length: ds.train.n }, (_, i) => i), epochs: o.studentEpochs, seed: hashSeed(o.seed, 'student'), ema: o.ema,
          optim: optim(o.studentLr), metadata: metadataStrings(meta), finalFile: store.studentFile(method),
          kd: method === 'ce' ? undefined : {
            T: o.temperature, alpha: o.alpha,
            targets: async ({ idx, epoch, step, x }) => {
              const chosen = chooser.choose(epoch, step);
              const rows = cached.length
                ? chosen.map((t) => gatherRows(cached[t], C, idx))
                : await Promise.all(chosen.map(async (t) => {
                    const out = rk.noGrad(() => teachers[t].call(x));
                    const a = (await out.toArray()) as Float32Array;
                    out.dispose();
                    return a;
                  }));
              const zt = combineTeachers(rows, idx.length, C, o.temperature, ds.task === 'multilabel');
              return smoother ? smoother.apply(idx, zt) : zt;
            },
          },
        });
        finish(r);
        result.students[method] = r;
      } finally {
        model.dispose();
      }
    }
  } finally {
    for (const t of teachers) t.dispose();
  }
  // ---- test-set evaluation and the report kd/train.ts writes
  result.report = await evaluateRun({ ...o, attacks: [] }, ds, data, store, progress, hooks.log);
  writeReport(store, result.report);
  result.secs = (performance.now() - t0) / 1000;
  result.images = images;
  return result;
}
