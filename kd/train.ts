// RoS-KD end to end: `npx tsx kd/train.ts [options]` (see --help). Loads a (noisily labelled)
// dataset, trains K teachers on overlapping random subsets, distils students with ce / kd /
// avgkd / roskd, evaluates everything on clean test labels and writes the run directory.
// Every stage is resumable; `runPipeline` is the programmatic entry (tests use it in-process).
import { readFileSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as rk from '../engine/index.ts';
import { createModel } from '../models/index.ts';
import { parseArgs, resolveOptions, helpText, optionsJson, cacheTeacherLogits, useSmallInput, UsageError, RUN_IDENTITY, SPECS, type Options, type Method, type Parsed } from './config.ts';
import { RunDir, defaultRunName } from './run-dir.ts';
import { type Dataset, subsetSplit, classCounts } from './data/dataset.ts';
import { makeSynthetic } from './data/synthetic.ts';
import { loadMedMNIST } from './data/npz.ts';
import { loadChestXray14, loadIsic2019, loadHam10000, loadImageFolder, type LoadedDataset } from './data/folder.ts';
import { hashSeed } from './data/rng.ts';
import { injectNoise, expectedTransition } from './data/noise.ts';
import { drawSubsets, subsetStats, TeacherChooser, teacherProbabilities, bestTeacher, combineTeachers, gatherRows, TargetSmoother } from './roskd.ts';
import {
  trainModel, evaluateModel, predictLogits, loadWeights, scoreOf, Progress, NanLossError, InterruptedError, requestInterrupt, isInterruptRequested, clearInterrupt, isTraining,
  fmtPct, fmtNum, type TrainHooks, type TrainResult, type Scores, type Augment, type Module,
} from './trainer.ts';
import { supervise } from './supervise.ts';
import { writeReport, type ModelRow, type ReportData, type ExtraSection } from './report.ts';

// ---------------------------------------------------------------- extension: extra evaluations

/** What an extra evaluation (e.g. an adversarial attack from kd/attacks.ts) gets in --stage eval. */
export interface EvalContext {
  ds: Dataset;
  opts: Options;
  run: RunDir;
  /** every evaluated model, in eval mode, with its role and file */
  models: { name: string; role: 'teacher' | 'student'; arch: string; model: Module; file: string }[];
  progress: Progress;
}
export interface Evaluator {
  /** shown as the report section title */
  title: string;
  run(ctx: EvalContext): Promise<ExtraSection>;
}
const evaluators = new Map<string, (arg: string) => Evaluator>();

/** Registers `--attacks NAME[:ARG]` (kd/attacks.ts calls this for fgsm, pgd, ...). */
export function registerEvaluator(name: string, make: (arg: string) => Evaluator): void {
  evaluators.set(name, make);
}

async function resolveEvaluators(specs: string[]): Promise<Evaluator[]> {
  if (specs.length === 0) return [];
  if (evaluators.size === 0 && existsSync(new URL('./attacks.ts', import.meta.url))) {
    // kd/attacks.ts registers fgsm/pgd through the function we hand it (it must not import this module)
    const mod = (await import(new URL('./attacks.ts', import.meta.url).href)) as { registerAttackEvaluators?: (r: typeof registerEvaluator) => void };
    mod.registerAttackEvaluators?.(registerEvaluator);
  }
  return specs.map((s) => {
    const [name, ...rest] = s.split(':');
    const make = evaluators.get(name);
    if (!make) throw new UsageError(`--attacks: unknown evaluation ${JSON.stringify(name)} (registered: ${[...evaluators.keys()].join(', ') || 'none; kd/attacks.ts provides them'})`);
    return make(rest.join(':'));
  });
}

// ---------------------------------------------------------------- data

export interface PreparedData {
  ds: Dataset;
  /** noisy training labels (what every model trains on) */
  noisy: Int32Array | Uint8Array;
  noise: Record<string, unknown>;
  load: Record<string, unknown>;
}

/** Loads the dataset named by --data (see --help), applies --train-limit. */
export async function loadData(o: Options, log: (s: string) => void = () => {}): Promise<{ ds: Dataset; load: Record<string, unknown> }> {
  const t0 = performance.now();
  const spec = o.data;
  const colon = spec.indexOf(':');
  const kind = colon > 1 ? spec.slice(0, colon).toLowerCase() : '';
  const arg = colon > 1 ? spec.slice(colon + 1) : '';
  const ch: 1 | 3 | undefined = o.channels === 1 || o.channels === 3 ? o.channels : undefined;
  const common = { size: o.size, channels: ch, onBadImage: o.onBadImage, seed: o.seed, log };
  let ds: Dataset;
  let extra: Record<string, unknown> = {};
  if (spec === 'synthetic') {
    const nEval = Math.max(8, Math.ceil(o.syntheticN / 4));
    ds = makeSynthetic({ train: o.syntheticN, val: nEval, test: nEval, size: o.size, seed: o.seed, channels: ch ?? 1, difficulty: o.syntheticDifficulty });
  } else if (kind === 'chestxray14') {
    ds = await loadChestXray14({ ...common, ...(arg.toLowerCase().endsWith('.csv') ? { csv: arg } : { root: arg }) });
  } else if (kind === 'isic2019') ds = await loadIsic2019({ ...common, csv: arg });
  else if (kind === 'ham10000') ds = await loadHam10000({ ...common, csv: arg });
  else if (kind === 'folder') ds = await loadImageFolder({ ...common, root: arg });
  else if (kind) throw new UsageError(`--data: unknown source ${JSON.stringify(kind)} (synthetic, <medmnist name>, file.npz, chestxray14:, isic2019:, ham10000:, folder:)`);
  else ds = await loadMedMNIST(spec, { size: o.size, log });
  if ('load' in ds) {
    const l = (ds as LoadedDataset).load;
    extra = { source: l.source, fromCache: l.fromCache, decodeMs: Math.round(l.decodeMs), images: l.images, skipped: l.skipped, unassigned: l.unassigned };
    if (l.skipped.length) log(`skipped ${l.skipped.length} unreadable image(s): ${l.skipped.slice(0, 5).map((b) => `${b.file} (${b.reason})`).join('; ')}${l.skipped.length > 5 ? ' ...' : ''}`);
  }
  if (o.trainLimit > 0 && o.trainLimit < ds.train.n) ds = { ...ds, train: subsetSplit(ds.train, Int32Array.from({ length: o.trainLimit }, (_, i) => i)) };
  for (const s of ['train', 'val', 'test'] as const) if (ds[s].n === 0) throw new Error(`${ds.name}: the ${s} split is empty`);
  return { ds, load: { name: ds.name, task: ds.task, classes: ds.classes, shape: [ds.channels, ds.height, ds.width], n: { train: ds.train.n, val: ds.val.n, test: ds.test.n }, ms: Math.round(performance.now() - t0), ...extra } };
}

/** Dataset + noisy training labels (noise.json holds the realised transition matrix). */
export async function prepareData(o: Options, run: RunDir | null, log: (s: string) => void = () => {}): Promise<PreparedData> {
  const { ds, load } = await loadData(o, log);
  const C = ds.classes.length;
  const nopts = { type: o.noiseType, rate: o.noiseRate, seed: hashSeed(o.seed, 'label-noise') };
  const res = ds.train.labels instanceof Uint8Array ? injectNoise(ds.train.labels, C, nopts) : injectNoise(ds.train.labels, C, nopts);
  const noise: Record<string, unknown> = {
    type: o.noiseType, rate: o.noiseRate, seed: nopts.seed, task: ds.task, classes: ds.classes,
    realisedRate: res.realisedRate, flippedCount: res.flipped.reduce((a, b) => a + b, 0),
    // T[clean][noisy]: realised (row-normalised counts) and what the noise model implies
    transition: res.transition, counts: res.counts,
    ...(ds.task === 'multilabel' ? { perLabelRate: (res as { perLabelRate: number[] }).perLabelRate, note: 'multi-label: counts/transition pooled over label bits (0/1)' } : { expectedTransition: expectedTransition(C, nopts) }),
  };
  if (run) run.writeJson('noise.json', noise);
  return { ds, noisy: res.labels, noise, load };
}

// ---------------------------------------------------------------- models

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

function modelMeta(o: Options, ds: Dataset, arch: string, width: number, role: 'teacher' | 'student', method?: Method): ModelMeta {
  return {
    format: 'roskd-model', version: 1, arch,
    options: { numClasses: ds.classes.length, inChannels: ds.channels, smallInput: useSmallInput(o), width },
    task: ds.task, classes: ds.classes, mean: ds.mean, std: ds.std, channels: ds.channels, height: ds.height, width: ds.width, role, method, dataset: ds.name,
  };
}

/** safetensors __metadata__ (string map): the full description under "roskd", plus readable flat keys. */
export function metadataStrings(m: ModelMeta): Record<string, string> {
  return { roskd: JSON.stringify(m), arch: m.arch, classes: m.classes.join(','), task: m.task, role: m.role };
}

export function buildModel(m: Pick<ModelMeta, 'arch' | 'options'>, seed: number): Module {
  return createModel(m.arch, { ...m.options, seed }) as unknown as Module;
}

const teacherArch = (o: Options, i: number): string => o.teacherArchs[i % o.teacherArchs.length];
const teacherSeed = (o: Options, i: number): number => hashSeed(o.seed, 'teacher-init', i);
const studentSeed = (o: Options): number => hashSeed(o.seed, 'student-init'); // same init for every method: a fair comparison

function augmentOf(o: Options): Augment {
  const affine = o.augment.includes('affine');
  return { pad: o.augment.includes('crop') ? o.cropPad : 0, hflip: o.augment.includes('flip'), rotate: affine ? 5 : 0, scale: affine ? 0.05 : 0 };
}

// ---------------------------------------------------------------- the pipeline

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
  const prev = run.readJson<{ options: Record<string, unknown> }>('config.json');
  if (!prev) return;
  for (const key of RUN_IDENTITY) {
    const flag = SPECS.find((s) => s.key === key)!.flag;
    const a = JSON.stringify(prev.options[flag]);
    const b = JSON.stringify(o[key]);
    if (a !== b) throw new UsageError(`--${flag} ${b} differs from ${a} in ${run.path('config.json')}: the run directory was made with other data/teacher settings; use another --out or the same options`);
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
  const t = run.readJson<StageTimes>('stages.json') ?? {};
  t[stage] = { secs: (t[stage]?.secs ?? 0) + secs, sessions: (t[stage]?.sessions ?? 0) + 1 };
  run.writeJson('stages.json', t);
}

/** Runs the stages selected by the options. Throws UsageError / NanLossError / InterruptedError / Error. */
export async function runPipeline(input: readonly string[] | Partial<Options> | Parsed, hooks: PipelineHooks = {}): Promise<PipelineResult> {
  const parsed = Array.isArray(input) ? parseArgs(input as string[]) : 'opts' in (input as object) ? (input as Parsed) : resolveOptions(input as Partial<Options>);
  const o = parsed.opts;
  const print = hooks.print ?? ((l: string) => console.log(l));
  const progress = new Progress(o.progress === 'auto' ? (process.stderr.isTTY ? 'tty' : 'plain') : o.progress, process.stderr, print);
  const run = new RunDir(o.out || defaultRunName(o.preset), o.out ? '--out' : 'run directory');
  run.cleanTemp();
  checkIdentity(run, o);
  const gpu = await rk.init();
  if (!run.exists('config.json'))
    run.writeJson('config.json', { options: optionsJson(o), versions: versions(), adapter: gpu.info, created: new Date().toISOString(), argv: Array.isArray(input) ? input : null });
  print(`run directory: ${run.root}`);
  print(`adapter: ${gpu.info.description || gpu.info.device} (${gpu.info.backend})`);

  // ---- data, noise, subsets
  const tData = performance.now();
  const data = await prepareData(o, run, (s) => progress.log(s));
  const { ds, noisy } = data;
  const C = ds.classes.length;
  const realised = (data.noise as { realisedRate?: number }).realisedRate;
  print(`data: ${ds.name} (${ds.task}, ${C} classes: ${ds.classes.join(', ')}), ${ds.channels}x${ds.height}x${ds.width}, train/val/test ${ds.train.n}/${ds.val.n}/${ds.test.n}; noise ${o.noiseType} ${o.noiseRate}${realised !== undefined ? ` (realised ${fmtNum(realised)})` : ''} [${((performance.now() - tData) / 1000).toFixed(1)} s]`);
  const subsets = drawSubsets(ds.train.n, o.teachers, o.subsetFraction, o.seed);
  const stats = subsetStats(subsets, ds.train.n);
  run.writeJson('subsets.json', { fraction: o.subsetFraction, n: ds.train.n, seed: o.seed, sizes: stats.sizes, pairOverlap: stats.pairOverlap, unseen: stats.unseen, seenByAll: stats.seenByAll, subsets: subsets.map((s) => Array.from(s)) });
  for (const [i, s] of subsets.entries()) if (s.length < 2) throw new Error(`teacher ${i}: subset of ${s.length} image(s) is too small to train on (--subset-fraction ${o.subsetFraction} of ${ds.train.n})`);

  const common = {
    ds, trainLabels: noisy, batchSize: o.batchSize, evalBatchSize: o.evalBatchSize, augment: augmentOf(o), selectBy: o.selectBy, run, resume: o.resume, progress, hooks,
  };
  const result: PipelineResult = { run, opts: o, report: null, teachers: [], students: {} };
  const stages = o.stage === 'all' ? ['teachers', 'student', 'eval'] : [o.stage];
  const teacherIdx = o.teacherIndex >= 0 ? [o.teacherIndex] : Array.from({ length: o.teachers }, (_, i) => i);
  const needTeachers = o.methods.some((m) => m !== 'ce');

  // ---- stage: teachers
  if (stages.includes('teachers')) {
    const t0 = performance.now();
    for (const i of teacherIdx) {
      const arch = teacherArch(o, i);
      const meta = modelMeta(o, ds, arch, o.teacherWidth, 'teacher');
      const model = buildModel(meta, teacherSeed(o, i));
      try {
        progress.log(`teacher ${i}: ${arch} (width ${o.teacherWidth}, ${(model.numParameters() / 1e3).toFixed(1)}k parameters) on ${subsets[i].length} images`);
        result.teachers[i] = await trainModel({
          ...common, name: `teacher-${i}`, stage: 'teachers', model, makeModel: () => buildModel(meta, teacherSeed(o, i)),
          trainIdx: subsets[i], epochs: o.teacherEpochs, seed: hashSeed(o.seed, 'teacher', i), ema: 0,
          optim: { optimizer: o.optimizer, lr: o.teacherLr, momentum: o.momentum, weightDecay: o.weightDecay, normBiasDecay: o.normBiasDecay, warmupEpochs: o.warmupEpochs, schedule: o.schedule },
          metadata: metadataStrings(meta), finalFile: run.teacherFile(i),
        });
      } finally {
        model.dispose();
      }
    }
    addStageTime(run, o.teacherIndex >= 0 ? `teachers[${o.teacherIndex}]` : 'teachers', (performance.now() - t0) / 1000);
  }

  // ---- stage: student(s)
  if (stages.includes('student')) {
    const t0 = performance.now();
    const teachers: Module[] = [];
    try {
      const teacherScores: number[] = [];
      if (needTeachers) {
        const missing = Array.from({ length: o.teachers }, (_, i) => i).filter((i) => !existsSync(run.teacherFile(i)) || !existsSync(run.doneFile(`teacher-${i}`)));
        if (missing.length)
          throw new Error(`the student stage needs every teacher: ${missing.map((i) => `teacher-${i}.safetensors`).join(', ')} missing in ${run.root}; run --stage teachers (or --teacher-index i for each) first`);
        for (let i = 0; i < o.teachers; i++) {
          const m = buildModel(modelMeta(o, ds, teacherArch(o, i), o.teacherWidth, 'teacher'), 0);
          await loadWeights(m, run.teacherFile(i));
          m.eval();
          teachers.push(m);
          const done = run.readJson<TrainResult>(run.doneFile(`teacher-${i}`))!;
          teacherScores.push(scoreOf(done.bestVal, o.selectBy));
        }
      }
      // Teacher logits on the unaugmented train set: computed once and cached on disk.
      const cached: Float32Array[] = [];
      if (needTeachers && cacheTeacherLogits(o)) {
        for (let i = 0; i < o.teachers; i++) {
          // keyed by the teacher file's identity: a retrained teacher never reuses stale logits
          const st = statSync(run.teacherFile(i));
          const f = join(run.checkpointDir, `teacher-${i}.train-logits.${Math.round(st.mtimeMs)}-${st.size}.f32`);
          if (existsSync(f) && readFileSync(f).byteLength === ds.train.n * C * 4) {
            const b = readFileSync(f);
            cached.push(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
            continue;
          }
          const tl = performance.now();
          const { logits } = await predictLogits(teachers[i], ds, ds.train, { batchSize: o.evalBatchSize, onBatch: (d, n) => progress.update({ stage: 'student', model: `teacher-${i} logits`, epoch: 1, epochs: 1, step: d, steps: n, loss: 0, ips: d / Math.max(1e-3, (performance.now() - tl) / 1000), eta: ((n - d) * (performance.now() - tl)) / 1000 / Math.max(d, 1) }) });
          run.writeText(f.slice(run.root.length + 1), new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength));
          cached.push(logits);
          progress.log(`teacher-${i}: cached logits on ${ds.train.n} training images (${((performance.now() - tl) / 1000).toFixed(1)} s)`);
        }
      }
      const probs = needTeachers ? teacherProbabilities(o.teacherWeighting, teacherScores) : undefined;
      const best = needTeachers ? bestTeacher(teacherScores) : 0;
      for (const method of o.methods) {
        const meta = modelMeta(o, ds, o.student, o.studentWidth, 'student', method);
        const model = buildModel(meta, studentSeed(o));
        const name = `student-${method}`;
        const chooser = new TeacherChooser(method, o.teachers, { seed: hashSeed(o.seed, 'draw', method), probs, perBatch: method === 'roskd' ? o.teachersPerBatch : 1, best });
        const smoother = method !== 'ce' && o.smoothing > 0 ? new TargetSmoother(ds.train.n, C, o.smoothing, o.temperature, ds.task === 'multilabel') : null;
        try {
          progress.log(`${name}: ${o.student} (width ${o.studentWidth}, ${(model.numParameters() / 1e3).toFixed(1)}k parameters)${method === 'kd' ? `, teacher ${best}` : method === 'roskd' ? `, ${o.teachersPerBatch} of ${o.teachers} teachers per batch (${o.teacherWeighting})` : ''}`);
          result.students[method] = await trainModel({
            ...common, name, stage: 'student', model, makeModel: () => buildModel(meta, studentSeed(o)),
            trainIdx: Int32Array.from({ length: ds.train.n }, (_, i) => i), epochs: o.studentEpochs, seed: hashSeed(o.seed, 'student'), ema: o.ema,
            optim: { optimizer: o.optimizer, lr: o.studentLr, momentum: o.momentum, weightDecay: o.weightDecay, normBiasDecay: o.normBiasDecay, warmupEpochs: o.warmupEpochs, schedule: o.schedule },
            metadata: metadataStrings(meta), finalFile: run.studentFile(method),
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
        } finally {
          model.dispose();
        }
      }
    } finally {
      for (const t of teachers) t.dispose();
    }
    addStageTime(run, 'student', (performance.now() - t0) / 1000);
  }

  // ---- stage: eval (+ report)
  if (stages.includes('eval')) {
    const t0 = performance.now();
    result.report = await evaluateRun(o, ds, data, run, progress, print);
    addStageTime(run, 'eval', (performance.now() - t0) / 1000);
    result.report.stages = run.readJson<StageTimes>('stages.json') ?? {};
    writeReport(run, result.report);
    print('');
    print(result.report.tableText);
    print(`\nreport: ${run.path('report.md')}`);
  } else if (o.stage === 'teachers' && o.teacherIndex >= 0) print(`teacher ${o.teacherIndex} done; when all ${o.teachers} are, run --stage student --out ${run.root}`);
  return result;
}

/** Test-set evaluation of every finished model in the run (and the extra evaluations). */
async function evaluateRun(o: Options, ds: Dataset, data: PreparedData, run: RunDir, progress: Progress, print: (s: string) => void): Promise<ReportData> {
  const extraEvals = await resolveEvaluators(o.attacks);
  const rows: ModelRow[] = [];
  const loaded: EvalContext['models'] = [];
  const entries: { name: string; role: 'teacher' | 'student'; arch: string; width: number; file: string; method?: Method; subset?: number }[] = [];
  for (let i = 0; i < o.teachers; i++) entries.push({ name: `teacher-${i}`, role: 'teacher', arch: teacherArch(o, i), width: o.teacherWidth, file: run.teacherFile(i), subset: Math.round(o.subsetFraction * ds.train.n) });
  for (const m of o.methods) entries.push({ name: `student-${m}`, role: 'student', arch: o.student, width: o.studentWidth, file: run.studentFile(m), method: m });
  const present = entries.filter((e) => existsSync(e.file));
  if (present.length === 0) throw new Error(`nothing to evaluate in ${run.root}: no teacher-*.safetensors or student-*.safetensors (run --stage teachers / student first)`);
  try {
    for (const e of present) {
      const model = buildModel(modelMeta(o, ds, e.arch, e.width, e.role), 0);
      await loadWeights(model, e.file);
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
    const missing = entries.filter((e) => !existsSync(e.file)).map((e) => e.name);
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

// ---------------------------------------------------------------- command line

async function main(): Promise<void> {
  let parsed: Parsed;
  try {
    parsed = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    process.exit(2);
  }
  if (parsed.opts.help) {
    console.log(helpText());
    return;
  }
  // Ctrl-C / SIGTERM: checkpoint after this step, exit 130 (the work runs in a child process)
  await supervise({ onInterrupt: requestInterrupt, training: isTraining, resumeHint: 'continue with --resume' });
  const t0 = performance.now();
  try {
    await runPipeline(parsed);
    console.log(`total wall time ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  } catch (e) {
    const err = e as Error;
    process.stderr.write('\n');
    if (err instanceof InterruptedError || isInterruptRequested()) {
      console.error(err.message);
      process.exit(130);
    }
    if (err instanceof UsageError) {
      console.error(`error: ${err.message}`);
      process.exit(2);
    }
    if (err instanceof NanLossError) {
      console.error(`error: ${err.message}`);
      process.exit(3);
    }
    console.error(`error: ${err.message}`);
    if (process.env.ROSKD_DEBUG) console.error(err.stack);
    process.exit(1);
  } finally {
    clearInterrupt();
  }
}

// Not awaited: modules imported later (kd/attacks.ts) must see this module's evaluation finished.
if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('kd/train.ts')) void main();
