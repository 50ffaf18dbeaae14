// RoS-KD end to end (what `kd/train.ts` runs): loads a (noisily labelled) dataset, trains K
// teachers on overlapping random subsets, distils students with ce / kd / avgkd / roskd, evaluates
// everything on clean test labels (evaluate-run.ts) and writes the run directory. Every stage is
// resumable; runPipeline is also the programmatic entry (tests and the study use it in-process).
import { readFileSync, statSync } from 'node:fs';
import * as rk from '../engine/index.ts';
import { hashSeed } from '../engine/rng.ts';
import { parseArgs, resolveOptions, optionsJson, cacheTeacherLogits, UsageError, RUN_IDENTITY, SPECS, NOISE_DEFINITIONS, upgradeStoredOptions, type Options, type Method, type Parsed } from './config.ts';
import { RunDir, defaultRunName } from './run-dir.ts';
import type { Augment } from './data/batch.ts';
import { prepareData } from './data-source.ts';
import { drawSubsets, subsetStats, TeacherChooser, teacherProbabilities, bestTeacher, combineTeachers, gatherRows, TargetSmoother } from './roskd.ts';
import { trainModel, stepsPerEpochOf, type TrainResult } from './fit.ts';
import { choosePerSample, combinePerSample, subsetMembership, teachersUsed } from './teacher-pool.ts';
import { teacherHealth, usableTeachers } from './teacher-health.ts';
import type { TrainHooks } from './interrupt.ts';
import { predictLogits } from './inference.ts';
import { scoreOf } from './metrics.ts';
import { buildModel, loadWeights, metadataStrings, modelMeta, teacherArch, teacherSeed, studentSeed, type Module } from './model-file.ts';
import { Progress, fmtNum, formatDownload, type PlanItem } from './progress.ts';
import { writeReport, type ReportData } from './report.ts';
import { evaluateRun } from './evaluate-run.ts';

export function augmentOf(o: Options): Augment {
  const affine = o.augment.includes('affine');
  return { pad: o.augment.includes('crop') ? o.cropPad : 0, hflip: o.augment.includes('flip'), rotate: affine ? 5 : 0, scale: affine ? 0.05 : 0 };
}

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
  const { ds, noisy } = data;
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

  const common = {
    ds, trainLabels: noisy, batchSize: o.batchSize, evalBatchSize: o.evalBatchSize, augment: augmentOf(o), selectBy: o.selectBy, run, resume: o.resume, progress, hooks,
  };
  const result: PipelineResult = { run, opts: o, report: null, teachers: [], students: {} };
  const stages = o.stage === 'all' ? ['teachers', 'student', 'eval'] : [o.stage];
  const teacherIdx = o.teacherIndex >= 0 ? [o.teacherIndex] : Array.from({ length: o.teachers }, (_, i) => i);
  const needTeachers = o.methods.some((m) => m !== 'ce');
  // the whole run's models and steps, for the run line (model i of n, overall ETA)
  const plan: PlanItem[] = [];
  if (stages.includes('teachers')) for (const i of teacherIdx) plan.push({ model: `teacher-${i}`, stage: 'teachers', steps: o.teacherEpochs * stepsPerEpochOf(subsets[i].length, o.batchSize) });
  if (stages.includes('student')) for (const m of o.methods) plan.push({ model: `student-${m}`, stage: 'student', steps: o.studentEpochs * stepsPerEpochOf(ds.train.n, o.batchSize) });
  progress.setPlan(plan);

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
          trainIdx: subsets[i], epochs: o.teacherEpochs, epochsOption: '--teacher-epochs', seed: hashSeed(o.seed, 'teacher', i), ema: 0,
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
      // Teacher logits on the unaugmented train set: computed once and cached on disk.
      // (cached[j], teachers[j], teacherScores[j] and seen[j] are those of teacher active[j])
      const cached: Float32Array[] = [];
      if (needTeachers && cacheTeacherLogits(o)) {
        for (const [j, i] of active.entries()) {
          // keyed by the teacher file's identity: a retrained teacher never reuses stale logits
          const st = statSync(run.teacherFile(i));
          const f = run.checkpointPath(`teacher-${i}.train-logits.${Math.round(st.mtimeMs)}-${st.size}.f32`);
          const b = run.readBytes(f);
          if (b && b.byteLength === ds.train.n * C * 4) {
            cached.push(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
            continue;
          }
          const tl = performance.now();
          const { logits } = await predictLogits(teachers[j], ds, ds.train, { batchSize: o.evalBatchSize, onBatch: (d, n) => progress.update({ stage: 'student', model: `teacher-${i} logits`, epoch: 1, epochs: 1, step: d, steps: n, loss: 0, ips: d / Math.max(1e-3, (performance.now() - tl) / 1000), eta: ((n - d) * (performance.now() - tl)) / 1000 / Math.max(d, 1) }) });
          run.writeText(f, new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength));
          cached.push(logits);
          progress.log(`teacher-${i}: cached logits on ${ds.train.n} training images (${((performance.now() - tl) / 1000).toFixed(1)} s)`);
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
          result.students[method] = await trainModel({
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
