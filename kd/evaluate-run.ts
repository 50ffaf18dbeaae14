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
import { HEALTH_RULE, teacherHealth, usableTeachers } from './teacher-health.ts';

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
    const teacherRows = rows.filter((r) => r.role === 'teacher');
    const health = teacherSection(teacherRows, ds.task === 'multilabel', o.dropCollapsedTeachers);
    if (health) extra.unshift(health.section);
    const chooserCounts: Record<string, number[]> = {};
    if (o.methods.includes('roskd') && teacherRows.length === o.teachers && o.teacherPool === 'all' && health && health.active.length) {
      // replay the (deterministic) draws to report how often each teacher was used
      const n = ds.train.n;
      const B = Math.min(o.batchSize, n);
      const steps = Math.max(1, Math.floor(n / B));
      const scores = health.active.map((i) => (teacherRows[i].val ? scoreOf(teacherRows[i].val!, o.selectBy) : 0));
      const ch = new TeacherChooser('roskd', health.active.length, { seed: hashSeed(o.seed, 'draw', 'roskd'), probs: teacherProbabilities(o.teacherWeighting, scores), perBatch: Math.min(o.teachersPerBatch, health.active.length) });
      const counts = new Array(o.teachers).fill(0);
      for (let e = 1; e <= o.studentEpochs; e++) for (let s = 0; s < steps; s++) for (const t of ch.choose(e, s)) counts[health.active[t]]++;
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

/** The report's teacher-health section (kd/teacher-health.ts), and the teachers the students used. */
function teacherSection(teachers: ModelRow[], multilabel: boolean, drop: boolean): { section: ExtraSection; active: number[] } | null {
  if (!teachers.length || teachers.some((r) => !r.val)) return null;
  const health = teachers.map((r) => teacherHealth(r.val!, multilabel));
  let active: number[];
  try {
    active = usableTeachers(health, drop);
  } catch {
    active = [];
  }
  const p = (v: number | null) => (v !== null && Number.isFinite(v) ? (100 * v).toFixed(1) : '-');
  return {
    active,
    section: {
      title: 'Teacher health (validation, best epoch)',
      columns: ['val AUC', 'val macro-F1 %', 'majority-class macro-F1 %', 'most predicted class %', 'collapsed', 'used by kd/avgkd/roskd', 'why'],
      rows: teachers.map((r, i) => ({
        model: `${r.name} (${r.arch})`,
        values: [Number.isFinite(health[i].auc) ? health[i].auc.toFixed(3) : '-', p(health[i].f1), p(health[i].majorityF1), p(health[i].topPredictedFraction), health[i].collapsed ? 'COLLAPSED' : 'no', active.includes(i) ? 'yes' : 'no', health[i].reasons.join('; ') || '-'],
      })),
      notes: [
        `Collapsed = one class predicted for >= ${100 * HEALTH_RULE.oneClassFraction}% of the validation images, or val AUC <= ${0.5 + HEALTH_RULE.aucMargin}, or val macro-F1 <= the majority-class predictor's + ${100 * HEALTH_RULE.f1Margin} points (multi-label: the AUC rule only). ${drop ? 'Collapsed teachers were left out of kd, avgkd and roskd (--drop-collapsed-teachers).' : 'Every teacher was used (--drop-collapsed-teachers leaves collapsed ones out).'}`,
      ],
      json: health,
    },
  };
}
