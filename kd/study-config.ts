// The study's configuration: its grid (methods x noise rates x seeds x ablation variants), attack
// settings, presets, --help and the command-line parser (options it does not know go to
// kd/train.ts's parser and apply to every cell).
import { parseFlags, UsageError, type OptionSpec } from './cli.ts';
import { dataKind, LOADER_DEFAULT_SIZE, parseArgs, resolveOptions, upgradeStoredOptions, METHODS, NOISE_DEFINITIONS, SPECS, type Method, type Options } from './config.ts';
import { parseEpsList, type Norm } from './adversarial.ts';

export type Choice = 'stochastic' | 'average';
export type TeacherPool = 'all' | 'out-of-subset';
export type ValLabels = 'clean' | 'noisy';

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
  teacherPool: TeacherPool[];
  valLabels: ValLabels[];
  /** every other kd/train.ts option (data, size, epochs, widths, ...) */
  train: Partial<Options>;
  quiet: boolean;
  dryRun: boolean;
  help: boolean;
  /** run only these cells and leave the study outputs to a later run (one Slurm array task; kd/slurm/study.ts) */
  cells?: string[];
  /** train nothing: write study.json / study.md / plots from the cells finished so far (a partial study can be published) */
  reportOnly?: boolean;
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
  'paper-small': {
    about: 'the issue-15 study (our reading of the paper at CPU scale; kd/train.ts --preset paper-small; settings measured in docs/results/architecture-sweep.md): resnet50/densenet121/mobilenet_v2 teachers (width 1/8), a resnet18 student (width 1/8), 10 epochs each, AdamW (teachers lr 0.005, student 0.002), batch 32, PneumoniaMNIST 28 px (--data breastmnist for the other set), symmetric noise 0, 0.2, 0.4, ce/kd/avgkd/roskd x teacher pool all and out-of-subset, 5 seeds, FGSM and PGD-10 at 1,2,4/255 on all test images. About 15 min a cell on BreastMNIST on a busy 2-core CPU',
    study: { methods: [...METHODS], noiseRates: [0, 0.2, 0.4], seeds: [0, 1, 2, 3, 4], attacks: ['fgsm', 'pgd'], eps: [1 / 255, 2 / 255, 4 / 255], pgdSteps: 10, attackLimit: 0, attackBatchSize: 128, teacherPool: ['all', 'out-of-subset'] },
    train: {
      preset: 'paper-small', data: 'pneumoniamnist', size: 28, noiseType: 'symmetric', teachers: 3, teacherArchs: ['resnet50', 'densenet121', 'mobilenet_v2'], teacherWidth: 0.125, student: 'resnet18', studentWidth: 0.125,
      teacherEpochs: 10, studentEpochs: 10, optimizer: 'adamw', teacherLr: 0.005, studentLr: 0.002, warmupEpochs: 2, batchSize: 32, evalBatchSize: 256,
    },
  },
  pneumonia: {
    about: 'a small PneumoniaMNIST study (--data pneumoniamnist: $ROSKD_DATA_DIR, the cache, else a download; 28 px, first 800 training images, official val/test): noise 0 and 0.4 x 3 seeds, FGSM and PGD-5 at 1,2,4/255 on 128 test images per cell',
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
    pgdSteps: 10, pgdNorm: 'linf', attackLimit: 0, attackBatchSize: 128, teachers: [], subsetFraction: [], ema: [], teachersPerBatch: [], choice: ['stochastic'], teacherPool: [], valLabels: [],
    train: {}, quiet: false, dryRun: false, help: false,
  };
}

export const STUDY_HELP = `The RoS-KD noise-robustness study: methods x noise rates x seeds (x ablations), each student
evaluated on the clean test labels, clean and under FGSM / PGD; outputs study.json, study.md
(mean ± std over seeds) and PNG plots. Rerun the same command to resume.

usage: npx tsx kd/study.ts [--preset demo|pneumonia|paper-small|full] [options] [kd/train.ts options]

grid:
  --preset NAME            demo | pneumonia | paper-small | full (default full; see below)
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
  --teacher-pool all,out-of-subset   roskd's teacher per batch among all (the paper) or, per sample,
                           among those that did not train on it (our extension); ce/kd/avgkd reused
  --val-labels clean,noisy model selection on clean or noisy validation labels (own teachers each)
other:
  --quiet                  only the study's own lines (no per-epoch lines)
  --dry-run                print the grid and exit
  --report-only            train nothing: write study.json, study.md and the plots from the cells finished
                           so far (same command as the study's; safe while it runs)
  --cells ID,ID            run only these cells (ids as --dry-run prints them); study.md is left to a
                           run without --cells (what each Slurm array task does)
  --submit slurm           run the cells as Slurm jobs (one array task per cell, then the outputs);
                           --slurm "OPTS", --account, --qos, ... as in npx tsx kd/submit.ts --help
  any kd/train.ts option   (--data, --size, --student-epochs, --teacher-archs, ...) applies to every cell

presets:
${Object.entries(STUDY_PRESETS).map(([k, p]) => `  ${k.padEnd(10)}${p.about}`).join('\n')}`;

/** A comma list of numbers each passing check; RangeError names the bad one. */
const numList = (s: string, check: (v: number) => boolean, what: string): number[] => {
  const vals = s.split(',').map((x) => x.trim()).filter(Boolean).map(Number);
  if (!vals.length) throw new RangeError('give at least one value');
  for (const v of vals) if (!Number.isFinite(v) || !check(v)) throw new RangeError(`${v} is not ${what}`);
  return vals;
};

const ints = (what: string, check: (v: number) => boolean) => (s: string): number[] => numList(s, (x) => Number.isInteger(x) && check(x), what);
const first = (f: (s: string) => number[]) => (s: string): number => f(s)[0];

function methodList(s: string): Method[] {
  const ms = s.split(',').map((x) => x.trim()).filter(Boolean);
  for (const m of ms) if (!METHODS.includes(m as Method)) throw new RangeError(`unknown method ${JSON.stringify(m)} (${METHODS.join(', ')})`);
  if (new Set(ms).size !== ms.length || !ms.length) throw new RangeError(`give distinct methods, got ${JSON.stringify(ms.join(','))}`);
  return ms as Method[];
}

function choiceList<T extends string>(allowed: readonly T[], what: string, dropNone = false) {
  return (s: string): T[] => {
    const xs = s.split(',').map((x) => x.trim()).filter((x) => x && !(dropNone && x === 'none'));
    for (const x of xs) if (!allowed.includes(x as T)) throw new RangeError(`${what}, got ${JSON.stringify(x)}`);
    return xs as T[];
  };
}

/** The study's own options; every other option goes to kd/train.ts's parser. */
const STUDY_OPTIONS: OptionSpec<keyof StudyConfig | 'seedList'>[] = [
  { key: 'preset', flag: 'preset', kind: 'string' },
  { key: 'out', flag: 'out', kind: 'string' },
  { key: 'methods', flag: 'methods', kind: 'list', aliases: ['method'], parse: methodList },
  { key: 'noiseRates', flag: 'noise-rates', kind: 'list', aliases: ['noise-rate'], parse: (s) => numList(s, (x) => x >= 0 && x <= 1, 'a rate in [0, 1]') },
  // --seeds N = seeds 0..N-1; a comma list (or --seed) names the seeds
  { key: 'seeds', flag: 'seeds', kind: 'list', parse: (s) => (s.includes(',') ? ints('a non-negative integer', (x) => x >= 0)(s) : Array.from({ length: ints('a positive count', (x) => x >= 1)(s)[0] }, (_, k) => k)) },
  { key: 'seedList', flag: 'seed', kind: 'list', parse: ints('a non-negative integer', (x) => x >= 0) },
  { key: 'attacks', flag: 'attacks', kind: 'list', parse: choiceList(['fgsm', 'pgd'] as const, 'fgsm, pgd or none', true) },
  { key: 'eps', flag: 'eps', kind: 'list', parse: parseEpsList },
  { key: 'pgdSteps', flag: 'pgd-steps', kind: 'int', parse: first(ints('a positive integer', (x) => x >= 1)) },
  { key: 'pgdStepSize', flag: 'pgd-step-size', kind: 'number', parse: (s) => parseEpsList(s)[0] },
  { key: 'pgdNorm', flag: 'pgd-norm', kind: 'string', choices: ['linf', 'l2'] },
  { key: 'attackLimit', flag: 'attack-limit', kind: 'int', parse: first(ints('a non-negative integer', (x) => x >= 0)) },
  { key: 'attackBatchSize', flag: 'attack-batch-size', kind: 'int', parse: first(ints('a positive integer', (x) => x >= 1)) },
  { key: 'teachers', flag: 'teachers', kind: 'list', parse: ints('a teacher count in 1..64', (x) => x >= 1 && x <= 64) },
  { key: 'subsetFraction', flag: 'subset-fraction', kind: 'list', parse: (s) => numList(s, (x) => x > 0 && x <= 1, 'a fraction in (0, 1]') },
  { key: 'ema', flag: 'ema', kind: 'list', parse: (s) => numList(s, (x) => x >= 0 && x < 1, 'a decay in [0, 1)') },
  { key: 'teachersPerBatch', flag: 'teachers-per-batch', kind: 'list', parse: ints('a positive integer', (x) => x >= 1) },
  { key: 'choice', flag: 'choice', kind: 'list', parse: choiceList(['stochastic', 'average'] as const, 'stochastic or average') },
  { key: 'valLabels', flag: 'val-labels', kind: 'list', parse: choiceList(['clean', 'noisy'] as const, 'clean or noisy') },
  { key: 'teacherPool', flag: 'teacher-pool', kind: 'list', parse: choiceList(['all', 'out-of-subset'] as const, 'all or out-of-subset') },
  { key: 'quiet', flag: 'quiet', kind: 'bool' },
  { key: 'dryRun', flag: 'dry-run', kind: 'bool' },
  { key: 'cells', flag: 'cells', kind: 'list' },
  { key: 'reportOnly', flag: 'report-only', kind: 'bool' },
];

const MANAGED = 'is a kd/train.ts option the study manages itself (it always resumes)';

/** Parses the study's command line; every unknown option goes to kd/train.ts's parser. */
export function parseStudyArgs(argv: readonly string[]): StudyConfig {
  const p = parseFlags(argv, STUDY_OPTIONS, { passUnknown: true, forbidden: { stage: MANAGED, 'teacher-index': MANAGED, resume: MANAGED } });
  const given = Object.fromEntries(p.values) as Partial<StudyConfig> & { seedList?: number[] };
  if (given.seedList) {
    given.seeds = given.seedList;
    delete given.seedList;
  }
  if (p.help) given.help = true;
  const explicit = parseArgs(p.rest);
  const train: Partial<Options> = {};
  for (const k of explicit.explicit) (train as Record<string, unknown>)[k] = explicit.opts[k];
  // what --epochs and the loader's default size resolved to must override the study preset's values
  if (explicit.explicit.has('epochs') && train.epochs) train.teacherEpochs = train.studentEpochs = train.epochs;
  if (explicit.explicit.has('data') && !explicit.explicit.has('size') && LOADER_DEFAULT_SIZE[dataKind(explicit.opts.data)]) train.size = explicit.opts.size;
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
  cfg.out = cfg.out || `runs/study-${name}`;
  const base = resolveOptions({ ...cfg.train, progress: 'none' }).opts; // validates the train options
  if (!cfg.teachers.length) cfg.teachers = [base.teachers];
  if (!cfg.subsetFraction.length) cfg.subsetFraction = [base.subsetFraction];
  if (!cfg.ema.length) cfg.ema = [base.ema];
  if (!cfg.teachersPerBatch.length) cfg.teachersPerBatch = [base.teachersPerBatch];
  if (!cfg.choice.length) cfg.choice = ['stochastic'];
  if (!cfg.teacherPool.length) cfg.teacherPool = [base.teacherPool];
  if (!cfg.valLabels.length) cfg.valLabels = [base.valLabels];
  if (!cfg.methods.length || !cfg.noiseRates.length || !cfg.seeds.length) throw new UsageError('the grid is empty: give methods, noise rates and seeds');
  for (const k of cfg.teachers) for (const t of cfg.teachersPerBatch) if (t > k) throw new UsageError(`--teachers-per-batch ${t} exceeds --teachers ${k}`);
  if (cfg.attacks.length && !cfg.eps.length) throw new UsageError('--eps: give at least one epsilon');
  if (cfg.reportOnly && cfg.cells) throw new UsageError('--report-only writes the outputs of every finished cell and runs none: leave out --cells');
  return cfg;
}

/** The identity of a study directory: options that change results (grid axes may grow). */
export function identity(cfg: StudyConfig): Record<string, unknown> {
  const t = resolveOptions({ ...cfg.train, progress: 'none' }).opts;
  const trainId: Record<string, unknown> = {};
  for (const s of SPECS) if (!['progress', 'help', 'out', 'preset', 'methods', 'method', 'noiseRate', 'seed', 'teachers', 'subsetFraction', 'ema', 'teachersPerBatch', 'teacherPool', 'valLabels', 'resume', 'stage', 'teacherIndex', 'attacks', 'evalBatchSize'].includes(s.key)) trainId[s.flag] = t[s.key];
  return { train: trainId, noiseDefinitions: NOISE_DEFINITIONS, attacks: { eps: cfg.eps, pgdSteps: cfg.pgdSteps, pgdStepSize: cfg.pgdStepSize ?? null, pgdNorm: cfg.pgdNorm, attackLimit: cfg.attackLimit } };
}

/**
 * Whether a stored study identity is the current one, reading an old file as today's options
 * mean it (config.ts upgradeStoredOptions: its 'symmetric' noise is flip-to-other, options added
 * since take their defaults).
 */
export function sameIdentity(prev: unknown, now: ReturnType<typeof identity>): boolean {
  const p = prev as { train?: Record<string, unknown>; noiseDefinitions?: number; attacks?: unknown } | null;
  if (!p || typeof p !== 'object' || !p.train) return false;
  const train = upgradeStoredOptions(p.train, p.noiseDefinitions);
  const up = { train: Object.fromEntries(Object.keys(now.train as Record<string, unknown>).map((k) => [k, train[k]])), noiseDefinitions: NOISE_DEFINITIONS, attacks: p.attacks };
  return JSON.stringify(up) === JSON.stringify(now);
}
