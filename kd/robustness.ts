// Robustness of a model on a split: clean vs attacked accuracy, macro-F1, AUC and loss on the
// clean labels, and how many clean-correct images each attack flipped (attacks: adversarial.ts).
import * as rk from '../engine/index.ts';
import type { Dataset, Split } from './data/dataset.ts';
import { Rng, hashSeed, permutation } from '../engine/rng.ts';
import { evaluate, misclassified, probabilities, sampleLosses } from './metrics.ts';
import {
  attackLabel, attackName, attackPixels, forwardGrad, formatEps, parseEps, resolveAttack,
  type AttackSpec, type InputSpace, type Module, type Norm, type ResolvedAttack,
} from './adversarial.ts';


export interface MetricRow {
  accuracy: number;
  macroF1: number;
  auc: number;
  /** mean per-sample loss on the clean labels */
  loss: number;
}

export interface AttackRow extends MetricRow {
  name: string;
  label: string;
  attack: ResolvedAttack;
  /** fraction of the clean-correct samples the attack made wrong */
  flipped: number;
  secs: number;
}

export interface RobustnessReport {
  n: number;
  split?: string;
  /** the images attacked (indices into the split) when a limit picked a subset */
  indices?: number[];
  clean: MetricRow;
  attacks: AttackRow[];
  secs: number;
}

export interface RobustnessOptions {
  attacks: AttackSpec[];
  batchSize?: number;
  /** attack at most this many images (a seeded random subset; 0 = the whole split) */
  limit?: number;
  seed?: number;
  onProgress?: (done: number, total: number, what: string) => void;
}

type DatasetLike = Pick<Dataset, 'channels' | 'height' | 'width' | 'mean' | 'std' | 'task' | 'classes'>;

function metricRow(logits: Float32Array, labels: Int32Array | Uint8Array, ds: DatasetLike, loss: number): MetricRow {
  const C = ds.classes.length;
  const m = evaluate(probabilities(logits, C, ds.task === 'multilabel'), labels, C, ds.task, ds.classes);
  return { accuracy: m.accuracy, macroF1: m.macroF1, auc: m.auc, loss };
}

/**
 * Clean vs attacked accuracy, macro-F1 and AUC (kd/metrics.ts conventions) of a model on a
 * split, with the split's (clean) labels. The model is left exactly as it was.
 */
export async function evaluateRobustness(model: Module, split: Pick<Split, 'images' | 'labels' | 'n'>, ds: DatasetLike, opts: RobustnessOptions): Promise<RobustnessReport> {
  const t0 = performance.now();
  const specs = opts.attacks.map(resolveAttack);
  const { channels: Ch, height: H, width: W } = ds;
  const per = Ch * H * W;
  const C = ds.classes.length;
  const multilabel = ds.task === 'multilabel';
  let idx = Int32Array.from({ length: split.n }, (_, i) => i);
  const limited = (opts.limit ?? 0) > 0 && opts.limit! < split.n;
  if (limited) idx = permutation(split.n, Rng.keyed('attack-subset', opts.seed ?? 0)).slice(0, opts.limit!).sort();
  const n = idx.length;
  if (n === 0) throw new Error('evaluateRobustness: the split is empty');
  const bs = Math.max(1, opts.batchSize ?? 128);
  const space: InputSpace = { mean: ds.mean, std: ds.std };
  const cleanLogits = new Float32Array(n * C);
  const advLogits = specs.map(() => new Float32Array(n * C));
  const cleanLoss = new Float64Array(n);
  const advLoss = specs.map(() => new Float64Array(n));
  const secs = specs.map(() => 0);
  const labels: Int32Array | Uint8Array = multilabel ? new Uint8Array(n * C) : new Int32Array(n);
  const total = Math.ceil(n / bs) * (1 + specs.length);
  let done = 0;
  for (let s = 0; s < n; s += bs) {
    const m = Math.min(bs, n - s);
    const p0 = new Float32Array(m * per);
    const lab = multilabel ? new Float32Array(m * C) : new Int32Array(m);
    for (let k = 0; k < m; k++) {
      const i = idx[s + k];
      const src = split.images.subarray(i * per, (i + 1) * per);
      for (let j = 0; j < per; j++) p0[k * per + j] = src[j] / 255;
      if (multilabel) for (let c = 0; c < C; c++) (lab as Float32Array)[k * C + c] = (labels[(s + k) * C + c] = split.labels[i * C + c]);
      else (lab as Int32Array)[k] = labels[s + k] = split.labels[i];
    }
    const shape = [m, Ch, H, W];
    // clean pass: a zero-epsilon FGSM is exactly one forward at p0 (plus an unused backward); a plain forward is cheaper
    const clean = await rk.nn.withFrozenModel(model, 'attack', () => forwardGrad(model, p0, shape, space, multilabel ? { labels: null, multi: lab as Float32Array } : { labels: lab as Int32Array, multi: null }, false));
    if (clean.logits.length !== m * C) throw new Error(`evaluateRobustness: the model gives ${clean.logits.length / m} outputs, the dataset has ${C} classes`);
    cleanLogits.set(clean.logits, s * C);
    cleanLoss.set(sampleLosses(clean.logits, m, C, lab, multilabel), s);
    opts.onProgress?.(++done, total, 'clean');
    for (const [a, spec] of specs.entries()) {
      const ta = performance.now();
      const r = await attackPixels(model, p0, shape, lab, { ...spec, seed: hashSeed(spec.seed, s) }, space);
      secs[a] += (performance.now() - ta) / 1000;
      advLogits[a].set(r.logits, s * C);
      advLoss[a].set(r.loss, s);
      opts.onProgress?.(++done, total, attackLabel(spec));
    }
  }
  const mean = (v: Float64Array) => v.reduce((x, y) => x + y, 0) / Math.max(1, v.length);
  const clean = metricRow(cleanLogits, labels, ds, mean(cleanLoss));
  const cleanWrong = misclassified(cleanLogits, n, C, labels, multilabel);
  const attacks = specs.map((spec, a): AttackRow => {
    const w = misclassified(advLogits[a], n, C, labels, multilabel);
    let ok = 0;
    let flipped = 0;
    for (let i = 0; i < n; i++)
      if (!cleanWrong[i]) {
        ok++;
        flipped += w[i];
      }
    return { name: attackName(spec), label: attackLabel(spec), attack: spec, ...metricRow(advLogits[a], labels, ds, mean(advLoss[a])), flipped: ok ? flipped / ok : NaN, secs: secs[a] };
  });
  return { n, indices: limited ? Array.from(idx) : undefined, clean, attacks, secs: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------- formatting

const pct = (v: number): string => (Number.isFinite(v) ? (100 * v).toFixed(1) : '-');
const num = (v: number, d = 3): string => (Number.isFinite(v) ? v.toFixed(d) : '-');

/** Plain-text table: clean and each attack, accuracy / macro-F1 / AUC / loss / flipped. */
export function formatRobustness(r: RobustnessReport): string {
  const head = ['attack', 'eps', 'acc %', 'macro-F1 %', 'AUC', 'loss', 'flipped %', 'secs'];
  const rows = [
    ['clean', '-', pct(r.clean.accuracy), pct(r.clean.macroF1), num(r.clean.auc), num(r.clean.loss), '-', '-'],
    ...r.attacks.map((a) => [a.name + (a.attack.kind === 'pgd' ? ` (step ${formatEps(a.attack.stepSize)})` : ''), formatEps(a.attack.eps), pct(a.accuracy), pct(a.macroF1), num(a.auc), num(a.loss), pct(a.flipped), a.secs.toFixed(1)]),
  ];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((x) => x[i].length)));
  const line = (c: string[]) => c.map((s, i) => (i === 0 ? s.padEnd(w[i]) : s.padStart(w[i]))).join('  ');
  return [line(head), w.map((k) => '-'.repeat(k)).join('  '), ...rows.map(line)].join('\n');
}

/**
 * Parses an attack argument as used by `kd/train.ts --attacks` and kd/attack.ts:
 * "EPS[:key=value...]" with keys steps, step (step size), norm (linf|l2), start (0|1), n (image
 * limit), best (0|1), seed; e.g. "2/255", "8/255:steps=20:norm=l2".
 */
export function parseAttackArg(kind: 'fgsm' | 'pgd', arg: string): { spec: AttackSpec; limit: number; teachers: boolean } {
  const [epsStr, ...kv] = arg.split(':').filter((s) => s !== '');
  const spec: AttackSpec = { kind, eps: parseEps(epsStr ?? '2/255') };
  let limit = 0;
  let teachers = false;
  for (const item of kv) {
    const [k, v = ''] = item.split('=');
    if (k === 'steps') spec.steps = Number(v);
    else if (k === 'step') spec.stepSize = parseEps(v);
    else if (k === 'norm') spec.norm = v as Norm;
    else if (k === 'start') spec.randomStart = v !== '0';
    else if (k === 'best') spec.keepBest = v !== '0';
    else if (k === 'seed') spec.seed = Number(v);
    else if (k === 'n') limit = Number(v);
    else if (k === 'teachers') teachers = v !== '0';
    else if (k === 'l2' || k === 'linf') spec.norm = k;
    else throw new RangeError(`attack ${kind}:${arg}: unknown key ${JSON.stringify(k)} (steps, step, norm, start, best, seed, n, teachers)`);
  }
  resolveAttack(spec); // validate now, not after training
  if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`attack ${kind}:${arg}: n must be a non-negative integer`);
  return { spec, limit, teachers };
}
