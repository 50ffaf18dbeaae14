// The study's grid: ablation variants and cells (variant x noise rate x seed), which cells share
// teachers, the attacks every student gets, and what a finished cell records.
import type { AttackSpec } from './adversarial.ts';
import type { Method } from './config.ts';
import type { MetricRow } from './robustness.ts';
import type { Choice, StudyConfig, TeacherPool, ValLabels } from './study-config.ts';

export interface Variant {
  teachers: number;
  subsetFraction: number;
  ema: number;
  teachersPerBatch: number;
  choice: Choice;
  /** roskd's teacher pool (--teacher-pool; absent in cells of older studies: 'all') */
  teacherPool?: TeacherPool;
  /** validation labels that pick best epochs and rank teachers (--val-labels; absent in older cells: 'clean') */
  valLabels?: ValLabels;
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
  for (const valLabels of cfg.valLabels)
  for (const teachers of cfg.teachers)
    for (const subsetFraction of cfg.subsetFraction)
      for (const choice of cfg.choice)
        for (const teachersPerBatch of choice === 'average' ? [teachers] : cfg.teachersPerBatch)
          for (const ema of cfg.ema)
          for (const teacherPool of cfg.teacherPool) {
            if (teachersPerBatch > teachers) continue;
            const parts: string[] = [];
            if (cfg.valLabels.length > 1) parts.push(`val=${valLabels}`);
            if (cfg.teachers.length > 1) parts.push(`K=${teachers}`);
            if (cfg.subsetFraction.length > 1) parts.push(`f=${fmtNum(subsetFraction)}`);
            if (cfg.choice.length > 1) parts.push(choice);
            if (cfg.teachersPerBatch.length > 1 && choice === 'stochastic') parts.push(`k=${teachersPerBatch}`);
            if (cfg.ema.length > 1) parts.push(ema > 0 ? `ema=${fmtNum(ema)}` : 'no-ema');
            if (cfg.teacherPool.length > 1) parts.push(`pool=${teacherPool}`);
            // K = 1 (or k = K) makes 'average' and 'stochastic' the same student: keep one
            if (out.some((o) => o.teachers === teachers && o.subsetFraction === subsetFraction && o.ema === ema && o.teachersPerBatch === teachersPerBatch && o.teacherPool === teacherPool && o.valLabels === valLabels)) continue;
            out.push({ teachers, subsetFraction, ema, teachersPerBatch, choice, teacherPool, valLabels, label: parts.join(' ') });
          }
  return out;
}

/**
 * The cell whose ce / kd / avgkd students this cell can reuse: same teachers, EMA, noise and
 * seed, differing only in the roskd-only settings (teachers per batch / stochastic vs average /
 * teacher pool).
 */
export function baseCellOf(cfg: StudyConfig, cell: Cell, cells: Cell[] = cellsOf(cfg)): Cell | null {
  const b = cells.find((c) => c.teacherKey === cell.teacherKey && c.variant.ema === cell.variant.ema && c.variant.choice === 'stochastic' && c.variant.teachersPerBatch === cfg.teachersPerBatch[0] && (c.variant.teacherPool ?? 'all') === cfg.teacherPool[0]);
  return b && b.id !== cell.id ? b : null;
}

export function cellsOf(cfg: StudyConfig): Cell[] {
  const cells: Cell[] = [];
  for (const variant of variantsOf(cfg))
    for (const noiseRate of cfg.noiseRates)
      for (const seed of cfg.seeds) {
        // noisy validation labels pick other teacher epochs: other teachers (named only when noisy, so older studies keep their keys)
        const teacherKey = `nr${fmtNum(noiseRate)}_seed${seed}_K${variant.teachers}_f${fmtNum(variant.subsetFraction)}${variant.valLabels === 'noisy' ? '_valnoisy' : ''}`;
        // (the pool is named only when it is not the default, so older studies keep their cell ids)
        const id = `${teacherKey}_k${variant.teachersPerBatch}_ema${fmtNum(variant.ema)}${variant.teacherPool === 'out-of-subset' ? '_oos' : ''}`;
        cells.push({ id, variant, noiseRate, seed, teacherKey });
      }
  return cells;
}

export function attackSpecs(cfg: StudyConfig): AttackSpec[] {
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
  /** clean test metrics on the whole test split (kd/metrics.ts); ECE (15 bins) and Brier from the
   * pipeline's evaluation of the same model on the same split (absent in older cells) */
  clean: MetricRow & { ece?: number; brier?: number };
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
  teachers: { name: string; arch: string; test: { acc: number; f1: number; auc: number }; collapsed?: boolean; why?: string[] }[];
  secs: { teachers: number; students: number; attacks: number; total: number };
  finished: string;
}
