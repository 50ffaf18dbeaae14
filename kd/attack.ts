// Adversarial robustness of a saved model, from the command line:
//   npx tsx kd/attack.ts --model runs/x/student-roskd.safetensors --attack pgd --eps 2/255 [--steps 10] [--json]
// prints clean vs attacked accuracy, macro-F1 and AUC on a split's clean labels. The
// architecture, classes, input size and normalisation come from the file's metadata (written
// by kd/train.ts); the dataset options (data, synthetic size, seed) from the run directory's
// config.json next to the model unless given here. Attacks run in pixel space (see kd/attacks.ts).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as rk from '../engine/index.ts';
import { loadSafetensors, copyIntoModel } from '../engine/io/safetensors.ts';
import { readModelMeta } from './predict.ts';
import { buildModel, loadData, type ModelMeta } from './train.ts';
import { resolveOptions, UsageError, type Options } from './config.ts';
import { evaluateRobustness, formatRobustness, parseEpsList, parseEps, type AttackSpec, type Norm, type RobustnessReport } from './attacks.ts';
import { readJsonFile } from './data/node-files.ts';

export interface AttackCliOptions {
  model: string;
  data?: string;
  syntheticN?: number;
  dataSeed?: number;
  split: 'train' | 'val' | 'test';
  attacks: ('fgsm' | 'pgd')[];
  eps: number[];
  steps: number;
  stepSize?: number;
  norm: Norm;
  randomStart: boolean;
  keepBest: boolean;
  limit: number;
  batchSize: number;
  seed: number;
  json: boolean;
}

const HELP = `Adversarial robustness of a model saved by kd/train.ts

usage: npx tsx kd/attack.ts --model RUN/student-roskd.safetensors [options]

  --model FILE          the .safetensors model (architecture, classes, normalisation from its metadata)
  --data SPEC           dataset (as kd/train.ts --data); default: the data of the run directory holding the model
  --synthetic-n N       synthetic set size (default: from the run's config.json)
  --data-seed N         seed of the dataset split / synthetic set (default: from the run's config.json)
  --split test|val|train  split to attack (default test); its clean labels are used
  --attack fgsm|pgd     attack kind; a comma list runs several (default pgd)
  --eps LIST            epsilon(s) in pixel units, e.g. 2/255 or 1/255,2/255,4/255,8/255 (default 2/255)
  --steps N             PGD iterations (default 10)
  --step-size E         PGD step in pixel units (default 2.5 * eps / steps)
  --norm linf|l2        PGD ball (default linf; FGSM is always linf)
  --no-random-start     PGD starts at the clean image
  --last-iterate        PGD returns the last iterate (default: the strongest iterate per image)
  --limit N             attack a seeded random subset of N images (default 0 = all)
  --batch-size N        (default 128)
  --seed N              seed of the random start and the subset (default 0)
  --json                print the result as JSON

Attacks run in pixel space: images are un-normalised, perturbed, projected on the eps-ball,
clamped to [0, 1] and re-normalised every step; gradients come from the engine's autograd
w.r.t. the input with the model in eval mode (cross-entropy; BCE for multi-label models).`;

export function parseAttackCli(argv: readonly string[]): AttackCliOptions & { help: boolean } {
  const o: AttackCliOptions & { help: boolean } = {
    model: '', split: 'test', attacks: ['pgd'], eps: [2 / 255], steps: 10, norm: 'linf', randomStart: true, keepBest: true, limit: 0, batchSize: 128, seed: 0, json: false, help: false,
  };
  const int = (flag: string, v: string, min = 0): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag}: expected an integer >= ${min}, got ${JSON.stringify(v)}`);
    return n;
  };
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
        case '-h': case '--help': o.help = true; break;
        case '--model': o.model = val(); break;
        case '--data': o.data = val(); break;
        case '--synthetic-n': o.syntheticN = int(a, val(), 8); break;
        case '--data-seed': o.dataSeed = int(a, val()); break;
        case '--split': {
          const s = val();
          if (s !== 'train' && s !== 'val' && s !== 'test') throw new UsageError(`--split: train, val or test, got ${JSON.stringify(s)}`);
          o.split = s;
          break;
        }
        case '--attack': {
          const kinds = val().split(',').map((s) => s.trim()).filter(Boolean);
          for (const k of kinds) if (k !== 'fgsm' && k !== 'pgd') throw new UsageError(`--attack: fgsm or pgd, got ${JSON.stringify(k)}`);
          if (!kinds.length) throw new UsageError('--attack: give fgsm and/or pgd');
          o.attacks = kinds as ('fgsm' | 'pgd')[];
          break;
        }
        case '--eps': o.eps = parseEpsList(val()); break;
        case '--steps': o.steps = int(a, val(), 1); break;
        case '--step-size': o.stepSize = parseEps(val()); break;
        case '--norm': {
          const s = val();
          if (s !== 'linf' && s !== 'l2') throw new UsageError(`--norm: linf or l2, got ${JSON.stringify(s)}`);
          o.norm = s;
          break;
        }
        case '--no-random-start': o.randomStart = false; break;
        case '--last-iterate': o.keepBest = false; break;
        case '--limit': o.limit = int(a, val()); break;
        case '--batch-size': o.batchSize = int(a, val(), 1); break;
        case '--seed': o.seed = int(a, val()); break;
        case '--json': o.json = true; break;
        default: throw new UsageError(`unknown option ${JSON.stringify(a)}; see --help`);
      }
    } catch (e) {
      if (e instanceof RangeError) throw new UsageError(`${a}: ${e.message}`);
      throw e;
    }
  }
  if (!o.help && !o.model) throw new UsageError('--model FILE is required; see --help');
  if (o.norm === 'l2' && o.attacks.includes('fgsm')) throw new UsageError('--norm l2: FGSM is an L-inf attack; use --attack pgd (--steps 1 for a single step)');
  return o;
}

/** The attack specs of the options: every kind at every epsilon. */
export function specsOf(o: AttackCliOptions): AttackSpec[] {
  return o.attacks.flatMap((kind) =>
    o.eps.map((eps): AttackSpec => (kind === 'fgsm' ? { kind, eps } : { kind, eps, steps: o.steps, stepSize: o.stepSize, norm: o.norm, randomStart: o.randomStart, keepBest: o.keepBest, seed: o.seed })),
  );
}

export interface AttackCliResult {
  model: string;
  meta: ModelMeta;
  data: string;
  split: string;
  report: RobustnessReport;
}

/** Loads the model and its data and runs the attacks (the whole CLI minus printing). */
export async function runAttackCli(o: AttackCliOptions, log: (s: string) => void = () => {}): Promise<AttackCliResult> {
  if (!existsSync(o.model)) throw new UsageError(`--model ${o.model}: no such file`);
  await rk.init();
  const file = await loadSafetensors(o.model);
  const meta = readModelMeta(file.metadata, o.model);
  // the run's data options, so a synthetic set / split is regenerated exactly
  const cfgPath = join(dirname(o.model), 'config.json');
  const runOpts = existsSync(cfgPath) ? (readJsonFile<{ options?: Record<string, unknown> }>(cfgPath).options ?? {}) : {};
  const given: Partial<Options> = { progress: 'none', size: meta.height };
  const data = o.data ?? (runOpts['data'] as string | undefined);
  if (!data) throw new UsageError(`--data is needed: ${o.model} has no run config.json beside it to say which data it was trained on`);
  given.data = data;
  if (o.syntheticN ?? runOpts['synthetic-n']) given.syntheticN = (o.syntheticN ?? runOpts['synthetic-n']) as number;
  if (o.dataSeed !== undefined || runOpts['seed'] !== undefined) given.seed = (o.dataSeed ?? runOpts['seed']) as number;
  if (runOpts['channels'] !== undefined) given.channels = runOpts['channels'] as number;
  if (meta.channels === 1 || meta.channels === 3) given.channels = given.channels || meta.channels;
  const { ds } = await loadData(resolveOptions(given).opts, log);
  if (ds.channels !== meta.channels || ds.height !== meta.height || ds.width !== meta.width)
    throw new Error(`${data}: images are ${ds.channels}x${ds.height}x${ds.width}, the model wants ${meta.channels}x${meta.height}x${meta.width}`);
  if (ds.classes.length !== meta.classes.length) throw new Error(`${data}: ${ds.classes.length} classes, the model has ${meta.classes.length} (${meta.classes.join(', ')})`);
  const model = buildModel(meta, 0);
  try {
    copyIntoModel(model, file, o.model);
    const split = ds[o.split];
    // the model's own normalisation (from training), not a recomputed one
    const space = { ...ds, mean: meta.mean, std: meta.std, task: meta.task, classes: meta.classes };
    const report = await evaluateRobustness(model, split, space, {
      attacks: specsOf(o), batchSize: o.batchSize, limit: o.limit, seed: o.seed,
      onProgress: (d, t, what) => log(`  ${d}/${t} batch x attack passes done (${what})`),
    });
    report.split = o.split;
    return { model: o.model, meta, data, split: o.split, report };
  } finally {
    model.dispose();
  }
}

async function main(): Promise<void> {
  let o: ReturnType<typeof parseAttackCli>;
  try {
    o = parseAttackCli(process.argv.slice(2));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    process.exit(2);
  }
  if (o.help) {
    console.log(HELP);
    return;
  }
  try {
    let last = 0;
    const r = await runAttackCli(o, (s) => {
      if (o.json) return;
      // progress lines at most every 5 s
      if (s.startsWith('  ') && performance.now() - last < 5000) return;
      last = performance.now();
      console.error(s.trim());
    });
    if (o.json) {
      console.log(JSON.stringify({ model: r.model, arch: r.meta.arch, role: r.meta.role, method: r.meta.method, data: r.data, split: r.split, ...r.report }, null, 2));
      return;
    }
    console.log(`model: ${r.model} (${r.meta.arch}${r.meta.method ? `, ${r.meta.role} ${r.meta.method}` : `, ${r.meta.role}`}); data: ${r.data}, ${r.split} split, ${r.report.n} images (clean labels)`);
    console.log('attacks in pixel space ([0, 1] scale), images clamped to [0, 1], model in eval mode\n');
    console.log(formatRobustness(r.report));
    console.log(`\n${r.report.secs.toFixed(1)} s`);
  } catch (e) {
    const err = e as Error;
    console.error(`error: ${err.message}`);
    if (process.env.ROSKD_DEBUG) console.error(err.stack);
    process.exit(err instanceof UsageError ? 2 : 1);
  }
}

if (process.argv[1]?.endsWith('kd/attack.ts')) await main();
