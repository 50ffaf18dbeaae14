// The study's paired comparisons: RoS-KD against each baseline (and, where the grid has both
// teacher pools, RoS-KD out-of-subset against RoS-KD with the paper's pool), per variant, noise
// rate and clean-test metric, paired by seed: the per-seed differences, their mean with a 95%
// percentile-bootstrap interval (10,000 resamples, fixed seed), and exact sign and Wilcoxon
// signed-rank p-values (kd/study-stats.ts).
import type { Method } from './config.ts';
import type { CellResult, MethodResult } from './study-grid.ts';
import { pairedComparison, type PairedComparison } from './study-stats.ts';

export type CleanMetric = 'accuracy' | 'macroF1' | 'auc' | 'ece' | 'brier';

export const CLEAN_METRICS: { key: CleanMetric; title: string; as: 'pct' | 'num'; lower?: boolean }[] = [
  { key: 'accuracy', title: 'accuracy %', as: 'pct' },
  { key: 'macroF1', title: 'macro-F1 %', as: 'pct' },
  { key: 'auc', title: 'macro AUC', as: 'num' },
  { key: 'ece', title: 'ECE (15 bins)', as: 'num', lower: true },
  { key: 'brier', title: 'Brier score', as: 'num', lower: true },
];

export interface PairedRow extends PairedComparison {
  variant: string;
  noiseRate: number;
  metric: CleanMetric;
  /** "roskd" (or "roskd [pool=out-of-subset]") minus this */
  a: string;
  b: string;
}

const valueOf = (r: MethodResult | undefined, k: CleanMetric): number => {
  const v = r?.clean[k];
  return typeof v === 'number' ? v : NaN;
};

function seedMap(cells: CellResult[], variant: string, noiseRate: number, method: Method, k: CleanMetric): Map<number, number> {
  const m = new Map<number, number>();
  for (const c of cells) if (c.variant.label === variant && c.noiseRate === noiseRate) {
    const v = valueOf(c.methods[method], k);
    if (Number.isFinite(v)) m.set(c.seed, v);
  }
  return m;
}

/** Every paired comparison the cells allow (at least one common seed). */
export function pairedComparisons(cells: CellResult[], methods: readonly Method[], opts: { resamples?: number } = {}): PairedRow[] {
  const out: PairedRow[] = [];
  if (!methods.includes('roskd')) return out;
  const variants = [...new Set(cells.map((c) => c.variant.label))];
  const noiseRates = [...new Set(cells.map((c) => c.noiseRate))].sort((a, b) => a - b);
  const add = (variant: string, noiseRate: number, metric: CleanMetric, a: string, b: string, ma: Map<number, number>, mb: Map<number, number>) => {
    const p = pairedComparison(ma, mb, { resamples: opts.resamples ?? 10000, seed: 0 });
    if (p.seeds.length) out.push({ variant, noiseRate, metric, a, b, ...p });
  };
  for (const variant of variants)
    for (const nr of noiseRates)
      for (const { key } of CLEAN_METRICS) {
        const ros = seedMap(cells, variant, nr, 'roskd', key);
        for (const b of methods) if (b !== 'roskd') add(variant, nr, key, 'roskd', b, ros, seedMap(cells, variant, nr, b, key));
        // the teacher-pool ablation: out-of-subset against the paper's pool, same everything else
        if (variant.includes('pool=out-of-subset')) {
          const other = variant.replace('pool=out-of-subset', 'pool=all');
          if (variants.includes(other)) add(variant, nr, key, 'roskd [pool=out-of-subset]', 'roskd [pool=all]', ros, seedMap(cells, other, nr, 'roskd', key));
        }
      }
  return out;
}

const fmtP = (p: number) => (p >= 0.001 ? p.toFixed(3) : p.toExponential(1));

/** The markdown section of study.md. */
export function pairedMarkdown(rows: PairedRow[]): string[] {
  const L: string[] = ['## RoS-KD against each baseline, paired by seed', ''];
  if (!rows.length) return [...L, '(no comparison yet: RoS-KD and a baseline need a common seed)', ''];
  L.push(
    'Difference = RoS-KD minus the baseline on the same seed (same data, noise, teachers and student initialisation), clean test labels. ' +
      'Accuracy and macro-F1 in percentage points; AUC, ECE and Brier in their own units. Higher is better for accuracy, F1 and AUC; **lower is better for ECE and Brier**, so there a negative difference favours RoS-KD. ' +
      '95% CI: percentile bootstrap of the mean difference over seeds (10,000 resamples, fixed seed); with few seeds it is narrow only when the differences agree. ' +
      'p: two-sided exact sign test and Wilcoxon signed-rank test (zero differences dropped); with n = 5 seeds the smallest possible p of either is 0.0625, so 5 seeds can never reach p < 0.05.',
    '',
  );
  const variants = [...new Set(rows.map((r) => r.variant))];
  for (const v of variants) {
    if (variants.length > 1) L.push(`**Variant: ${v || 'default'}**`, '');
    L.push('| noise | comparison | metric | n | per-seed differences | mean | 95% CI | sign p | Wilcoxon p |', '|--:|:--|:--|--:|:--|--:|:--|--:|--:|');
    for (const r of rows.filter((x) => x.variant === v)) {
      const m = CLEAN_METRICS.find((x) => x.key === r.metric)!;
      const f = (x: number) => (m.as === 'pct' ? (100 * x).toFixed(1) : x.toFixed(3));
      const s = (x: number) => (x > 0 ? '+' : '') + f(x);
      L.push(`| ${r.noiseRate} | ${r.a} - ${r.b} | ${m.title.replace(' %', '')}${m.lower ? ' (lower better)' : ''} | ${r.seeds.length} | ${r.diffs.map(s).join(', ')} | ${s(r.mean)} | [${f(r.ci.lo)}, ${f(r.ci.hi)}] | ${fmtP(r.sign.p)} | ${fmtP(r.wilcoxon.p)} |`);
    }
    L.push('');
  }
  return L;
}
