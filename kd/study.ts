// The noise-robustness study as one reproducible command:
//   npx tsx kd/study.ts --preset demo [--out studies/demo]
// runs methods {ce, kd, avgkd, roskd} x noise rates x seeds (x ablation variants) with the
// RoS-KD pipeline (kd/train.ts runPipeline), evaluates every student on the clean test labels,
// clean and under FGSM / PGD at several epsilons (kd/attacks.ts), and writes study.json,
// study.md (mean ± std over seeds) and PNG plots (kd/plot.ts).
//
// Cost and reuse: teachers depend only on (noise rate, seed, K, subset fraction) and the fixed
// teacher options, so they are trained once per such key in teachers/<key>/ and hard-linked
// into every cell that needs them (student-only ablations such as EMA or stochastic vs
// averaging reuse them too); the students of all methods of a cell share them.
// Resumable: a cell is done when cells/<id>/cell.json exists (written atomically after its
// last evaluation); a rerun of the same command skips done cells, continues an interrupted
// cell from the pipeline's checkpoints, and rewrites the study outputs.
import { copyFileSync, existsSync, linkSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as rk from '../engine/index.ts';
import { parseArgs, resolveOptions, UsageError, METHODS, SPECS, type Method, type Options } from './config.ts';
import { runPipeline, loadData, buildModel } from './train.ts';
import { readModelMeta } from './predict.ts';
import { loadSafetensors, copyIntoModel } from '../engine/io/safetensors.ts';
import { RunDir } from './run-dir.ts';
import { requestInterrupt, InterruptedError, isInterruptRequested, isTraining, NanLossError } from './trainer.ts';
import { supervise } from './supervise.ts';
import { evaluateRobustness, parseEpsList, formatEps, attackLabel, type AttackSpec, type Norm, type MetricRow } from './attacks.ts';
import { linePlotPng, type Series } from './plot.ts';
import { makeDirs, writeFileAtomic } from './data/util.ts';

// ---------------------------------------------------------------- configuration

export type Choice = 'stochastic' | 'average';

export interface StudyConfig {
  preset: string;
  out: string;
  methods: Method[];
  noiseRates: number[];
  seeds: number[];
  /** attack kinds evaluated per cell at every epsilon (empty: none) */
  attacks: ('fgsm' | 'pgd')[];
  eps: number[];
  pgdSteps: number;
  /** pixel units; undefined: 2.5 eps / steps */
  pgdStepSize?: number;
  pgdNorm: Norm;
  /** attack a seeded random subset of this many test images (0 = all) */
  attackLimit: number;
  attackBatchSize: number;
  // ablation axes (a single value is a plain setting)
  teachers: number[];
  subsetFraction: number[];
  ema: number[];
  teachersPerBatch: number[];
  choice: Choice[];
  /** every other kd/train.ts option (data, size, epochs, widths, ...) */
  train: Partial<Options>;
  quiet: boolean;
  dryRun: boolean;
  help: boolean;
}

interface StudyPreset {
  about: string;
  study: Partial<StudyConfig>;
  train: Partial<Options>;
}

/** Study presets: grid and model sizes for a purpose. Explicit options win. */
export const STUDY_PRESETS: Record<string, StudyPreset> = {
  full: {
    about: 'the full grid: ce,kd,avgkd,roskd x noise 0,0.2,0.4,0.6 x 3 seeds on the synthetic set (28 px, width 1/16 models); FGSM and PGD-10 at 1,2,4,8/255. Hours on a 2-core CPU adapter',
    study: { methods: [...METHODS], noiseRates: [0, 0.2, 0.4, 0.6], seeds: [0, 1, 2], attacks: ['fgsm', 'pgd'], eps: [1 / 255, 2 / 255, 4 / 255, 8 / 255], pgdSteps: 10, attackLimit: 300 },
    train: { data: 'synthetic', size: 28, syntheticN: 1200, teacherWidth: 0.0625, studentWidth: 0.0625, teacherEpochs: 3, studentEpochs: 3 },
  },
  demo: {
    about: 'end to end in about 6 minutes on an otherwise idle 2-core CPU adapter: 16 px synthetic phantoms (512 training images), three tiny resnet18 teachers and a tiny resnet18 student, noise 0 and 0.4 x 3 seeds, FGSM and PGD-5 at 1,2,4,8/255 on 64 test images per cell',
    study: { methods: [...METHODS], noiseRates: [0, 0.4], seeds: [0, 1, 2], attacks: ['fgsm', 'pgd'], eps: [1 / 255, 2 / 255, 4 / 255, 8 / 255], pgdSteps: 5, attackLimit: 64, attackBatchSize: 64 },
    train: {
      data: 'synthetic', size: 16, syntheticN: 512, teachers: 3, teacherArchs: ['resnet18'], teacherWidth: 0.0625, studentWidth: 0.0625,
      teacherEpochs: 6, studentEpochs: 8, batchSize: 16, evalBatchSize: 128, teacherLr: 0.1, studentLr: 0.1,
    },
  },
  pneumonia: {
    about: 'a small PneumoniaMNIST study (--data pneumoniamnist finds ../shared/data/pneumoniamnist.npz; 28 px, first 800 training images, official val/test): noise 0 and 0.4 x 3 seeds, FGSM and PGD-5 at 1,2,4/255 on 128 test images per cell',
    study: { methods: [...METHODS], noiseRates: [0, 0.4], seeds: [0, 1, 2], attacks: ['fgsm', 'pgd'], eps: [1 / 255, 2 / 255, 4 / 255], pgdSteps: 5, attackLimit: 128, attackBatchSize: 128 },
    train: {
      data: 'pneumoniamnist', size: 28, trainLimit: 800, teachers: 3, teacherArchs: ['resnet18'], teacherWidth: 0.0625, studentWidth: 0.0625,
      teacherEpochs: 3, studentEpochs: 4, batchSize: 32, evalBatchSize: 128, teacherLr: 0.05, studentLr: 0.05,
    },
  },
};

function baseConfig(): StudyConfig {
  return {
    preset: 'full', out: '', methods: [...METHODS], noiseRates: [0, 0.2, 0.4, 0.6], seeds: [0, 1, 2], attacks: ['fgsm', 'pgd'], eps: [1 / 255, 2 / 255, 4 / 255, 8 / 255],
    pgdSteps: 10, pgdNorm: 'linf', attackLimit: 0, attackBatchSize: 128, teachers: [], subsetFraction: [], ema: [], teachersPerBatch: [], choice: ['stochastic'],
    train: {}, quiet: false, dryRun: false, help: false,
  };
}

const STUDY_HELP = `The RoS-KD noise-robustness study: methods x noise rates x seeds (x ablations), each student
evaluated on the clean test labels, clean and under FGSM / PGD; outputs study.json, study.md
(mean ± std over seeds) and PNG plots. Rerun the same command to resume.

usage: npx tsx kd/study.ts [--preset demo|pneumonia|full] [options] [kd/train.ts options]

grid:
  --preset NAME            demo | pneumonia | full (default full; see below)
  --methods A,B            students (default ce,kd,avgkd,roskd)
  --noise-rates R,R        label-noise rates (default 0,0.2,0.4,0.6); --noise-type as in kd/train.ts
  --seeds N | S,S          N seeds 0..N-1, or a list (default 3)
  --out DIR                study directory (default runs/study-<preset>); rerun with the same DIR to resume
attacks (pixel space, [0, 1] scale; images clamped every step; model in eval mode):
  --attacks fgsm,pgd       kinds evaluated per cell (none: --attacks none)
  --eps LIST               epsilons, e.g. 1/255,2/255,4/255,8/255
  --pgd-steps N            (default 10)   --pgd-step-size E (default 2.5 eps / steps)   --pgd-norm linf|l2
  --attack-limit N         attack a seeded random subset of N test images (0 = all)
  --attack-batch-size N    (default 128)
ablations (a comma list makes an axis; every combination is a variant; teachers are shared
between variants that differ only in student options):
  --teachers 1,3,5         number of teachers K
  --subset-fraction 0.5,0.7,0.9,1.0
  --choice stochastic,average   roskd draws one teacher per batch (stochastic) or averages all K (average)
  --teachers-per-batch 1,2 roskd averages k random teachers per batch
  --ema 0,0.999            EMA of the student's weights
other:
  --quiet                  only the study's own lines (no per-epoch lines)
  --dry-run                print the grid and exit
  any kd/train.ts option   (--data, --size, --student-epochs, --teacher-archs, ...) applies to every cell

presets:
${Object.entries(STUDY_PRESETS).map(([k, p]) => `  ${k.padEnd(10)}${p.about}`).join('\n')}`;

const numList = (flag: string, s: string, check: (v: number) => boolean, what: string): number[] => {
  const vals = s.split(',').map((x) => x.trim()).filter(Boolean).map(Number);
  if (!vals.length) throw new UsageError(`${flag}: give at least one value`);
  for (const v of vals) if (!Number.isFinite(v) || !check(v)) throw new UsageError(`${flag}: ${v} is not ${what}`);
  return vals;
};

/** Parses the study's command line; every unknown option goes to kd/train.ts's parser. */
export function parseStudyArgs(argv: readonly string[]): StudyConfig {
  const given: Partial<StudyConfig> = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let v: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) [a, v] = [a.slice(0, eq), a.slice(eq + 1)];
    const val = (): string => {
      if (v !== undefined) return v;
      if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
      return argv[++i];
    };
    try {
      switch (a) {
        case '-h': case '--help': given.help = true; break;
        case '--preset': given.preset = val(); break;
        case '--out': given.out = val(); break;
        case '--methods': case '--method': {
          const ms = val().split(',').map((s) => s.trim()).filter(Boolean);
          for (const m of ms) if (!METHODS.includes(m as Method)) throw new UsageError(`--methods: unknown method ${JSON.stringify(m)} (${METHODS.join(', ')})`);
          if (new Set(ms).size !== ms.length || !ms.length) throw new UsageError(`--methods: give distinct methods, got ${JSON.stringify(ms.join(','))}`);
          given.methods = ms as Method[];
          break;
        }
        case '--noise-rates': case '--noise-rate': given.noiseRates = numList(a, val(), (x) => x >= 0 && x <= 1, 'a rate in [0, 1]'); break;
        case '--seeds': case '--seed': {
          const s = val();
          given.seeds = s.includes(',') || a === '--seed' ? numList(a, s, (x) => Number.isInteger(x) && x >= 0, 'a non-negative integer') : Array.from({ length: numList(a, s, (x) => Number.isInteger(x) && x >= 1, 'a positive count')[0] }, (_, k) => k);
          break;
        }
        case '--attacks': {
          const ks = val().split(',').map((s) => s.trim()).filter((s) => s && s !== 'none');
          for (const k of ks) if (k !== 'fgsm' && k !== 'pgd') throw new UsageError(`--attacks: fgsm, pgd or none, got ${JSON.stringify(k)}`);
          given.attacks = ks as ('fgsm' | 'pgd')[];
          break;
        }
        case '--eps': given.eps = parseEpsList(val()); break;
        case '--pgd-steps': given.pgdSteps = numList(a, val(), (x) => Number.isInteger(x) && x >= 1, 'a positive integer')[0]; break;
        case '--pgd-step-size': given.pgdStepSize = parseEpsList(val())[0]; break;
        case '--pgd-norm': {
          const s = val();
          if (s !== 'linf' && s !== 'l2') throw new UsageError(`--pgd-norm: linf or l2, got ${JSON.stringify(s)}`);
          given.pgdNorm = s;
          break;
        }
        case '--attack-limit': given.attackLimit = numList(a, val(), (x) => Number.isInteger(x) && x >= 0, 'a non-negative integer')[0]; break;
        case '--attack-batch-size': given.attackBatchSize = numList(a, val(), (x) => Number.isInteger(x) && x >= 1, 'a positive integer')[0]; break;
        case '--teachers': given.teachers = numList(a, val(), (x) => Number.isInteger(x) && x >= 1 && x <= 64, 'a teacher count in 1..64'); break;
        case '--subset-fraction': given.subsetFraction = numList(a, val(), (x) => x > 0 && x <= 1, 'a fraction in (0, 1]'); break;
        case '--ema': given.ema = numList(a, val(), (x) => x >= 0 && x < 1, 'a decay in [0, 1)'); break;
        case '--teachers-per-batch': given.teachersPerBatch = numList(a, val(), (x) => Number.isInteger(x) && x >= 1, 'a positive integer'); break;
        case '--choice': {
          const cs = val().split(',').map((s) => s.trim()).filter(Boolean);
          for (const c of cs) if (c !== 'stochastic' && c !== 'average') throw new UsageError(`--choice: stochastic or average, got ${JSON.stringify(c)}`);
          given.choice = cs as Choice[];
          break;
        }
        case '--quiet': given.quiet = true; break;
        case '--dry-run': given.dryRun = true; break;
        case '--stage': case '--teacher-index': case '--resume':
          throw new UsageError(`${a} is a kd/train.ts option the study manages itself (it always resumes)`);
        default:
          rest.push(argv[i]);
          if (v === undefined && i + 1 < argv.length && !argv[i + 1].startsWith('--')) rest.push(argv[++i]);
      }
    } catch (e) {
      if (e instanceof RangeError) throw new UsageError(`${a}: ${e.message}`);
      throw e;
    }
  }
  const explicit = parseArgs(rest);
  const train: Partial<Options> = {};
  for (const k of explicit.explicit) (train as Record<string, unknown>)[k] = explicit.opts[k];
  return resolveStudy(given, train);
}

/** Full study configuration: base < preset < given (study) and preset train options < given train options. */
export function resolveStudy(given: Partial<StudyConfig>, train: Partial<Options> = {}): StudyConfig {
  const cfg = baseConfig();
  const name = given.preset ?? cfg.preset;
  const p = STUDY_PRESETS[name];
  if (!p) throw new UsageError(`--preset: unknown study preset ${JSON.stringify(name)} (${Object.keys(STUDY_PRESETS).join(', ')})`);
  Object.assign(cfg, p.study, given);
  cfg.preset = name;
  cfg.train = { ...p.train, ...(given.train ?? {}), ...train };
  cfg.out = cfg.out || join('runs', `study-${name}`);
  const base = resolveOptions({ ...cfg.train, progress: 'none' }).opts; // validates the train options
  if (!cfg.teachers.length) cfg.teachers = [base.teachers];
  if (!cfg.subsetFraction.length) cfg.subsetFraction = [base.subsetFraction];
  if (!cfg.ema.length) cfg.ema = [base.ema];
  if (!cfg.teachersPerBatch.length) cfg.teachersPerBatch = [base.teachersPerBatch];
  if (!cfg.choice.length) cfg.choice = ['stochastic'];
  if (!cfg.methods.length || !cfg.noiseRates.length || !cfg.seeds.length) throw new UsageError('the grid is empty: give methods, noise rates and seeds');
  for (const k of cfg.teachers) for (const t of cfg.teachersPerBatch) if (t > k) throw new UsageError(`--teachers-per-batch ${t} exceeds --teachers ${k}`);
  if (cfg.attacks.length && !cfg.eps.length) throw new UsageError('--eps: give at least one epsilon');
  return cfg;
}

// ---------------------------------------------------------------- grid

export interface Variant {
  teachers: number;
  subsetFraction: number;
  ema: number;
  teachersPerBatch: number;
  choice: Choice;
  /** short label naming only the ablated settings ('' when nothing is ablated) */
  label: string;
}

export interface Cell {
  id: string;
  variant: Variant;
  noiseRate: number;
  seed: number;
  /** teachers/<teacherKey> holds this cell's teachers */
  teacherKey: string;
}

const fmtNum = (v: number): string => String(Number(v.toPrecision(6)));

export function variantsOf(cfg: StudyConfig): Variant[] {
  const out: Variant[] = [];
  for (const teachers of cfg.teachers)
    for (const subsetFraction of cfg.subsetFraction)
      for (const choice of cfg.choice)
        for (const teachersPerBatch of choice === 'average' ? [teachers] : cfg.teachersPerBatch)
          for (const ema of cfg.ema) {
            if (teachersPerBatch > teachers) continue;
            const parts: string[] = [];
            if (cfg.teachers.length > 1) parts.push(`K=${teachers}`);
            if (cfg.subsetFraction.length > 1) parts.push(`f=${fmtNum(subsetFraction)}`);
            if (cfg.choice.length > 1) parts.push(choice);
            if (cfg.teachersPerBatch.length > 1 && choice === 'stochastic') parts.push(`k=${teachersPerBatch}`);
            if (cfg.ema.length > 1) parts.push(ema > 0 ? `ema=${fmtNum(ema)}` : 'no-ema');
            // K = 1 (or k = K) makes 'average' and 'stochastic' the same student: keep one
            if (out.some((o) => o.teachers === teachers && o.subsetFraction === subsetFraction && o.ema === ema && o.teachersPerBatch === teachersPerBatch)) continue;
            out.push({ teachers, subsetFraction, ema, teachersPerBatch, choice, label: parts.join(' ') });
          }
  return out;
}

/**
 * The cell whose ce / kd / avgkd students this cell can reuse: same teachers, EMA, noise and
 * seed, differing only in the roskd-only settings (teachers per batch / stochastic vs average).
 */
export function baseCellOf(cfg: StudyConfig, cell: Cell, cells: Cell[] = cellsOf(cfg)): Cell | null {
  const b = cells.find((c) => c.teacherKey === cell.teacherKey && c.variant.ema === cell.variant.ema && c.variant.choice === 'stochastic' && c.variant.teachersPerBatch === cfg.teachersPerBatch[0]);
  return b && b.id !== cell.id ? b : null;
}

export function cellsOf(cfg: StudyConfig): Cell[] {
  const cells: Cell[] = [];
  for (const variant of variantsOf(cfg))
    for (const noiseRate of cfg.noiseRates)
      for (const seed of cfg.seeds) {
        const teacherKey = `nr${fmtNum(noiseRate)}_seed${seed}_K${variant.teachers}_f${fmtNum(variant.subsetFraction)}`;
        const id = `${teacherKey}_k${variant.teachersPerBatch}_ema${fmtNum(variant.ema)}`;
        cells.push({ id, variant, noiseRate, seed, teacherKey });
      }
  return cells;
}

function attackSpecs(cfg: StudyConfig): AttackSpec[] {
  return cfg.attacks.flatMap((kind) =>
    cfg.eps.map((eps): AttackSpec => (kind === 'fgsm' ? { kind, eps } : { kind, eps, steps: cfg.pgdSteps, stepSize: cfg.pgdStepSize, norm: cfg.pgdNorm, randomStart: true, keepBest: true })),
  );
}

// ---------------------------------------------------------------- results

export interface AttackResultLite extends MetricRow {
  label: string;
  kind: 'fgsm' | 'pgd';
  name: string;
  eps: number;
  flipped: number;
}

export interface MethodResult {
  /** clean test metrics on the whole test split (kd/metrics.ts) */
  clean: MetricRow;
  /** clean metrics on the attacked subset (the eps = 0 point of the attack curves) */
  cleanSubset: MetricRow | null;
  attacks: AttackResultLite[];
  attackImages: number;
  /** the pipeline's own test scores and best validation score, for reference */
  pipelineTest: { acc: number; f1: number; auc: number } | null;
  bestEpoch: number;
  /** set when the student is the same as (and was taken from) another cell's */
  sharedFrom?: string;
}

export interface CellResult {
  id: string;
  variant: Variant;
  noiseRate: number;
  seed: number;
  teacherKey: string;
  realisedNoise: number | null;
  methods: Partial<Record<Method, MethodResult>>;
  teachers: { name: string; arch: string; test: { acc: number; f1: number; auc: number } }[];
  secs: { teachers: number; students: number; attacks: number; total: number };
  finished: string;
}

// ---------------------------------------------------------------- running

export interface StudyHooks {
  print?: (line: string) => void;
  /** passed to the pipeline (tests: fault injection) */
  pipeline?: Parameters<typeof runPipeline>[1];
}

export interface StudyResult {
  dir: string;
  cells: CellResult[];
  ran: string[];
  skipped: string[];
  summary: SummaryRow[];
}

/** Hard link (or copy) src to dst unless dst exists. */
function linkInto(src: string, dst: string): void {
  if (!existsSync(src) || existsSync(dst)) return;
  try {
    linkSync(src, dst);
  } catch {
    copyFileSync(src, dst);
  }
}

function pipelineOptions(cfg: StudyConfig, cell: Cell, out: string, extra: Partial<Options>): Partial<Options> {
  const v = cell.variant;
  return {
    ...cfg.train, out, noiseRate: cell.noiseRate, seed: cell.seed, teachers: v.teachers, subsetFraction: v.subsetFraction,
    teachersPerBatch: v.teachersPerBatch, ema: v.ema, methods: cfg.methods, resume: true, attacks: [],
    progress: cfg.quiet ? 'none' : cfg.train.progress ?? 'auto', ...extra,
  };
}

/** The identity of a study directory: options that change results (grid axes may grow). */
function identity(cfg: StudyConfig): Record<string, unknown> {
  const t = resolveOptions({ ...cfg.train, progress: 'none' }).opts;
  const trainId: Record<string, unknown> = {};
  for (const s of SPECS) if (!['progress', 'help', 'out', 'preset', 'methods', 'method', 'noiseRate', 'seed', 'teachers', 'subsetFraction', 'ema', 'teachersPerBatch', 'resume', 'stage', 'teacherIndex', 'attacks', 'evalBatchSize'].includes(s.key)) trainId[s.flag] = t[s.key];
  return { train: trainId, attacks: { eps: cfg.eps, pgdSteps: cfg.pgdSteps, pgdStepSize: cfg.pgdStepSize ?? null, pgdNorm: cfg.pgdNorm, attackLimit: cfg.attackLimit } };
}

/** Runs (or resumes) the study; writes study.json / study.md / plots after every cell. */
export async function runStudy(cfg: StudyConfig, hooks: StudyHooks = {}): Promise<StudyResult> {
  const print = hooks.print ?? ((l: string) => console.log(l));
  const dir = resolve(cfg.out);
  makeDirs(join(dir, 'cells'), '--out');
  makeDirs(join(dir, 'teachers'), '--out');
  const idPath = join(dir, 'study-config.json');
  const id = identity(cfg);
  if (existsSync(idPath)) {
    const prev = JSON.parse(readFileSync(idPath, 'utf8')) as { identity: unknown };
    if (JSON.stringify(prev.identity) !== JSON.stringify(id))
      throw new UsageError(`${dir} holds a study made with other data/model/attack settings (${idPath}); use another --out, or the same options (grid axes may be extended)\n  was: ${JSON.stringify(prev.identity)}\n  now: ${JSON.stringify(id)}`);
  } else writeFileAtomic(idPath, JSON.stringify({ identity: id, created: new Date().toISOString() }, null, 2) + '\n');

  const cells = cellsOf(cfg);
  const specs = attackSpecs(cfg);
  const needTeachers = cfg.methods.some((m) => m !== 'ce');
  const results: CellResult[] = [];
  const ran: string[] = [];
  const skipped: string[] = [];
  const t0 = performance.now();
  print(`study: ${dir}`);
  print(`grid: ${cfg.methods.join(',')} x noise ${cfg.noiseRates.join(',')} x seeds ${cfg.seeds.join(',')}${variantsOf(cfg).length > 1 ? ` x ${variantsOf(cfg).length} variants` : ''} = ${cells.length} cells; attacks ${specs.map(attackLabel).join(', ') || 'none'}`);
  await rk.init();
  for (const [ci, cell] of cells.entries()) {
    const cellDir = join(dir, 'cells', cell.id);
    const resultFile = join(cellDir, 'cell.json');
    const tag = `[${ci + 1}/${cells.length} ${cell.id}]`;
    if (existsSync(resultFile)) {
      // the variant's label depends on the current grid (which axes have several values)
      const done = JSON.parse(readFileSync(resultFile, 'utf8')) as CellResult;
      const noiseFile = join(cellDir, 'run', 'noise.json');
      if (done.realisedNoise === null && existsSync(noiseFile)) done.realisedNoise = realisedOf(JSON.parse(readFileSync(noiseFile, 'utf8')));
      results.push({ ...done, variant: cell.variant });
      skipped.push(cell.id);
      print(`${tag} done before; skipped`);
      continue;
    }
    const tc = performance.now();
    const prefix = (l: string): void => {
      if (!cfg.quiet) print(`${tag} ${l}`);
    };
    // ---- teachers, once per teacher key
    let teacherSecs = 0;
    const tdir = join(dir, 'teachers', cell.teacherKey);
    if (needTeachers) {
      const tRun = new RunDir(tdir);
      const done = Array.from({ length: cell.variant.teachers }, (_, i) => existsSync(tRun.teacherFile(i)) && existsSync(tRun.doneFile(`teacher-${i}`)));
      if (!done.every(Boolean)) {
        print(`${tag} teachers: training ${cell.variant.teachers} in ${tdir}`);
        const tt = performance.now();
        await runPipeline(pipelineOptions(cfg, cell, tdir, { stage: 'teachers' }), { ...hooks.pipeline, print: prefix });
        teacherSecs = (performance.now() - tt) / 1000;
      } else print(`${tag} teachers: reusing ${tdir}`);
    }
    // ---- students, in the cell's own run directory sharing the teachers; a roskd-only
    // ablation reuses the other methods' results of its base cell (same students exactly)
    const base = baseCellOf(cfg, cell, cells);
    const baseResult = base ? results.find((r) => r.id === base.id) : undefined;
    const methodsToRun = baseResult ? cfg.methods.filter((m) => m === 'roskd' || !baseResult.methods[m]) : cfg.methods;
    const runDir = join(cellDir, 'run');
    const run = new RunDir(runDir);
    if (needTeachers)
      for (let i = 0; i < cell.variant.teachers; i++) {
        linkInto(join(tdir, `teacher-${i}.safetensors`), run.teacherFile(i));
        linkInto(join(tdir, 'checkpoints', `teacher-${i}.done.json`), run.doneFile(`teacher-${i}`));
        linkInto(join(tdir, 'checkpoints', `teacher-${i}.train-logits.f32`), join(run.checkpointDir, `teacher-${i}.train-logits.f32`));
      }
    print(`${tag} students: ${methodsToRun.join(', ')}${cell.variant.label ? ` (${cell.variant.label})` : ''}${baseResult && methodsToRun.length < cfg.methods.length ? `; ${cfg.methods.filter((m) => !methodsToRun.includes(m)).join(', ')} from ${baseResult.id}` : ''}`);
    const ts = performance.now();
    const res = await runPipeline(pipelineOptions(cfg, cell, runDir, { stage: 'all', methods: methodsToRun }), { ...hooks.pipeline, print: prefix });
    const studentSecs = (performance.now() - ts) / 1000;
    // the teacher logits computed by this cell serve later variants sharing the teachers
    if (needTeachers) for (let i = 0; i < cell.variant.teachers; i++) linkInto(join(run.checkpointDir, `teacher-${i}.train-logits.f32`), join(tdir, 'checkpoints', `teacher-${i}.train-logits.f32`));

    // ---- clean and adversarial evaluation of every student
    const ta = performance.now();
    const { ds } = await loadData(res.opts);
    const methods: CellResult['methods'] = {};
    for (const method of cfg.methods) {
      if (!methodsToRun.includes(method)) {
        methods[method] = { ...baseResult!.methods[method]!, sharedFrom: baseResult!.id };
        continue;
      }
      const file = run.studentFile(method);
      const st = await loadSafetensors(file);
      const meta = readModelMeta(st.metadata, file);
      const model = buildModel(meta, 0);
      try {
        copyIntoModel(model, st, file);
        model.eval();
        // the model's own normalisation, as trained
        const space = { ...ds, mean: meta.mean, std: meta.std };
        const full = await evaluateRobustness(model, ds.test, space, { attacks: [], batchSize: cfg.attackBatchSize });
        const adv = specs.length ? await evaluateRobustness(model, ds.test, space, { attacks: specs, batchSize: cfg.attackBatchSize, limit: cfg.attackLimit, seed: cell.seed }) : null;
        const row = res.report?.rows.find((r) => r.name === `student-${method}`);
        methods[method] = {
          clean: full.clean,
          cleanSubset: adv ? adv.clean : null,
          attacks: adv ? adv.attacks.map((a) => ({ label: a.label, kind: a.attack.kind, name: a.name, eps: a.attack.eps, accuracy: a.accuracy, macroF1: a.macroF1, auc: a.auc, loss: a.loss, flipped: a.flipped })) : [],
          attackImages: adv?.n ?? 0,
          pipelineTest: row ? { acc: row.test.acc, f1: row.test.f1, auc: row.test.auc } : null,
          bestEpoch: row?.bestEpoch ?? 0,
        };
        const a = methods[method]!;
        prefix(`${method}: clean acc ${pct(a.clean.accuracy)} F1 ${pct(a.clean.macroF1)} AUC ${num(a.clean.auc)}${a.attacks.length ? `; ${a.attacks.map((x) => `${x.label} ${pct(x.accuracy)}`).join(', ')}` : ''}`);
      } finally {
        model.dispose();
      }
    }
    const attackSecs = (performance.now() - ta) / 1000;
    const result: CellResult = {
      id: cell.id, variant: cell.variant, noiseRate: cell.noiseRate, seed: cell.seed, teacherKey: cell.teacherKey,
      realisedNoise: realisedOf(res.report?.noise),
      methods,
      teachers: (res.report?.rows ?? []).filter((r) => r.role === 'teacher').map((r) => ({ name: r.name, arch: r.arch, test: { acc: r.test.acc, f1: r.test.f1, auc: r.test.auc } })),
      secs: { teachers: teacherSecs, students: studentSecs, attacks: attackSecs, total: (performance.now() - tc) / 1000 },
      finished: new Date().toISOString(),
    };
    writeFileAtomic(resultFile, JSON.stringify(result, null, 2) + '\n');
    results.push(result);
    ran.push(cell.id);
    print(`${tag} done in ${result.secs.total.toFixed(0)} s (teachers ${teacherSecs.toFixed(0)} s, students ${studentSecs.toFixed(0)} s, evaluation ${attackSecs.toFixed(0)} s); elapsed ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    writeStudyOutputs(dir, cfg, results);
  }
  const summary = writeStudyOutputs(dir, cfg, results);
  return { dir, cells: results, ran, skipped, summary };
}

/** The realised label-noise rate of a noise.json / report noise record (either field name). */
function realisedOf(noise: unknown): number | null {
  const n = noise as { realisedRate?: number; actualRate?: number } | undefined;
  const v = n?.realisedRate ?? n?.actualRate;
  return typeof v === 'number' ? v : null;
}

// ---------------------------------------------------------------- summary

export interface Stat {
  mean: number;
  std: number;
  n: number;
}

export interface SummaryRow {
  variant: string;
  method: Method;
  noiseRate: number;
  seeds: number[];
  clean: { accuracy: Stat; macroF1: Stat; auc: Stat };
  /** keyed by attack label ("fgsm 2/255"); 'clean (attacked subset)' is the eps = 0 point */
  attacks: Record<string, { kind: string; eps: number; accuracy: Stat; macroF1: Stat; auc: Stat }>;
}

/** Mean and sample standard deviation (n - 1; 0 for a single value) of the finite values. */
export function stat(values: number[]): Stat {
  const v = values.filter(Number.isFinite);
  const n = v.length;
  if (n === 0) return { mean: NaN, std: NaN, n: 0 };
  const mean = v.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}

export function summarize(cells: CellResult[], cfg: Pick<StudyConfig, 'methods'>): SummaryRow[] {
  const groups = new Map<string, { variant: string; method: Method; noiseRate: number; items: { seed: number; r: MethodResult }[] }>();
  for (const c of cells)
    for (const method of cfg.methods) {
      const r = c.methods[method];
      if (!r) continue;
      const key = `${c.variant.label}|${method}|${c.noiseRate}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { variant: c.variant.label, method, noiseRate: c.noiseRate, items: [] }));
      g.items.push({ seed: c.seed, r });
    }
  const rows: SummaryRow[] = [];
  for (const g of groups.values()) {
    const pick = (f: (r: MethodResult) => MetricRow | null | undefined) => ({
      accuracy: stat(g.items.map((i) => f(i.r)?.accuracy ?? NaN)),
      macroF1: stat(g.items.map((i) => f(i.r)?.macroF1 ?? NaN)),
      auc: stat(g.items.map((i) => f(i.r)?.auc ?? NaN)),
    });
    const attacks: SummaryRow['attacks'] = {};
    const labels = [...new Set(g.items.flatMap((i) => i.r.attacks.map((a) => a.label)))];
    if (g.items.some((i) => i.r.cleanSubset)) attacks[CLEAN_SUBSET] = { kind: 'clean', eps: 0, ...pick((r) => r.cleanSubset) };
    for (const l of labels) {
      const first = g.items.flatMap((i) => i.r.attacks).find((a) => a.label === l)!;
      attacks[l] = { kind: first.name, eps: first.eps, ...pick((r) => r.attacks.find((a) => a.label === l)) };
    }
    rows.push({ variant: g.variant, method: g.method, noiseRate: g.noiseRate, seeds: g.items.map((i) => i.seed), clean: pick((r) => r.clean), attacks });
  }
  const mi = (m: Method) => cfg.methods.indexOf(m);
  return rows.sort((a, b) => (a.variant < b.variant ? -1 : a.variant > b.variant ? 1 : a.noiseRate - b.noiseRate || mi(a.method) - mi(b.method)));
}

const CLEAN_SUBSET = 'clean (attacked subset)';
const pct = (v: number): string => (Number.isFinite(v) ? (100 * v).toFixed(1) : '-');
const num = (v: number, d = 3): string => (Number.isFinite(v) ? v.toFixed(d) : '-');
const pm = (s: Stat, as: 'pct' | 'num'): string => {
  if (!s.n) return '-';
  const f = as === 'pct' ? (v: number) => (100 * v).toFixed(1) : (v: number) => v.toFixed(3);
  return s.n > 1 ? `${f(s.mean)} ± ${f(s.std)}` : f(s.mean);
};

type MetricKey = 'accuracy' | 'macroF1' | 'auc';
const METRICS: { key: MetricKey; title: string; as: 'pct' | 'num' }[] = [
  { key: 'accuracy', title: 'accuracy %', as: 'pct' },
  { key: 'macroF1', title: 'macro-F1 %', as: 'pct' },
  { key: 'auc', title: 'macro AUC', as: 'num' },
];

function mdTable(head: string[], body: string[][]): string {
  // numeric columns (numbers, ± spreads, bold bests, '-') right-aligned, text left
  const numeric = (i: number) => i > 0 && body.length > 0 && body.every((b) => /^(\*\*)?(-|-?[\d.]+( ± [\d.]+)?)(\*\*)?$/.test(b[i] ?? ''));
  const align = head.map((_, i) => (numeric(i) ? '--:' : ':--'));
  return [`| ${head.join(' | ')} |`, `| ${align.join(' | ')} |`, ...body.map((b) => `| ${b.join(' | ')} |`)].join('\n');
}

/** Bolds the best (highest mean) cell of each column among the method rows. */
function boldBest(body: string[][], means: number[][]): string[][] {
  const out = body.map((r) => [...r]);
  for (let c = 0; c < (means[0]?.length ?? 0); c++) {
    let best = -Infinity;
    for (const r of means) if (Number.isFinite(r[c])) best = Math.max(best, r[c]);
    means.forEach((r, i) => {
      if (Number.isFinite(r[c]) && r[c] === best && means.length > 1) out[i][c + 1] = `**${out[i][c + 1]}**`;
    });
  }
  return out;
}

interface Comparison {
  variant: string;
  noiseRate: number;
  condition: string;
  metric: MetricKey;
  baseline: Method;
  roskd: Stat;
  other: Stat;
}

/** Every (variant, noise rate, condition, metric, baseline) where RoS-KD's mean is not above the baseline's. */
export function roskdShortfalls(summary: SummaryRow[]): { total: number; wins: number; losses: Comparison[] } {
  let total = 0;
  let wins = 0;
  const losses: Comparison[] = [];
  for (const r of summary) {
    if (r.method !== 'roskd') continue;
    for (const b of summary) {
      if (b.method === 'roskd' || b.variant !== r.variant || b.noiseRate !== r.noiseRate) continue;
      const conds: [string, Record<MetricKey, Stat>, Record<MetricKey, Stat> | undefined][] = [['clean', r.clean, b.clean]];
      for (const [l, a] of Object.entries(r.attacks)) if (l !== CLEAN_SUBSET) conds.push([l, a, b.attacks[l]]);
      for (const [cond, rs, bs] of conds) {
        if (!bs) continue;
        for (const { key } of METRICS) {
          if (!Number.isFinite(rs[key].mean) || !Number.isFinite(bs[key].mean)) continue;
          total++;
          if (rs[key].mean > bs[key].mean) wins++;
          else losses.push({ variant: r.variant, noiseRate: r.noiseRate, condition: cond, metric: key, baseline: b.method, roskd: rs[key], other: bs[key] });
        }
      }
    }
  }
  return { total, wins, losses };
}

function studyMarkdown(cfg: StudyConfig, cells: CellResult[], summary: SummaryRow[], plots: string[], plotError: string | null): string {
  const L: string[] = [];
  const t = resolveOptions({ ...cfg.train, progress: 'none' }).opts;
  const variants = [...new Set(summary.map((r) => r.variant))];
  const noiseRates = [...new Set(summary.map((r) => r.noiseRate))].sort((a, b) => a - b);
  const seeds = [...new Set(cells.map((c) => c.seed))].sort((a, b) => a - b);
  const conditions = [...new Set(summary.flatMap((r) => Object.keys(r.attacks)))];
  const total = cellsOf(cfg).length;
  L.push(`# RoS-KD noise-robustness study: ${t.data}`, '');
  L.push(
    `${cells.length} of ${total} cells done (${cfg.methods.join(', ')} x ${t.noiseType} noise ${noiseRates.join(', ')} x seeds ${seeds.join(', ')}${variants.length > 1 ? ` x variants ${variants.map((v) => v || 'default').join('; ')}` : ''}). ` +
      `Every number is mean ± sample standard deviation over the seeds (n = ${seeds.length} where all are done) of a metric on the **clean test labels**; models were trained on the noisy labels only and each model's best epoch was picked on the clean validation set (by ${t.selectBy}).`,
    '',
  );
  L.push(
    `Setup: ${t.data}${t.data === 'synthetic' ? ` (${t.syntheticN} training images)` : ''}${t.trainLimit ? `, first ${t.trainLimit} training images` : ''}, ${t.size} px; ` +
      `teachers ${t.teacherArchs.join(',')} width ${t.teacherWidth}, ${t.teacherEpochs} epochs, K = ${cfg.teachers.join('/')} on subsets of ${cfg.subsetFraction.join('/')} of the noisy train set; ` +
      `student ${t.student} width ${t.studentWidth}, ${t.studentEpochs} epochs, T = ${t.temperature}, alpha = ${t.alpha}, batch ${t.batchSize}, ${t.optimizer} lr ${t.studentLr}. ` +
      `The same teachers serve every student method of a (noise rate, seed${variants.length > 1 ? ', K, subset fraction' : ''}) cell.`,
    '',
  );
  const specs = attackSpecs(cfg);
  if (specs.length)
    L.push(
      `Attacks: ${cfg.attacks.map((k) => k.toUpperCase()).join(' and ')} at eps ${cfg.eps.map(formatEps).join(', ')} in pixel units ([0, 1] scale): images are un-normalised, perturbed, projected on the eps-ball and clamped to [0, 1] every step, then re-normalised; gradients by autograd w.r.t. the input, model in eval mode, cross-entropy loss` +
        `${cfg.attacks.includes('pgd') ? `; PGD-${cfg.pgdNorm === 'l2' ? 'L2' : 'Linf'} ${cfg.pgdSteps} steps of ${cfg.pgdStepSize ? formatEps(cfg.pgdStepSize) : '2.5 eps / steps'}, random start, strongest iterate kept per image` : ''}. ` +
        `Attacked metrics use ${cfg.attackLimit ? `a seeded random subset of ${cfg.attackLimit} test images per cell` : 'the whole test split'}${cfg.attackLimit ? `; "${CLEAN_SUBSET}" is the clean score on that subset` : ''}.`,
      '',
    );

  for (const v of variants) {
    const rows = summary.filter((r) => r.variant === v);
    if (variants.length > 1) L.push(`## Variant: ${v || 'default'}`, '');
    L.push(`${variants.length > 1 ? '###' : '##'} Clean test metrics vs label noise`, '');
    for (const m of METRICS) {
      L.push(`**${m.title}** (rows: method; columns: noise rate)`, '');
      const body: string[][] = [];
      const means: number[][] = [];
      for (const method of cfg.methods) {
        const mr = noiseRates.map((nr) => rows.find((r) => r.method === method && r.noiseRate === nr));
        if (mr.every((x) => !x)) continue;
        body.push([method, ...mr.map((r) => (r ? pm(r.clean[m.key], m.as) : '-'))]);
        means.push(mr.map((r) => r?.clean[m.key].mean ?? NaN));
      }
      L.push(mdTable(['method', ...noiseRates.map((n) => `noise ${n}`)], boldBest(body, means)), '');
    }
    if (conditions.length) {
      L.push(`${variants.length > 1 ? '###' : '##'} Under attack`, '');
      for (const nr of noiseRates)
        for (const m of METRICS) {
          L.push(`**${m.title}, noise ${nr}** (rows: method; columns: attack)`, '');
          const body: string[][] = [];
          const means: number[][] = [];
          for (const method of cfg.methods) {
            const r = rows.find((x) => x.method === method && x.noiseRate === nr);
            if (!r) continue;
            body.push([method, ...conditions.map((c) => (r.attacks[c] ? pm(r.attacks[c][m.key], m.as) : '-'))]);
            means.push(conditions.map((c) => r.attacks[c]?.[m.key].mean ?? NaN));
          }
          L.push(mdTable(['method', ...conditions], boldBest(body, means)), '');
        }
    }
  }

  if (cfg.methods.includes('roskd') && cfg.methods.length > 1) {
    const s = roskdShortfalls(summary);
    L.push('## Where RoS-KD did not beat a baseline', '');
    L.push(`RoS-KD's mean was above the baseline's in ${s.wins} of ${s.total} comparisons (every${variants.length > 1 ? ' variant,' : ''} noise rate, condition, metric and baseline). It was **not** above in ${s.losses.length}:`, '');
    if (s.losses.length) {
      const within = (c: Comparison) => (c.roskd.n < 2 || c.other.n < 2 ? 'n/a (1 seed)' : Math.abs(c.roskd.mean - c.other.mean) <= Math.hypot(c.roskd.std, c.other.std) ? 'yes' : 'no');
      const count = new Map<string, { n: number; beyond: number }>();
      for (const c of s.losses) {
        const k = `${c.baseline}|${c.noiseRate}|${c.condition === 'clean' ? 'clean' : 'attacked'}`;
        const e = count.get(k) ?? { n: 0, beyond: 0 };
        e.n++;
        if (within(c) === 'no') e.beyond++;
        count.set(k, e);
      }
      L.push(
        [...count.entries()]
          .map(([k, e]) => {
            const [b, nr, cond] = k.split('|');
            return `- vs **${b}** at noise ${nr}, ${cond}: ${e.n} metric/condition pair(s)${e.beyond ? `, ${e.beyond} by more than one combined standard deviation` : ''}`;
          })
          .join('\n'),
        '',
      );
      const byGap = [...s.losses].sort((a, b) => b.other.mean - b.roskd.mean - (a.other.mean - a.roskd.mean)); // largest gap first
      L.push(
        mdTable(
          [...(variants.length > 1 ? ['variant'] : []), 'noise', 'condition', 'metric', 'baseline', 'roskd', 'baseline value', 'difference', 'within 1 sd?'],
          byGap.map((c) => {
            const as = METRICS.find((m) => m.key === c.metric)!.as;
            const d = c.roskd.mean - c.other.mean;
            return [...(variants.length > 1 ? [c.variant || 'default'] : []), String(c.noiseRate), c.condition, c.metric, c.baseline, pm(c.roskd, as), pm(c.other, as), as === 'pct' ? (100 * d).toFixed(1) : d.toFixed(3), within(c)];
          }),
        ),
        '',
      );
    } else L.push('(none)', '');
    L.push('"within 1 sd": the gap is smaller than the combined standard deviation over seeds (sqrt(sd1^2 + sd2^2)), i.e. not evidence either way at this number of seeds. Accuracy and F1 gaps are in percentage points, AUC gaps in AUC units.', '');
  }

  L.push('## Per cell', '');
  const perHead = ['cell', 'realised noise', 'method', 'acc %', 'F1 %', 'AUC', ...(specs.length ? specs.map((s) => `${attackLabel(s)} acc %`) : [])];
  const perBody: string[][] = [];
  for (const c of cells)
    for (const method of cfg.methods) {
      const r = c.methods[method];
      if (!r) continue;
      perBody.push([c.id, c.realisedNoise === null ? '-' : c.realisedNoise.toFixed(3), r.sharedFrom ? `${method} (= ${r.sharedFrom})` : method, pct(r.clean.accuracy), pct(r.clean.macroF1), num(r.clean.auc), ...specs.map((s) => pct(r.attacks.find((a) => a.label === attackLabel(s))?.accuracy ?? NaN))]);
    }
  L.push(mdTable(perHead, perBody), '');
  L.push('Teachers (test, clean labels) per cell: ' + cells.map((c) => `${c.id}: ${c.teachers.map((t) => `${pct(t.test.acc)}%`).join('/') || '-'}`).join('; ') + '.', '');
  const secs = cells.reduce((a, c) => ({ teachers: a.teachers + c.secs.teachers, students: a.students + c.secs.students, attacks: a.attacks + c.secs.attacks, total: a.total + c.secs.total }), { teachers: 0, students: 0, attacks: 0, total: 0 });
  L.push(`Wall time of the cells run so far: ${(secs.total / 60).toFixed(1)} min (teachers ${(secs.teachers / 60).toFixed(1)}, students ${(secs.students / 60).toFixed(1)}, evaluation and attacks ${(secs.attacks / 60).toFixed(1)}).`, '');
  L.push('## Plots', '');
  if (plotError) L.push(`(plots could not be drawn: ${plotError})`, '');
  for (const p of plots) L.push(`![${p}](${p})`);
  L.push('', 'Files: study.json (everything), cells/<cell>/cell.json (one cell), cells/<cell>/run/ (the pipeline run: report.md, models), teachers/<key>/ (shared teachers).', '');
  return L.join('\n');
}

function seriesName(method: string, variant: string): string {
  return variant ? `${method} [${variant}]` : method;
}

/** Writes study.json, study.md and the PNG plots; returns the summary. */
export function writeStudyOutputs(dir: string, cfg: StudyConfig, cells: CellResult[]): SummaryRow[] {
  const summary = summarize(cells, cfg);
  const plots: string[] = [];
  let plotError: string | null = null;
  try {
    const variants = [...new Set(summary.map((r) => r.variant))];
    const noiseRates = [...new Set(summary.map((r) => r.noiseRate))].sort((a, b) => a - b);
    for (const m of METRICS) {
      const series: Series[] = [];
      for (const v of variants)
        for (const method of cfg.methods) {
          const rows = summary.filter((r) => r.variant === v && r.method === method).sort((a, b) => a.noiseRate - b.noiseRate);
          if (rows.length) series.push({ name: seriesName(method, v), xs: rows.map((r) => r.noiseRate), ys: rows.map((r) => (m.as === 'pct' ? 100 : 1) * r.clean[m.key].mean) });
        }
      if (!series.length) continue;
      const f = `clean-${m.key}-vs-noise.png`;
      linePlotPng(join(dir, f), { title: `clean test ${m.title} vs label noise`, xLabel: 'noise rate', yLabel: m.title, series });
      plots.push(f);
    }
    const kinds = [...new Set(summary.flatMap((r) => Object.values(r.attacks).filter((a) => a.kind !== 'clean').map((a) => a.kind)))];
    for (const kind of kinds)
      for (const nr of noiseRates)
        for (const m of METRICS) {
          const series: Series[] = [];
          for (const v of variants)
            for (const method of cfg.methods) {
              const r = summary.find((x) => x.variant === v && x.method === method && x.noiseRate === nr);
              if (!r) continue;
              const pts = Object.values(r.attacks).filter((a) => a.kind === kind || a.kind === 'clean').sort((a, b) => a.eps - b.eps);
              series.push({ name: seriesName(method, v), xs: pts.map((a) => a.eps * 255), ys: pts.map((a) => (m.as === 'pct' ? 100 : 1) * a[m.key].mean) });
            }
          if (!series.length) continue;
          const f = `${kind}-${m.key}-vs-eps-noise${nr}.png`;
          linePlotPng(join(dir, f), { title: `${kind}: ${m.title} vs eps (noise ${nr})`, xLabel: 'epsilon (grey levels of 255)', yLabel: m.title, series });
          plots.push(f);
        }
  } catch (e) {
    plotError = (e as Error).message;
  }
  writeFileAtomic(join(dir, 'study.json'), JSON.stringify({ config: { ...cfg, train: cfg.train }, identity: identity(cfg), cells, summary, plots, updated: new Date().toISOString() }, null, 2) + '\n');
  writeFileAtomic(join(dir, 'study.md'), studyMarkdown(cfg, cells, summary, plots, plotError));
  return summary;
}

/** Loads the finished cells of a study directory (for re-rendering outputs). */
export function readCells(dir: string): CellResult[] {
  const root = join(dir, 'cells');
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((d) => existsSync(join(root, d, 'cell.json')))
    .map((d) => JSON.parse(readFileSync(join(root, d, 'cell.json'), 'utf8')) as CellResult);
}

// ---------------------------------------------------------------- command line

async function main(): Promise<void> {
  let cfg: StudyConfig;
  try {
    cfg = parseStudyArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    process.exit(2);
  }
  if (cfg.help) {
    console.log(STUDY_HELP);
    return;
  }
  if (cfg.dryRun) {
    const cells = cellsOf(cfg);
    console.log(`study ${resolve(cfg.out)}: ${cells.length} cells, attacks ${attackSpecs(cfg).map(attackLabel).join(', ') || 'none'}`);
    for (const c of cells) console.log(`  ${c.id}${c.variant.label ? `  (${c.variant.label})` : ''}${existsSync(join(resolve(cfg.out), 'cells', c.id, 'cell.json')) ? '  done' : ''}`);
    console.log(`train options: ${JSON.stringify(cfg.train)}`);
    return;
  }
  // Ctrl-C / SIGTERM: checkpoint after this step, exit 130 (the work runs in a child process)
  await supervise({ onInterrupt: requestInterrupt, training: isTraining, resumeHint: 'rerun the same command to resume the study' });
  const t0 = performance.now();
  try {
    const r = await runStudy(cfg);
    console.log(`\n${r.ran.length} cell(s) run, ${r.skipped.length} skipped (done before); ${((performance.now() - t0) / 60000).toFixed(1)} min`);
    console.log(`results: ${join(r.dir, 'study.md')}`);
  } catch (e) {
    const err = e as Error;
    process.stderr.write('\n'); // end the live progress line
    if (err instanceof InterruptedError || isInterruptRequested()) {
      console.error(`${err.message}\nrerun the same command to resume the study`);
      process.exit(130);
    }
    console.error(`error: ${err.message}`);
    if (process.env.ROSKD_DEBUG) console.error(err.stack);
    process.exit(err instanceof UsageError ? 2 : err instanceof NanLossError ? 3 : 1);
  }
}

if (process.argv[1]?.endsWith('kd/study.ts')) await main();
