// RoS-KD end to end (what `kd/train.ts` runs): loads a (noisily labelled) dataset, trains K
// teachers on overlapping random subsets, distils students with ce / kd / avgkd / roskd, evaluates
// everything on clean test labels (evaluate-run.ts) and writes the run directory. Every stage is
// resumable; runPipeline is also the programmatic entry (tests and the study use it in-process).
import { readFileSync, statSync } from 'node:fs';
import * as rk from '../engine/index.ts';
import { parseArgs, resolveOptions, optionsJson, UsageError, RUN_IDENTITY, SPECS, NOISE_DEFINITIONS, upgradeStoredOptions, type Options, type Method, type Parsed } from './config.ts';
import { RunDir, defaultRunName } from './run-dir.ts';
import { prepareData } from './data-source.ts';
import { drawSubsets, subsetStats } from './roskd.ts';
import { stepsPerEpochOf, type TrainResult } from './fit.ts';
import type { TrainHooks } from './interrupt.ts';
import { Progress, fmtNum, formatDownload, type PlanItem } from './progress.ts';
import type { ReportData } from './report.ts';
import { trainTeachers, trainStudents, evaluateAndReport, type StageContext } from './stages.ts';

export { augmentOf } from './stages.ts';

export interface PipelineHooks extends TrainHooks {
  /** where lines go (default console.log) */
  print?: (line: string) => void;
}

export interface PipelineResult {
  run: RunDir;
  opts: Options;
  report: ReportData | null;
  teachers: (TrainResult | null)[];
  students: Partial<Record<Method, TrainResult>>;
}

interface StageTimes {
  [stage: string]: { secs: number; sessions: number };
}

function checkIdentity(run: RunDir, o: Options): void {
  const prev = run.readJson<{ options: Record<string, unknown>; noiseDefinitions?: number }>('config.json');
  if (!prev) return;
  const stored = upgradeStoredOptions(prev.options, prev.noiseDefinitions);
  for (const key of RUN_IDENTITY) {
    const flag = SPECS.find((s) => s.key === key)!.flag;
    const a = JSON.stringify(stored[flag]);
    const b = JSON.stringify(o[key]);
    const legacy = key === 'noiseType' && prev.noiseDefinitions === undefined && prev.options[flag] === 'symmetric' ? ` (its "symmetric" was written before the noise types were renamed and means what is now flip-to-other)` : '';
    if (a !== b) throw new UsageError(`--${flag} ${b} differs from ${a} in ${run.path('config.json')}${legacy}: the run directory was made with other data/teacher settings; use another --out or the same options`);
  }
}

function versions(): Record<string, string> {
  const pkg = (p: string): string => {
    try {
      return (JSON.parse(readFileSync(new URL(p, import.meta.url), 'utf8')) as { version: string }).version;
    } catch {
      return 'unknown';
    }
  };
  let commit = 'unknown';
  try {
    const head = readFileSync(new URL('../.git/HEAD', import.meta.url), 'utf8').trim();
    commit = head.startsWith('ref: ') ? readFileSync(new URL(`../.git/${head.slice(5)}`, import.meta.url), 'utf8').trim() : head;
  } catch {}
  return { roskd: pkg('../package.json'), webgpu: pkg('../node_modules/webgpu/package.json'), node: process.version, commit };
}

function addStageTime(run: RunDir, stage: string, secs: number): void {
  // under a lock: concurrent jobs (teachers, per-method students) share stages.json
  run.updateJson<StageTimes>('stages.json', (prev) => {
    const t = prev ?? {};
    t[stage] = { secs: (t[stage]?.secs ?? 0) + secs, sessions: (t[stage]?.sessions ?? 0) + 1 };
    return t;
  });
}

/** Runs the stages selected by the options. Throws UsageError / NanLossError / InterruptedError / Error. */
export async function runPipeline(input: readonly string[] | Partial<Options> | Parsed, hooks: PipelineHooks = {}): Promise<PipelineResult> {
  const parsed = Array.isArray(input) ? parseArgs(input as string[]) : 'opts' in (input as object) ? (input as Parsed) : resolveOptions(input as Partial<Options>);
  const o = parsed.opts;
  const print = hooks.print ?? ((l: string) => console.log(l));
  const progress = new Progress(o.progress === 'auto' ? (process.stderr.isTTY ? 'tty' : 'plain') : o.progress, process.stderr, print);
  const run = new RunDir(o.out || defaultRunName(o.preset), { tensorboard: o.tensorboard, what: o.out ? '--out' : 'run directory' });
  run.cleanTemp();
  checkIdentity(run, o);
  const gpu = await rk.init();
  print(`run directory: ${run.root}`);
  print(`adapter: ${gpu.info.description || gpu.info.device} (${gpu.info.backend})`);
  print(`image size: ${parsed.sizeNote ?? `${o.size} px`}`);

  // ---- data, noise, subsets
  const tData = performance.now();
  const data = await prepareData(o, run, (s) => progress.log(s), (p) => progress.status(formatDownload(p)));
  const { ds } = data;
  const C = ds.classes.length;
  const realised = (data.noise as { realisedRate?: number }).realisedRate;
  print(`data: ${ds.name} (${ds.task}, ${C} classes: ${ds.classes.join(', ')}), ${ds.channels}x${ds.height}x${ds.width}, train/val/test ${ds.train.n}/${ds.val.n}/${ds.test.n}; noise ${o.noiseType} ${o.noiseRate}${realised !== undefined ? ` (realised ${fmtNum(realised)})` : ''} [${((performance.now() - tData) / 1000).toFixed(1)} s]`);
  const subsets = drawSubsets(ds.train.n, o.teachers, o.subsetFraction, o.seed);
  const stats = subsetStats(subsets, ds.train.n);
  run.writeJson('subsets.json', { fraction: o.subsetFraction, n: ds.train.n, seed: o.seed, sizes: stats.sizes, pairOverlap: stats.pairOverlap, unseen: stats.unseen, seenByAll: stats.seenByAll, subsets: subsets.map((s) => Array.from(s)) });
  for (const [i, s] of subsets.entries()) if (s.length < 2) throw new Error(`teacher ${i}: subset of ${s.length} image(s) is too small to train on (--subset-fraction ${o.subsetFraction} of ${ds.train.n})`);
  // config.json only once the data loaded and the subsets are usable: a run that failed before
  // training leaves none to refuse its corrected rerun (another process may have written it meanwhile)
  // created once, atomically: several jobs (cluster array tasks) may get here together
  if (run.exists('config.json') || !run.writeJsonOnce('config.json', { options: optionsJson(o), noiseDefinitions: NOISE_DEFINITIONS, versions: versions(), adapter: gpu.info, created: new Date().toISOString(), argv: Array.isArray(input) ? input : null })) checkIdentity(run, o);

  const ctx: StageContext = { o, data, subsets, run, progress, hooks };
  const result: PipelineResult = { run, opts: o, report: null, teachers: [], students: {} };
  const stages = o.stage === 'all' ? ['teachers', 'student', 'eval'] : [o.stage];
  const teacherIdx = o.teacherIndex >= 0 ? [o.teacherIndex] : Array.from({ length: o.teachers }, (_, i) => i);
  // the whole run's models and steps, for the run line (model i of n, overall ETA)
  const plan: PlanItem[] = [];
  if (stages.includes('teachers')) for (const i of teacherIdx) plan.push({ model: `teacher-${i}`, stage: 'teachers', steps: o.teacherEpochs * stepsPerEpochOf(subsets[i].length, o.batchSize) });
  if (stages.includes('student')) for (const m of o.methods) plan.push({ model: `student-${m}`, stage: 'student', steps: o.studentEpochs * stepsPerEpochOf(ds.train.n, o.batchSize) });
  progress.setPlan(plan);

  // ---- stage: teachers
  if (stages.includes('teachers')) {
    const t0 = performance.now();
    result.teachers = await trainTeachers(ctx, teacherIdx);
    addStageTime(run, o.teacherIndex >= 0 ? `teachers[${o.teacherIndex}]` : 'teachers', (performance.now() - t0) / 1000);
  }

  // ---- stage: student(s)
  if (stages.includes('student')) {
    const t0 = performance.now();
    result.students = await trainStudents(ctx, (i) => {
      // cached teacher logits are keyed by the teacher file's identity: a retrained teacher never reuses stale ones
      const st = statSync(run.teacherFile(i));
      return `${Math.round(st.mtimeMs)}-${st.size}`;
    });
    addStageTime(run, 'student', (performance.now() - t0) / 1000);
  }

  // ---- stage: eval (+ report)
  if (stages.includes('eval')) {
    const t0 = performance.now();
    const report = await evaluateAndReport(ctx, print, (r) => {
      addStageTime(run, 'eval', (performance.now() - t0) / 1000);
      r.stages = run.readJson<StageTimes>('stages.json') ?? {};
    });
    result.report = report;
    print('');
    print(report.tableText);
    print(`\nreport: ${run.path('report.md')}`);
  } else if (o.stage === 'teachers' && o.teacherIndex >= 0) print(`teacher ${o.teacherIndex} done; when all ${o.teachers} are, run --stage student --out ${run.root}`);
  return result;
}
