// The eval stage of a run: every finished teacher and student on the clean test labels, the
// extra evaluations of --attacks (evaluators.ts), and the data of the report (report.ts).
import { hashSeed } from '../engine/rng.ts';
import { optionsJson, UsageError, type Options, type Method } from './config.ts';
import { type Dataset, classCounts } from './data/dataset.ts';
import type { PreparedData } from './data-source.ts';
import { TeacherChooser, teacherProbabilities } from './roskd.ts';
import type { TrainResult } from './fit.ts';
import { evaluateModel } from './inference.ts';
import { scoreOf } from './metrics.ts';
import { buildModel, loadWeights, modelMeta, teacherArch } from './model-file.ts';
import { Progress, fmtNum, fmtPct } from './progress.ts';
import type { RunStore } from './run-store.ts';
import type { ModelRow, ReportData, ExtraSection } from './report.ts';
import { resolveEvaluators, type EvalContext } from './evaluators.ts';

/** Test-set evaluation of every finished model in the run (and the extra evaluations). */
export async function evaluateRun(o: Options, ds: Dataset, data: PreparedData, run: RunStore, progress: Progress, print: (s: string) => void): Promise<ReportData> {
  let extraEvals: ReturnType<typeof resolveEvaluators>;
  try {
    extraEvals = resolveEvaluators(o.attacks);
  } catch (err) {
    throw err instanceof RangeError ? new UsageError(err.message) : err;
  }
  const rows: ModelRow[] = [];
  const loaded: EvalContext['models'] = [];
  const entries: { name: string; role: 'teacher' | 'student'; arch: string; width: number; file: string; method?: Method; subset?: number }[] = [];
  for (let i = 0; i < o.teachers; i++) entries.push({ name: `teacher-${i}`, role: 'teacher', arch: teacherArch(o, i), width: o.teacherWidth, file: run.teacherFile(i), subset: Math.round(o.subsetFraction * ds.train.n) });
  for (const m of o.methods) entries.push({ name: `student-${m}`, role: 'student', arch: o.student, width: o.studentWidth, file: run.studentFile(m), method: m });
  const present = entries.filter((e) => run.exists(e.file));
  if (present.length === 0) throw new Error(`nothing to evaluate in ${run.root}: no teacher-*.safetensors or student-*.safetensors (run --stage teachers / student first)`);
  try {
    for (const e of present) {
      const model = buildModel(modelMeta(o, ds, e.arch, e.width, e.role), 0);
      await loadWeights(model, run, e.file);
      model.eval();
      loaded.push({ name: e.name, role: e.role, arch: e.arch, model, file: e.file });
      const done = run.readJson<TrainResult>(run.doneFile(e.name));
      const { scores } = await evaluateModel(model, ds, ds.test, o.evalBatchSize);
      rows.push({
        name: e.name, role: e.role, arch: e.arch, method: e.method, params: model.numParameters(), width: e.width, trainImages: e.role === 'teacher' ? e.subset! : ds.train.n,
        test: scores, val: done?.bestVal ?? null, bestEpoch: done?.bestEpoch ?? 0, epochs: done?.history.length ?? 0, secs: done?.secs ?? 0, images: done?.images ?? 0,
      });
      progress.log(`${e.name}: test acc ${fmtPct(scores.acc)} f1 ${fmtPct(scores.f1)} auc ${fmtNum(scores.auc)}`);
    }
    const missing = entries.filter((e) => !run.exists(e.file)).map((e) => e.name);
    const extra: ExtraSection[] = [];
    for (const ev of extraEvals) {
      progress.log(`evaluation: ${ev.title}`);
      extra.push(await ev.run({ ds, opts: o, run, models: loaded, progress }));
    }
    const chooserCounts: Record<string, number[]> = {};
    if (o.methods.includes('roskd') && rows.some((r) => r.role === 'teacher')) {
      // replay the (deterministic) draws to report how often each teacher was used
      const n = ds.train.n;
      const B = Math.min(o.batchSize, n);
      const steps = Math.max(1, Math.floor(n / B));
      const scores = rows.filter((r) => r.role === 'teacher').map((r) => (r.val ? scoreOf(r.val, o.selectBy) : 0));
      const ch = new TeacherChooser('roskd', o.teachers, { seed: hashSeed(o.seed, 'draw', 'roskd'), probs: teacherProbabilities(o.teacherWeighting, scores), perBatch: o.teachersPerBatch });
      const counts = new Array(o.teachers).fill(0);
      for (let e = 1; e <= o.studentEpochs; e++) for (let s = 0; s < steps; s++) for (const t of ch.choose(e, s)) counts[t]++;
      chooserCounts.roskd = counts;
    }
    return {
      title: `RoS-KD run: ${ds.name}, ${o.noiseType} noise ${o.noiseRate}`,
      created: new Date().toISOString(),
      options: optionsJson(o),
      dataset: { ...data.load, trainClassCounts: classCounts({ ...ds.train, labels: data.noisy }, ds.classes.length), testClassCounts: classCounts(ds.test, ds.classes.length) },
      noise: data.noise,
      classes: ds.classes,
      task: ds.task,
      rows,
      missing,
      extra,
      teacherDraws: chooserCounts,
      stages: {},
      metrics: run.readMetrics(),
      tableText: '',
      selectBy: o.selectBy,
    };
  } finally {
    for (const m of loaded) m.model.dispose();
  }
}
