// Command-line options of kd/train.ts: one declarative table (name, type, default, help) from
// which the parser, the presets, --help and config.json are all derived, so an option cannot
// exist without being documented. Choices that interpret the RoS-KD paper are marked [paper].
import { convertValue, parseFlags, UsageError, type OptionSpec } from './cli.ts';
import { NOISE_TYPES, type NoiseType } from './data/noise.ts';

export { UsageError };

export type Method = 'ce' | 'kd' | 'avgkd' | 'roskd';
export const METHODS: readonly Method[] = ['ce', 'kd', 'avgkd', 'roskd'];
export type Stage = 'teachers' | 'student' | 'eval' | 'all';

export interface Options {
  preset: string;
  // data
  data: string;
  images: string;
  size: number;
  channels: number;
  syntheticN: number;
  syntheticDifficulty: number;
  trainLimit: number;
  noiseType: NoiseType;
  valLabels: 'clean' | 'noisy';
  noiseRate: number;
  augment: string[];
  cropPad: number;
  onBadImage: 'skip' | 'fail';
  maxPixels: number;
  // teachers
  teachers: number;
  teacherArchs: string[];
  teacherWidth: number;
  teacherEpochs: number;
  epochs: number;
  teacherLr: number;
  subsetFraction: number;
  // student
  student: string;
  studentWidth: number;
  studentEpochs: number;
  studentLr: number;
  method: Method;
  methods: Method[];
  temperature: number;
  alpha: number;
  teacherLogits: 'cache' | 'online' | 'auto';
  teachersPerBatch: number;
  teacherWeighting: 'uniform' | 'val';
  teacherPool: 'all' | 'out-of-subset';
  dropCollapsedTeachers: boolean;
  ema: number;
  smoothing: number;
  // optimisation (both)
  smallInput: 'auto' | 'on' | 'off';
  batchSize: number;
  evalBatchSize: number;
  optimizer: 'sgd' | 'adamw';
  momentum: number;
  weightDecay: number;
  normBiasDecay: number;
  warmupEpochs: number;
  schedule: 'cosine' | 'constant';
  selectBy: 'auc' | 'acc' | 'f1' | 'loss';
  // run control
  stage: Stage;
  teacherIndex: number;
  resume: boolean;
  out: string;
  seed: number;
  attacks: string[];
  progress: 'auto' | 'tty' | 'plain' | 'none';
  tensorboard: boolean;
  help: boolean;
}

interface Spec extends OptionSpec<keyof Options> {
  def: unknown;
  help: string;
  group: string;
  /** [paper] marks our reading of the RoS-KD paper */
  paper?: boolean;
}

const S = (s: Spec): Spec => s;

export const SPECS: Spec[] = [
  S({ key: 'preset', flag: 'preset', kind: 'string', def: 'demo', group: 'general', choices: ['demo', 'medmnist', 'paper', 'paper-small'], help: 'bundle of defaults (explicit options override it); see PRESETS below' }),
  // ---- data
  S({ key: 'data', flag: 'data', kind: 'string', def: 'synthetic', group: 'data', help: 'synthetic | <medmnist name, e.g. pneumoniamnist> | path/to/file.npz | chestxray14:<dir or csv> | isic2019:<ground-truth csv> | ham10000:<metadata csv> | folder:<dir of class folders>' }),
  S({ key: 'images', flag: 'images', kind: 'string', def: '', group: 'data', help: 'chestxray14:, isic2019:, ham10000: the folder holding the images (searched recursively, symbolic links followed)' }),
  S({ key: 'size', flag: 'size', kind: 'int', def: 28, min: 8, max: 512, group: 'data', help: 'image side in pixels (images are resized to size x size); without --size, ham10000: and isic2019: use 64 (their images are large photographs), everything else the preset\'s value' }),
  S({ key: 'channels', flag: 'channels', kind: 'int', def: 0, min: 0, max: 3, group: 'data', help: 'input channels for folder/CSV sets (1 gray, 3 RGB; 0 = the loader default)' }),
  S({ key: 'syntheticN', flag: 'synthetic-n', kind: 'int', def: 1200, min: 8, group: 'data', help: 'synthetic set: number of training images (val and test get 1/4 each)' }),
  S({ key: 'syntheticDifficulty', flag: 'synthetic-difficulty', kind: 'number', def: 1, min: 0, max: 4, group: 'data', help: 'synthetic set: how subtle the findings are (0 = all obvious, 1 = a mix of obvious and subtle, 2 = many borderline)' }),
  S({ key: 'trainLimit', flag: 'train-limit', kind: 'int', def: 0, min: 0, group: 'data', help: 'use only the first N training images (0 = all; quick experiments)' }),
  S({ key: 'noiseType', flag: 'noise-type', kind: 'string', def: 'flip-to-other', group: 'data', choices: [...NOISE_TYPES], help: 'label-noise model: symmetric = each chosen label replaced by a uniformly random class, its own included (so a fraction r(C-1)/C changes); flip-to-other = replaced by a random OTHER class (all r change; what "symmetric" meant before this option had both, and still the default); asymmetric = class c > 0 to class 0; pairflip = c to c+1 mod C (multi-label: per label bit)' }),
  S({ key: 'valLabels', flag: 'val-labels', kind: 'string', def: 'clean', group: 'data', choices: ['clean', 'noisy'], help: 'labels of the validation split that picks every model\'s best epoch and ranks the teachers: clean, or noisy (the same --noise-type and --noise-rate applied to val, as a clinic with noisy training labels would have); test labels are always clean' }),
  S({ key: 'noiseRate', flag: 'noise-rate', kind: 'number', def: 0, min: 0, max: 1, group: 'data', help: 'fraction of training labels corrupted (0 = clean); the realised transition matrix goes to noise.json; val and test keep clean labels (val: unless --val-labels noisy)' }),
  S({ key: 'augment', flag: 'augment', kind: 'list', def: [], group: 'data', choices: ['none', 'crop', 'flip', 'affine'], help: 'training augmentation, comma list (crop = random crop after padding, flip = horizontal flip, affine = rotation up to 5 degrees and scale up to 5%); off by default (flips are wrong for X-rays)' }),
  S({ key: 'cropPad', flag: 'crop-pad', kind: 'int', def: 2, min: 0, group: 'data', help: 'padding for --augment crop, pixels' }),
  S({ key: 'onBadImage', flag: 'on-bad-image', kind: 'string', def: 'fail', group: 'data', choices: ['skip', 'fail'], help: 'unreadable image in a folder/CSV set: fail naming it, or skip it and list it in the report' }),
  S({ key: 'maxPixels', flag: 'max-pixels', kind: 'number', def: 100e6, min: 1, group: 'data', help: 'folder/CSV sets: an image whose header declares more pixels (width x height) is a bad image (see --on-bad-image), refused before decoding' }),
  // ---- teachers
  S({ key: 'teachers', flag: 'teachers', kind: 'int', def: 3, min: 1, max: 64, group: 'teachers', paper: true, help: 'number of teachers K' }),
  S({ key: 'teacherArchs', flag: 'teacher-archs', kind: 'list', def: ['resnet50', 'densenet121', 'mobilenet_v2'], group: 'teachers', paper: true, help: 'teacher architectures, cycled over the K teachers' }),
  S({ key: 'teacherWidth', flag: 'teacher-width', kind: 'number', def: 0.0625, min: 0.01, max: 4, group: 'teachers', help: 'teacher width multiplier (1 = torchvision size)' }),
  S({ key: 'teacherEpochs', flag: 'teacher-epochs', kind: 'int', def: 3, min: 1, group: 'teachers', help: 'epochs per teacher' }),
  S({ key: 'epochs', flag: 'epochs', kind: 'int', def: 0, min: 0, group: 'teachers', help: 'sets both --teacher-epochs and --student-epochs (0 = unset); an error if given with a different --teacher-epochs or --student-epochs' }),
  S({ key: 'teacherLr', flag: 'teacher-lr', kind: 'number', def: 0.05, min: 0, group: 'teachers', help: 'teacher peak learning rate' }),
  S({ key: 'subsetFraction', flag: 'subset-fraction', kind: 'number', def: 0.7, min: 0, max: 1, group: 'teachers', paper: true, help: 'each teacher trains on its own random subset of this fraction of the (noisy) train set, drawn independently per teacher, so subsets overlap; indices saved to subsets.json' }),
  // ---- student
  S({ key: 'student', flag: 'student', kind: 'string', def: 'resnet18', group: 'student', paper: true, help: 'student architecture' }),
  S({ key: 'studentWidth', flag: 'student-width', kind: 'number', def: 0.0625, min: 0.01, max: 4, group: 'student', help: 'student width multiplier' }),
  S({ key: 'studentEpochs', flag: 'student-epochs', kind: 'int', def: 3, min: 1, group: 'student', help: 'epochs per student (same budget for every method)' }),
  S({ key: 'studentLr', flag: 'student-lr', kind: 'number', def: 0.05, min: 0, group: 'student', help: 'student peak learning rate' }),
  S({ key: 'method', flag: 'method', kind: 'string', def: 'roskd', group: 'student', choices: METHODS, help: 'student training: ce = cross-entropy on noisy labels; kd = distil the single best teacher (by validation); avgkd = all teachers\' softened probabilities averaged every batch; roskd = one teacher drawn at random per batch' }),
  S({ key: 'methods', flag: 'methods', kind: 'list', def: [], group: 'student', choices: METHODS, help: 'several students in one run sharing the teachers, e.g. ce,kd,avgkd,roskd (overrides --method)' }),
  S({ key: 'temperature', flag: 'temperature', kind: 'number', def: 4, min: 0.05, max: 100, group: 'student', paper: true, help: 'distillation temperature T' }),
  S({ key: 'alpha', flag: 'alpha', kind: 'number', def: 0.7, min: 0, max: 1, group: 'student', paper: true, help: 'weight of the soft (KD) term: L = (1-alpha) CE(noisy label) + alpha T^2 KL(teacher_T || student_T)' }),
  S({ key: 'teacherLogits', flag: 'teacher-logits', kind: 'string', def: 'auto', group: 'student', choices: ['cache', 'online', 'auto'], help: 'cache = every teacher\'s logits on the unaugmented train set computed once (teachers are frozen, so every epoch sees the same targets); online = teacher forward per batch on the augmented batch (eval mode, no grad); auto = cache unless augmentation is on' }),
  S({ key: 'teachersPerBatch', flag: 'teachers-per-batch', kind: 'int', def: 1, min: 1, group: 'student', paper: true, help: 'roskd: average the softened outputs of k teachers drawn without replacement per batch (1 = the paper\'s single random teacher)' }),
  S({ key: 'teacherWeighting', flag: 'teacher-weighting', kind: 'string', def: 'uniform', group: 'student', choices: ['uniform', 'val'], paper: true, help: 'roskd draw probabilities: uniform, or proportional to each teacher\'s validation score (--select-by)' }),
  S({ key: 'teacherPool', flag: 'teacher-pool', kind: 'string', def: 'all', group: 'student', choices: ['all', 'out-of-subset'], help: 'roskd: all = the paper\'s draw among all teachers, one per batch; out-of-subset = our extension: per SAMPLE, a teacher drawn among those that did not train on it (all teachers where every one did), since a teacher repeats the noisy labels it memorised' }),
  S({ key: 'dropCollapsedTeachers', flag: 'drop-collapsed-teachers', kind: 'bool', def: false, group: 'student', help: 'our extension: leave teachers flagged as collapsed (validation AUC or macro-F1 at chance / majority-class level, or one class predicted for >= 99% of val; README) out of kd, avgkd and roskd; an error if all are' }),
  S({ key: 'ema', flag: 'ema', kind: 'number', def: 0, min: 0, max: 0.99999, group: 'student', help: 'EMA decay of the student\'s weights used for evaluation and the saved model (0 = off)' }),
  S({ key: 'smoothing', flag: 'smoothing', kind: 'number', def: 0, min: 0, max: 0.999, group: 'student', help: 'temporal smoothing of each sample\'s soft target across epochs: q_e = beta q_(e-1) + (1-beta) p_teacher (0 = off; needs --teacher-logits cache)' }),
  // ---- optimisation
  S({ key: 'smallInput', flag: 'small-input', kind: 'string', def: 'auto', group: 'optimisation', choices: ['auto', 'on', 'off'], help: 'small-input stem (3x3 stride-1 first conv, no max-pool); auto = on for size <= 64' }),
  S({ key: 'batchSize', flag: 'batch-size', kind: 'int', def: 64, min: 1, group: 'optimisation', help: 'training mini-batch size' }),
  S({ key: 'evalBatchSize', flag: 'eval-batch-size', kind: 'int', def: 256, min: 1, group: 'optimisation', help: 'evaluation batch size' }),
  S({ key: 'optimizer', flag: 'optimizer', kind: 'string', def: 'sgd', group: 'optimisation', choices: ['sgd', 'adamw'], help: 'optimizer (sgd = SGD with Nesterov momentum)' }),
  S({ key: 'momentum', flag: 'momentum', kind: 'number', def: 0.9, min: 0, max: 1, group: 'optimisation', help: 'SGD momentum' }),
  S({ key: 'weightDecay', flag: 'weight-decay', kind: 'number', def: 5e-4, min: 0, group: 'optimisation', help: 'weight decay' }),
  S({ key: 'normBiasDecay', flag: 'norm-bias-decay', kind: 'number', def: -1, min: -1, group: 'optimisation', help: 'weight decay of 1-D parameters (batch-norm scales and shifts, biases); -1 = the same as --weight-decay, as torchvision\'s reference recipes do by default; 0 exempts them' }),
  S({ key: 'warmupEpochs', flag: 'warmup-epochs', kind: 'number', def: 0, min: 0, group: 'optimisation', help: 'linear warm-up length in epochs' }),
  S({ key: 'schedule', flag: 'schedule', kind: 'string', def: 'cosine', group: 'optimisation', choices: ['cosine', 'constant'], help: 'learning-rate schedule after warm-up' }),
  S({ key: 'selectBy', flag: 'select-by', kind: 'string', def: 'auc', group: 'optimisation', choices: ['auc', 'acc', 'f1', 'loss'], help: 'validation metric that picks the best epoch (its weights are kept) and ranks teachers for kd / --teacher-weighting val' }),
  // ---- run control
  S({ key: 'stage', flag: 'stage', kind: 'string', def: 'all', group: 'run', choices: ['teachers', 'student', 'eval', 'all'], help: 'what to run; completed stages (and teachers) are skipped when found in --out' }),
  S({ key: 'teacherIndex', flag: 'teacher-index', kind: 'int', def: -1, min: -1, group: 'run', help: 'with --stage teachers: train only teacher i (0-based; -1 = all) so K jobs can share one run directory' }),
  S({ key: 'resume', flag: 'resume', kind: 'bool', def: false, group: 'run', help: 'continue an interrupted run in --out from its last checkpoint' }),
  S({ key: 'out', flag: 'out', kind: 'string', def: '', group: 'run', help: 'run directory' }),
  S({ key: 'seed', flag: 'seed', kind: 'int', def: 0, group: 'run', help: 'seed of everything random (splits, noise, subsets, init, shuffling, teacher draws)' }),
  S({ key: 'attacks', flag: 'attacks', kind: 'list', def: [], group: 'run', help: 'evaluations to add in --stage eval (fgsm and pgd, kd/evaluators.ts; e.g. fgsm:2/255,pgd:2/255)' }),
  S({ key: 'progress', flag: 'progress', kind: 'string', def: 'auto', group: 'run', choices: ['auto', 'tty', 'plain', 'none'], help: 'progress output: live line on a TTY, plain lines otherwise' }),
  S({ key: 'tensorboard', flag: 'tensorboard', kind: 'bool', def: false, group: 'run', help: 'also write TensorBoard event files to <out>/tensorboard/<model>/ (tensorboard --logdir <out>/tensorboard)' }),
  S({ key: 'help', flag: 'help', kind: 'bool', def: false, group: 'run', help: 'print this help' }),
];

/** Presets: defaults sized for a purpose. Explicit options always win. */
export const PRESETS: Record<string, { about: string; values: Partial<Options> }> = {
  demo: {
    about: 'synthetic phantoms, 28 px, 30% symmetric noise, 3 resnet18 teachers (width 1/8) and resnet18 students (width 1/16) for ce/kd/avgkd/roskd; about 2-3 minutes on a 2-core CPU adapter (the paper\'s resnet50/densenet121/mobilenet_v2 teachers at this width do not learn within that budget on a CPU: pass --teacher-archs to use them)',
    values: { data: 'synthetic', size: 28, syntheticN: 1200, noiseRate: 0.3, teacherArchs: ['resnet18'], teacherWidth: 0.125, studentWidth: 0.0625, teacherEpochs: 5, studentEpochs: 5, batchSize: 32, methods: ['ce', 'kd', 'avgkd', 'roskd'] },
  },
  medmnist: {
    about: 'PneumoniaMNIST at 28 px, 40% symmetric noise, 3 resnet18 teachers (width 1/8), resnet18 students (width 1/16) for ce/kd/avgkd/roskd, 3 epochs each',
    values: { data: 'pneumoniamnist', size: 28, noiseRate: 0.4, teacherArchs: ['resnet18'], teacherWidth: 0.125, studentWidth: 0.0625, teacherEpochs: 3, studentEpochs: 3, batchSize: 64, methods: ['ce', 'kd', 'avgkd', 'roskd'] },
  },
  'paper-small': {
    about: 'our reading of the paper at CPU scale, widths and optimiser measured (docs/results/architecture-sweep.md): the paper\'s teachers resnet50, densenet121, mobilenet_v2 (width 1/8) and a resnet18 student (width 1/8), PneumoniaMNIST 28 px, symmetric noise 0.4 (uniform class, the true one included), 10 epochs each with 2 warm-up epochs, AdamW (teachers lr 0.005, student lr 0.002), batch 32, ce/kd/avgkd/roskd',
    values: {
      data: 'pneumoniamnist', size: 28, noiseType: 'symmetric', noiseRate: 0.4, teachers: 3, teacherArchs: ['resnet50', 'densenet121', 'mobilenet_v2'], teacherWidth: 0.125, student: 'resnet18', studentWidth: 0.125,
      teacherEpochs: 10, studentEpochs: 10, optimizer: 'adamw', teacherLr: 0.005, studentLr: 0.002, warmupEpochs: 2, batchSize: 32, methods: ['ce', 'kd', 'avgkd', 'roskd'],
    },
  },
  paper: {
    about: 'paper scale (needs a real GPU): full-width torchvision models, 64 px, crop augmentation, 40% noise, 30 epochs',
    values: { size: 64, teacherWidth: 1, studentWidth: 1, teacherEpochs: 30, studentEpochs: 30, teacherLr: 0.1, studentLr: 0.1, warmupEpochs: 1, batchSize: 128, augment: ['crop'], noiseRate: 0.4, methods: ['ce', 'kd', 'avgkd', 'roskd'] },
  },
};


function defaults(): Options {
  const o: Record<string, unknown> = {};
  for (const s of SPECS) o[s.key] = Array.isArray(s.def) ? [...s.def] : s.def;
  return o as unknown as Options;
}

export interface Parsed {
  opts: Options;
  /** keys given explicitly on the command line (or by the caller) */
  explicit: Set<keyof Options>;
  /** the image size in use and where it came from, e.g. "64 px (the ham10000: default; --size changes it)" */
  sizeNote?: string;
}

/**
 * Image side a loader uses when --size is not given: the dermoscopy sets are large photographs
 * whose lesions lose their structure at 28 px, so they default to 64 px.
 */
export const LOADER_DEFAULT_SIZE: Record<string, number> = { ham10000: 64, isic2019: 64 };

/** The loader named by --data: 'ham10000' for ham10000:x.csv, '' for synthetic / MedMNIST / .npz. */
export function dataKind(data: string): string {
  const colon = data.indexOf(':');
  return colon > 1 ? data.slice(0, colon).toLowerCase() : '';
}

/** Loaders whose images --images points at. */
const CSV_KINDS = ['chestxray14', 'isic2019', 'ham10000'];

/**
 * Parses argv (`--flag value`, `--flag=value`, bare `--flag` for booleans, `--no-flag`).
 * The preset is applied first, then the explicit options.
 */
export function parseArgs(argv: readonly string[]): Parsed {
  const p = parseFlags(argv, SPECS);
  const given = Object.fromEntries(p.values) as Partial<Options>;
  if (p.help) given.help = true;
  return resolveOptions(given);
}

/** Builds full options from a partial set (programmatic use, tests): defaults < preset < given. */
export function resolveOptions(given: Partial<Options>): Parsed {
  const opts = defaults();
  const preset = given.preset ?? opts.preset;
  const p = PRESETS[preset];
  if (!p) throw new UsageError(`--preset: unknown preset ${JSON.stringify(preset)} (choose from ${Object.keys(PRESETS).join(', ')})`);
  Object.assign(opts, p.values, given);
  opts.preset = preset;
  const explicit = new Set(Object.keys(given) as (keyof Options)[]);
  const sizeNote = resolveSize(opts, explicit, preset);
  resolveEpochs(opts, explicit);
  if (opts.images && !CSV_KINDS.includes(dataKind(opts.data)))
    throw new UsageError(`--images names the image folder of a CSV set (${CSV_KINDS.map((k) => k + ':').join(', ')}); --data ${opts.data} has none`);
  // --method alone means one student, even if the preset lists several.
  if (explicit.has('method') && !explicit.has('methods')) opts.methods = [opts.method];
  if (opts.methods.length === 0) opts.methods = [opts.method];
  validate(opts);
  return { opts, explicit, sizeNote };
}

/** Applies the loader's default size when --size is not given; says which size and why. */
function resolveSize(opts: Options, explicit: Set<keyof Options>, preset: string): string {
  if (explicit.has('size')) return `${opts.size} px (--size)`;
  const kind = dataKind(opts.data);
  const loader = LOADER_DEFAULT_SIZE[kind];
  if (loader !== undefined) {
    opts.size = loader;
    return `${loader} px (the ${kind}: default; --size changes it)`;
  }
  const fromPreset = (PRESETS[preset].values as Partial<Options>).size !== undefined;
  return `${opts.size} px (${fromPreset ? `the ${preset} preset's` : 'the'} default; --size changes it)`;
}

/** --epochs N sets both stages' epochs; a different explicit --teacher-epochs / --student-epochs is an error. */
function resolveEpochs(opts: Options, explicit: Set<keyof Options>): void {
  if (!explicit.has('epochs') || opts.epochs === 0) return;
  for (const [key, flag] of [['teacherEpochs', 'teacher-epochs'], ['studentEpochs', 'student-epochs']] as const) {
    if (explicit.has(key) && opts[key] !== opts.epochs) throw new UsageError(`--epochs ${opts.epochs} sets both stages' epochs, but --${flag} ${opts[key]} disagrees: give one or the other`);
    opts[key] = opts.epochs;
  }
}

function validate(o: Options): void {
  for (const s of SPECS) {
    const v = o[s.key];
    if ((s.kind === 'int' || s.kind === 'number') && typeof v === 'number') convertValue(s, String(v));
    if (s.kind === 'string' && s.choices && !s.choices.includes(v as string)) convertValue(s, String(v));
  }
  if (o.normBiasDecay < 0 && o.normBiasDecay !== -1) throw new UsageError(`--norm-bias-decay: ${o.normBiasDecay} is neither -1 (same as --weight-decay) nor >= 0`);
  if (o.teacherArchs.length === 0) throw new UsageError('--teacher-archs: give at least one architecture');
  if (!(o.subsetFraction > 0)) throw new UsageError(`--subset-fraction: ${o.subsetFraction} leaves every teacher an empty subset (use a value in (0, 1])`);
  if (o.teacherIndex >= o.teachers) throw new UsageError(`--teacher-index ${o.teacherIndex} is out of range: there are ${o.teachers} teachers (0..${o.teachers - 1})`);
  if (o.teacherIndex >= 0 && o.stage !== 'teachers') throw new UsageError(`--teacher-index trains one teacher: use it with --stage teachers (got --stage ${o.stage})`);
  if (o.teachersPerBatch > o.teachers) throw new UsageError(`--teachers-per-batch ${o.teachersPerBatch} exceeds --teachers ${o.teachers}`);
  if (new Set(o.methods).size !== o.methods.length) throw new UsageError(`--methods lists a method twice: ${o.methods.join(',')}`);
  if (o.smoothing > 0 && o.teacherLogits === 'online') throw new UsageError('--smoothing needs per-sample soft targets across epochs: use --teacher-logits cache (or auto without augmentation)');
}

/** Whether teacher logits are cached per epoch (resolves 'auto'). */
export function cacheTeacherLogits(o: Options): boolean {
  if (o.teacherLogits === 'auto') return o.augment.length === 0 || o.smoothing > 0;
  return o.teacherLogits === 'cache';
}

/** Whether the small-input stem is used at this image size. */
export function useSmallInput(o: Options): boolean {
  return o.smallInput === 'on' || (o.smallInput === 'auto' && o.size <= 64);
}

function fmtValue(s: Spec, d: unknown): string {
  if (s.kind === 'bool') return d ? 'on' : 'off';
  if (Array.isArray(d)) return d.length ? d.join(',') : 'none';
  if (d === '' && s.key === 'out') return 'runs/<preset>-<timestamp>';
  if (d === '' && s.key === 'images') return "the CSV's folder";
  return String(d);
}

/** "(default: X)", plus the demo preset's value where it differs (no options = the demo). */
function fmtDefault(s: Spec): string {
  const base = fmtValue(s, s.def);
  const demo = (PRESETS.demo.values as Record<string, unknown>)[s.key];
  return demo !== undefined && fmtValue(s, demo) !== base ? `${base}; demo preset: ${fmtValue(s, demo)}` : base;
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out;
}

/** The --help text: every option, its default and choices, and the presets. */
export function helpText(): string {
  const lines: string[] = [];
  lines.push('RoS-KD: robust stochastic knowledge distillation for noisily labelled medical images');
  lines.push('');
  lines.push('usage: npx tsx kd/train.ts [options]          (no options: the demo on synthetic chest phantoms)');
  lines.push('       npx tsx kd/predict.ts --model RUN/student-roskd.safetensors IMAGES...');
  lines.push('');
  lines.push('K teachers are trained on overlapping random subsets of the noisy training set; a small student');
  lines.push('is distilled from them, each mini-batch drawing one teacher at random; baselines (ce, kd, avgkd)');
  lines.push('get the same budget. Options marked [paper] are our reading of Jaiswal et al., "RoS-KD: A Robust');
  lines.push('Stochastic Knowledge Distillation Approach for Noisy Medical Imaging" (ICDM 2022).');
  let group = '';
  for (const s of SPECS) {
    if (s.group !== group) {
      group = s.group;
      lines.push('', `${group}:`);
    }
    const arg = s.kind === 'bool' ? '' : s.choices && s.kind !== 'list' ? ` ${s.choices.join('|')}` : s.kind === 'list' ? ' A,B,..' : s.kind === 'string' ? ' STR' : ' N';
    const head = `  --${s.flag}${arg}`;
    const text = wrap(`${s.paper ? '[paper] ' : ''}${s.help} (default: ${fmtDefault(s)})`, 100 - 34);
    const first = head.length < 34 ? head.padEnd(34) + text[0] : head + '\n' + ' '.repeat(34) + text[0];
    lines.push(first, ...text.slice(1).map((t) => ' '.repeat(34) + t));
  }
  lines.push('', 'presets (--preset NAME; explicit options override):');
  for (const [name, p] of Object.entries(PRESETS)) {
    const about = wrap(p.about, 100 - 12);
    lines.push(`  ${(name + ' ').padEnd(10)}${about[0]}`, ...about.slice(1).map((t) => ' '.repeat(12) + t));
    for (const t of wrap(Object.entries(p.values).map(([k, v]) => `--${SPECS.find((s) => s.key === k)?.flag} ${Array.isArray(v) ? v.join(',') : v}`).join(' '), 100 - 14)) lines.push(' '.repeat(14) + t);
  }
  lines.push(
    '',
    'run directory: config.json, subsets.json, noise.json, teacher-<i>.safetensors, student-<method>.safetensors,',
    '  metrics.jsonl and metrics.csv (one line per model per epoch), report.json, report.md, *.png and *.svg plots,',
    '  checkpoints/ (resume state), tensorboard/ (with --tensorboard).',
    '',
    'examples:',
    '  npx tsx kd/train.ts                                              # demo, ~2-3 min on a 2-core CPU',
    '  npx tsx kd/train.ts --data pneumoniamnist --noise-rate 0.4 --out runs/pneu40',
    '  npx tsx kd/train.ts --out runs/x --stage teachers --teacher-index 2   # one teacher per job',
    '  npx tsx kd/train.ts --out runs/x --stage student --resume',
    '  npx tsx kd/train.ts --submit slurm --out /shared/x --slurm "--gres=gpu:1"   # as Slurm jobs: kd/submit.ts --help',
  );
  return lines.join('\n');
}

/** The options as stored in config.json (plain JSON). */
export function optionsJson(o: Options): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of SPECS) if (s.key !== 'help') out[s.flag] = o[s.key];
  return out;
}

/** Options that must match between a run directory's config.json and a --resume/--stage call. */
export const RUN_IDENTITY: (keyof Options)[] = [
  'data', 'size', 'channels', 'syntheticN', 'syntheticDifficulty', 'trainLimit', 'noiseType', 'noiseRate', 'valLabels', 'seed', 'teachers', 'teacherArchs', 'teacherWidth', 'subsetFraction', 'smallInput',
];

/**
 * Version of the noise names stored in config.json / study-config.json as `noiseDefinitions`.
 * Files without it were written when `--noise-type symmetric` meant what is now `flip-to-other`.
 */
export const NOISE_DEFINITIONS = 2;

/**
 * Stored options (flag -> value) as today's options mean them: an old file's `symmetric` becomes
 * `flip-to-other` (the same labels, from the same random stream), and options added since (absent
 * from the file) take their defaults, which reproduce the old behaviour.
 */
export function upgradeStoredOptions(stored: Record<string, unknown>, noiseDefinitions: unknown): Record<string, unknown> {
  const out = { ...stored };
  if (noiseDefinitions === undefined && out['noise-type'] === 'symmetric') out['noise-type'] = 'flip-to-other';
  for (const s of SPECS) if (!(s.flag in out) && s.key !== 'help') out[s.flag] = Array.isArray(s.def) ? [...s.def] : s.def;
  return out;
}
