// The study's outputs: mean ± std over seeds of every metric, where RoS-KD's mean was not above a
// baseline's, study.md, study.json and the PNG plots (clean metric vs noise rate, attacked metric
// vs epsilon).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { resolveOptions, type Method } from './config.ts';
import { attackLabel, formatEps } from './adversarial.ts';
import type { Series } from './plot.ts';
import { linePlotPng } from './plot-file.ts';
import { readJsonFile, writeFileAtomic } from './data/node-files.ts';
import { identity, type StudyConfig } from './study-config.ts';
import { attackSpecs, cellsOf, type CellResult, type MethodResult } from './study-grid.ts';
import type { MetricRow } from './robustness.ts';
import { CLEAN_METRICS, pairedComparisons, pairedMarkdown, type CleanMetric } from './study-paired.ts';

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
  /** ece and brier: from the pipeline's evaluation (absent in cells of older studies: n = 0) */
  clean: { accuracy: Stat; macroF1: Stat; auc: Stat; ece: Stat; brier: Stat };
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
    const cal = (k: 'ece' | 'brier') => stat(g.items.map((i) => i.r.clean[k] ?? NaN));
    rows.push({ variant: g.variant, method: g.method, noiseRate: g.noiseRate, seeds: g.items.map((i) => i.seed), clean: { ...pick((r) => r.clean), ece: cal('ece'), brier: cal('brier') }, attacks });
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

type MetricKey = CleanMetric;
/** clean-test metrics (ECE and Brier: lower is better); the attack tables use the first three */
const METRICS = CLEAN_METRICS;
const ATTACK_METRICS = CLEAN_METRICS.filter((m) => m.key === 'accuracy' || m.key === 'macroF1' || m.key === 'auc') as { key: 'accuracy' | 'macroF1' | 'auc'; title: string; as: 'pct' | 'num' }[];

function mdTable(head: string[], body: string[][]): string {
  // numeric columns (numbers, ± spreads, bold bests, '-') right-aligned, text left
  const numeric = (i: number) => i > 0 && body.length > 0 && body.every((b) => /^(\*\*)?(-|-?[\d.]+( ± [\d.]+)?)(\*\*)?$/.test(b[i] ?? ''));
  const align = head.map((_, i) => (numeric(i) ? '--:' : ':--'));
  return [`| ${head.join(' | ')} |`, `| ${align.join(' | ')} |`, ...body.map((b) => `| ${b.join(' | ')} |`)].join('\n');
}

/** Bolds the best (highest mean; lowest when `lower`) cell of each column among the method rows. */
function boldBest(body: string[][], means: number[][], lower = false): string[][] {
  const out = body.map((r) => [...r]);
  for (let c = 0; c < (means[0]?.length ?? 0); c++) {
    let best = lower ? Infinity : -Infinity;
    for (const r of means) if (Number.isFinite(r[c])) best = lower ? Math.min(best, r[c]) : Math.max(best, r[c]);
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
      const conds: [string, Partial<Record<MetricKey, Stat>>, Partial<Record<MetricKey, Stat>> | undefined][] = [['clean', r.clean, b.clean]];
      for (const [l, a] of Object.entries(r.attacks)) if (l !== CLEAN_SUBSET) conds.push([l, a, b.attacks[l]]);
      for (const [cond, rsp, bsp] of conds) {
        if (!bsp) continue;
        for (const { key, lower } of METRICS) {
          const rs = rsp as Record<MetricKey, Stat>;
          const bs = bsp as Record<MetricKey, Stat>;
          if (!rs[key] || !bs[key] || !Number.isFinite(rs[key].mean) || !Number.isFinite(bs[key].mean)) continue;
          total++;
          if (lower ? rs[key].mean < bs[key].mean : rs[key].mean > bs[key].mean) wins++;
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
      `Every number is mean ± sample standard deviation over the seeds (n = ${seeds.length} where all are done) of a metric on the **clean test labels**; models were trained on the noisy labels only and each model's best epoch was picked on the ${cfg.valLabels.length > 1 ? 'clean or noisy (variant val=...)' : cfg.valLabels[0] === 'noisy' ? '**noisy** (--val-labels noisy)' : 'clean'} validation set (by ${t.selectBy}); ${t.noiseType} noise (README: noise definitions).`,
    '',
  );
  L.push(
    `Setup: ${t.data}${t.data === 'synthetic' ? ` (${t.syntheticN} training images)` : ''}${t.trainLimit ? `, first ${t.trainLimit} training images` : ''}, ${t.size} px; ` +
      `teachers ${t.teacherArchs.join(',')} width ${t.teacherWidth}, ${t.teacherEpochs} epochs, ${t.optimizer} lr ${t.teacherLr}, K = ${cfg.teachers.join('/')} on subsets of ${cfg.subsetFraction.join('/')} of the noisy train set; ` +
      `student ${t.student} width ${t.studentWidth}, ${t.studentEpochs} epochs, T = ${t.temperature}, alpha = ${t.alpha}, ${t.optimizer} lr ${t.studentLr}; batch ${t.batchSize}, ${t.warmupEpochs} warm-up epoch(s), ${t.schedule} schedule. ` +
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
      if (means.every((r) => r.every((x) => !Number.isFinite(x)))) continue; // e.g. no ECE in cells of older studies
      L.push(mdTable(['method', ...noiseRates.map((n) => `noise ${n}`)], boldBest(body, means, m.lower)), '');
    }
    if (conditions.length) {
      L.push(`${variants.length > 1 ? '###' : '##'} Under attack`, '');
      for (const nr of noiseRates)
        for (const m of ATTACK_METRICS) {
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
    L.push(...pairedMarkdown(pairedComparisons(cells, cfg.methods)));
    L.push('## Where RoS-KD did not beat a baseline', '');
    L.push(`RoS-KD's mean was better than the baseline's (higher; lower for ECE and Brier) in ${s.wins} of ${s.total} comparisons (every${variants.length > 1 ? ' variant,' : ''} noise rate, condition, metric and baseline). It was **not** better in ${s.losses.length}:`, '');
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
    L.push('"within 1 sd": the gap is smaller than the combined standard deviation over seeds (sqrt(sd1^2 + sd2^2)), i.e. not evidence either way at this number of seeds. Accuracy and F1 gaps are in percentage points, AUC, ECE and Brier gaps in their own units (for ECE and Brier a positive gap means RoS-KD was worse).', '');
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
          const ok = rows.filter((r) => Number.isFinite(r.clean[m.key].mean)); // ECE/Brier are absent in cells of older studies
          if (ok.length) series.push({ name: seriesName(method, v), xs: ok.map((r) => r.noiseRate), ys: ok.map((r) => (m.as === 'pct' ? 100 : 1) * r.clean[m.key].mean) });
        }
      if (!series.length) continue;
      const f = `clean-${m.key}-vs-noise.png`;
      linePlotPng(join(dir, f), { title: `clean test ${m.title} vs label noise`, xLabel: 'noise rate', yLabel: m.title, series });
      plots.push(f);
    }
    const kinds = [...new Set(summary.flatMap((r) => Object.values(r.attacks).filter((a) => a.kind !== 'clean').map((a) => a.kind)))];
    for (const kind of kinds)
      for (const nr of noiseRates)
        for (const m of ATTACK_METRICS) {
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
  const paired = pairedComparisons(cells, cfg.methods);
  writeFileAtomic(join(dir, 'study.json'), JSON.stringify({ config: { ...cfg, train: cfg.train }, identity: identity(cfg), cells, summary, paired, plots, updated: new Date().toISOString() }, null, 2) + '\n');
  writeFileAtomic(join(dir, 'study.md'), studyMarkdown(cfg, cells, summary, plots, plotError));
  return summary;
}

/** Loads the finished cells of a study directory (for re-rendering outputs). */
export function readCells(dir: string): CellResult[] {
  const root = join(dir, 'cells');
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((d) => existsSync(join(root, d, 'cell.json')))
    .map((d) => readJsonFile<CellResult>(join(root, d, 'cell.json')));
}
