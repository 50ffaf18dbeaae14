// Adversarial robustness of a saved model (what kd/attack.ts prints): loads the model and the data
// it was trained on (from the run's config.json beside it unless given) and runs the attacks
// (robustness.ts). Node side: reads the model file and the run's config.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as rk from '../engine/index.ts';
import { loadSafetensors } from '../engine/node/safetensors-file.ts';
import { parseFlags, UsageError, type OptionSpec } from './cli.ts';
import { resolveOptions, type Options } from './config.ts';
import { loadData } from './data-source.ts';
import { buildModel, copyCheckedWeights, readModelMeta, type ModelMeta } from './model-file.ts';
import { parseEps, parseEpsList, type AttackSpec, type Norm } from './adversarial.ts';
import { evaluateRobustness, type RobustnessReport } from './robustness.ts';
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

const OPTIONS: OptionSpec<keyof AttackCliOptions>[] = [
  { key: 'model', flag: 'model', kind: 'string' },
  { key: 'data', flag: 'data', kind: 'string' },
  { key: 'syntheticN', flag: 'synthetic-n', kind: 'int', min: 8 },
  { key: 'dataSeed', flag: 'data-seed', kind: 'int', min: 0 },
  { key: 'split', flag: 'split', kind: 'string', choices: ['train', 'val', 'test'] },
  {
    key: 'attacks', flag: 'attack', kind: 'list',
    parse: (raw) => {
      const kinds = raw.split(',').map((s) => s.trim()).filter(Boolean);
      for (const k of kinds) if (k !== 'fgsm' && k !== 'pgd') throw new RangeError(`fgsm or pgd, got ${JSON.stringify(k)}`);
      if (!kinds.length) throw new RangeError('give fgsm and/or pgd');
      return kinds;
    },
  },
  { key: 'eps', flag: 'eps', kind: 'list', parse: parseEpsList },
  { key: 'steps', flag: 'steps', kind: 'int', min: 1 },
  { key: 'stepSize', flag: 'step-size', kind: 'number', parse: parseEps },
  { key: 'norm', flag: 'norm', kind: 'string', choices: ['linf', 'l2'] },
  { key: 'randomStart', flag: 'random-start', kind: 'bool' },
  { key: 'keepBest', flag: 'keep-best', kind: 'bool' },
  { key: 'limit', flag: 'limit', kind: 'int', min: 0 },
  { key: 'batchSize', flag: 'batch-size', kind: 'int', min: 1 },
  { key: 'seed', flag: 'seed', kind: 'int', min: 0 },
  { key: 'json', flag: 'json', kind: 'bool' },
];

/** kd/attack.ts's command line (--no-random-start, --last-iterate as in --help); UsageError on anything wrong. */
export function parseAttackCli(argv: readonly string[]): AttackCliOptions & { help: boolean } {
  // --last-iterate is the documented spelling of --no-keep-best
  const p = parseFlags(argv.map((a) => (a === '--last-iterate' ? '--no-keep-best' : a)), OPTIONS);
  const o: AttackCliOptions & { help: boolean } = {
    model: '', split: 'test', attacks: ['pgd'], eps: [2 / 255], steps: 10, norm: 'linf', randomStart: true, keepBest: true, limit: 0, batchSize: 128, seed: 0, json: false,
    ...(Object.fromEntries(p.values) as Partial<AttackCliOptions>),
    help: p.help,
  };
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
  // the image folder the run was trained from (--images), for the same CSV set
  if (runOpts['images'] && data === runOpts['data']) given.images = runOpts['images'] as string;
  if (meta.channels === 1 || meta.channels === 3) given.channels = given.channels || meta.channels;
  const { ds } = await loadData(resolveOptions(given).opts, log);
  if (ds.channels !== meta.channels || ds.height !== meta.height || ds.width !== meta.width)
    throw new Error(`${data}: images are ${ds.channels}x${ds.height}x${ds.width}, the model wants ${meta.channels}x${meta.height}x${meta.width}`);
  if (ds.classes.length !== meta.classes.length) throw new Error(`${data}: ${ds.classes.length} classes, the model has ${meta.classes.length} (${meta.classes.join(', ')})`);
  // same count is not enough: metrics would compare the model's class k with another class k
  if (ds.classes.some((c, k) => c !== meta.classes[k]))
    throw new Error(`${data}: classes [${ds.classes.join(', ')}] differ from the model's [${meta.classes.join(', ')}] (${o.model}); attack it on the data it was trained on`);
  const model = buildModel(meta, 0);
  try {
    copyCheckedWeights(model, file, o.model);
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
