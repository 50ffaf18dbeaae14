// The RoS-KD run of kd/pipeline.ts (teachers on random subsets, then students with ce / kd /
// avgkd / roskd, then the test-set evaluation and the report) for a page: the dataset comes in
// memory, artefacts go to a MemoryStore, progress goes to callbacks. The stages are kd's own
// (kd/stages.ts, the functions pipeline.ts runs); this file only adds the page's progress and
// run ETA (the command line also handles resume, --stage and run directories).
import { hashSeed } from '../../engine/rng.ts';
import type { Method, Options } from '../../kd/config.ts';
import type { Dataset } from '../../kd/data/dataset.ts';
import { injectNoise, expectedTransition } from '../../kd/data/noise.ts';
import type { PreparedData } from '../../kd/data-source.ts';
import { drawSubsets } from '../../kd/roskd.ts';
import type { TrainResult } from '../../kd/fit.ts';
import { Progress, type ProgressInfo } from '../../kd/progress.ts';
import type { ReportData } from '../../kd/report.ts';
import { trainTeachers, trainStudents, evaluateAndReport, type StageContext } from '../../kd/stages.ts';
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
  const { ds } = data;
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
  const ctx: StageContext = {
    o: { ...o, resume: false, attacks: [] }, data, subsets, run: store, progress,
    onModelDone: (_name, r) => {
      before += current;
      current = 0;
      images += r.images;
    },
  };
  const result: PageRunResult = { report: null, teachers: [], students: {}, secs: 0, images: 0 };
  // teachers only when a method distils; the students load them back from the store, as the CLI does
  if (o.methods.some((m) => m !== 'ce')) result.teachers = (await trainTeachers(ctx, subsets.map((_, i) => i))) as TrainResult[];
  result.students = await trainStudents(ctx);
  // ---- test-set evaluation and the report kd/train.ts writes
  result.report = await evaluateAndReport(ctx, hooks.log);
  result.secs = (performance.now() - t0) / 1000;
  result.images = images;
  return result;
}
