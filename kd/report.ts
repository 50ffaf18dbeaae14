// The run's report: report.json (everything, machine-readable), report.md (the tables a paper
// needs: every teacher, every baseline and the student on clean test labels, per-class scores,
// wall time per stage, the realised label noise) and PNG plots of training loss and validation
// metrics per epoch (kd/plot.ts), each as NAME.png and NAME.svg. No node: imports.
import type { RunStore, MetricsLine } from './run-store.ts';
import type { Scores } from './metrics.ts';
import type { Method } from './config.ts';
import { renderFigure, type FigureOptions, type LinePlotOptions } from './plot.ts';

export interface ModelRow {
  name: string;
  role: 'teacher' | 'student';
  arch: string;
  method?: Method;
  params: number;
  width: number;
  trainImages: number;
  test: Scores;
  /** validation scores at the best epoch (null if the done record is missing) */
  val: Scores | null;
  bestEpoch: number;
  epochs: number;
  /** training wall time, seconds (all sessions) */
  secs: number;
  images: number;
}

/** An extra report section, e.g. adversarial accuracy (kd/evaluators.ts). */
export interface ExtraSection {
  title: string;
  /** column headers after the model name */
  columns: string[];
  rows: { model: string; values: (number | string)[] }[];
  notes?: string[];
  json?: unknown;
}

export interface ReportData {
  title: string;
  created: string;
  options: Record<string, unknown>;
  dataset: Record<string, unknown>;
  noise: Record<string, unknown>;
  classes: string[];
  task: string;
  rows: ModelRow[];
  /** models of the configuration with no weights file (not trained yet) */
  missing: string[];
  extra: ExtraSection[];
  teacherDraws: Record<string, number[]>;
  stages: Record<string, { secs: number; sessions: number }>;
  metrics: MetricsLine[];
  tableText: string;
  selectBy: string;
}

const pct = (v: number | undefined): string => (v !== undefined && Number.isFinite(v) ? (100 * v).toFixed(1) : '-');
const num = (v: number | undefined, d = 3): string => (v !== undefined && Number.isFinite(v) ? v.toFixed(d) : '-');
const secs = (s: number): string => (s >= 60 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(1)}s`);
const kparams = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}k`);

const METHOD_LABEL: Record<string, string> = {
  ce: 'CE on noisy labels',
  kd: 'KD from the best teacher',
  avgkd: 'KD from all teachers averaged',
  roskd: 'RoS-KD (random teacher per batch)',
};

function label(r: ModelRow): string {
  return r.role === 'teacher' ? `${r.name} (${r.arch})` : `${r.name} (${r.arch})`;
}

function valScore(r: ModelRow, by: string): string {
  if (!r.val) return '-';
  const v = by === 'loss' ? r.val.loss : by === 'acc' ? r.val.acc : by === 'f1' ? r.val.f1 : r.val.auc;
  return by === 'loss' || by === 'auc' ? num(v) : pct(v);
}

/** Plain-text table for the console. */
export function textTable(rows: ModelRow[], selectBy: string): string {
  const head = ['model', 'method', 'params', 'train imgs', 'best ep', `val ${selectBy}`, 'test acc %', 'test F1 %', 'test AUC', 'train time'];
  const body = rows.map((r) => [label(r), r.role === 'teacher' ? 'teacher' : r.method ?? '', kparams(r.params), String(r.trainImages), `${r.bestEpoch}/${r.epochs}`, valScore(r, selectBy), pct(r.test.acc), pct(r.test.f1), num(r.test.auc), secs(r.secs)]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...body.map(line)].join('\n');
}

function mdTable(head: string[], body: string[][], align?: string[]): string {
  // numeric columns (numbers, 44.4k, 1.4s, 2m03s, 2/3, '-') right-aligned, text left
  const numeric = (i: number) => body.length > 0 && body.every((b) => /^(-|[\d.\/]+(k|M|s)?|\d+m\d+s)$/.test(b[i] ?? ''));
  const a = align ?? head.map((_, i) => (numeric(i) ? '--:' : ':--'));
  return [`| ${head.join(' | ')} |`, `| ${a.join(' | ')} |`, ...body.map((b) => `| ${b.join(' | ')} |`)].join('\n');
}

function markdown(d: ReportData, plots: string[], plotError: string | null): string {
  const L: string[] = [];
  const o = d.options;
  L.push(`# ${d.title}`, '', `Created ${d.created}. Metrics on the **clean** test labels; models were trained on the noisy labels only; the best epoch of each model was chosen on the (clean) validation set by ${d.selectBy}.`, '');
  L.push('## Results', '');
  L.push(
    mdTable(
      ['model', 'role / method', 'params', 'train images', 'best epoch', `val ${d.selectBy}`, 'test acc %', 'test macro-F1 %', 'test macro AUC', 'train time'],
      d.rows.map((r) => [label(r), r.role === 'teacher' ? 'teacher' : `${r.method}: ${METHOD_LABEL[r.method ?? ''] ?? ''}`, kparams(r.params), String(r.trainImages), `${r.bestEpoch}/${r.epochs}`, valScore(r, d.selectBy), pct(r.test.acc), pct(r.test.f1), num(r.test.auc), secs(r.secs)]),
    ),
  );
  if (d.missing.length) L.push('', `Not trained yet (no weights in the run directory): ${d.missing.join(', ')}.`);
  const students = d.rows.filter((r) => r.role === 'student');
  const ros = students.find((r) => r.method === 'roskd');
  if (ros && students.length > 1) {
    const others = students.filter((r) => r !== ros);
    const cmp = (k: 'acc' | 'auc', f: (v: number) => string) => {
      const above = others.filter((r) => ros.test[k] > r.test[k]).map((r) => r.method);
      const notAbove = others.filter((r) => !(ros.test[k] > r.test[k])).map((r) => r.method);
      return `${f(ros.test[k])} (${others.map((r) => `${r.method} ${f(r.test[k])}`).join(', ')}: ${above.length ? `above ${above.join(', ')}` : ''}${above.length && notAbove.length ? '; ' : ''}${notAbove.length ? `not above ${notAbove.join(', ')}` : ''})`;
    };
    L.push('', `RoS-KD on the clean test labels: accuracy ${cmp('acc', (v) => pct(v) + '%')}; macro AUC ${cmp('auc', (v) => num(v))}. One run and one seed: differences of a point or two are within run-to-run noise.`);
  }
  if (d.teacherDraws.roskd) L.push('', `RoS-KD teacher draws over all student steps: ${d.teacherDraws.roskd.map((c, i) => `teacher-${i} ${c}`).join(', ')}.`);

  L.push('', '## Wall time per stage', '');
  const st = Object.entries(d.stages);
  L.push(mdTable(['stage', 'wall time', 'sessions'], st.map(([k, v]) => [k, secs(v.secs), String(v.sessions)])));
  L.push('', mdTable(['model', 'epochs', 'images seen', 'train time', 'images/s'], d.rows.map((r) => [r.name, String(r.epochs), String(r.images), secs(r.secs), r.secs > 0 ? (r.images / r.secs).toFixed(0) : '-'])));

  L.push('', '## Data and label noise', '');
  const ds = d.dataset as { name?: string; task?: string; shape?: number[]; n?: Record<string, number>; trainClassCounts?: number[]; testClassCounts?: number[]; skipped?: unknown[] };
  L.push(`- dataset: ${ds.name} (${d.task}), classes: ${d.classes.join(', ')}; input ${ds.shape?.join('x')}; train/val/test ${ds.n?.train}/${ds.n?.val}/${ds.n?.test}`);
  if (ds.trainClassCounts) L.push(`- noisy train labels per class: ${ds.trainClassCounts.join(' / ')}; clean test labels per class: ${ds.testClassCounts?.join(' / ')}`);
  if (Array.isArray(ds.skipped) && ds.skipped.length) L.push(`- skipped unreadable images: ${ds.skipped.length} (listed in report.json)`);
  const nz = d.noise as { type?: string; rate?: number; realisedRate?: number; transition?: number[][]; flippedCount?: number };
  L.push(`- noise: ${nz.type}, rate ${nz.rate}${nz.realisedRate !== undefined ? `, realised ${num(nz.realisedRate)}` : ''}${nz.flippedCount !== undefined ? ` (${nz.flippedCount} ${d.task === 'multilabel' ? 'label bits' : 'labels'} changed)` : ''}`);
  if (Array.isArray(nz.transition) && nz.transition.length <= 16 && d.task !== 'multilabel') {
    L.push('', 'Realised transition matrix (row = clean class, column = noisy label, fraction of the row; noise.json):', '');
    L.push(mdTable(['clean \\ noisy', ...d.classes], nz.transition.map((row, i) => [d.classes[i] ?? String(i), ...row.map((v) => num(v))])));
  }

  L.push('', '## Per-class test scores', '');
  for (const r of d.rows) {
    if (!r.test.perClass?.length) continue;
    L.push(`**${label(r)}**${r.method ? ` (${r.method})` : ''}`, '');
    L.push(mdTable(['class', 'support', 'precision %', 'recall %', 'F1 %', 'AUC'], r.test.perClass.map((c) => [c.name, String(c.support), pct(c.precision), pct(c.recall), pct(c.f1), num(c.auc)])), '');
  }
  for (const x of d.extra) {
    L.push(`## ${x.title}`, '');
    L.push(mdTable(['model', ...x.columns], x.rows.map((r) => [r.model, ...r.values.map((v) => (typeof v === 'number' ? num(v) : v))])));
    for (const n of x.notes ?? []) L.push('', n);
    L.push('');
  }
  L.push('## Plots', '');
  if (plotError) L.push(`(plots could not be drawn: ${plotError})`);
  for (const p of plots) L.push(`![${p}](${p})`);
  L.push('', '## Method (our reading of RoS-KD)', '');
  L.push(
    `- ${o['teachers']} teachers (${String(o['teacher-archs'])}, width ${o['teacher-width']}), teacher i trained ${o['teacher-epochs']} epochs on its own random ${o['subset-fraction']} fraction of the noisy train set (drawn independently: subsets overlap; indices in subsets.json).`,
    `- Students (${o['student']}, width ${o['student-width']}, ${o['student-epochs']} epochs, same initialisation for every method): L = (1 - alpha) CE(noisy label) + alpha T^2 KL(teacher_T || student_T), T = ${o['temperature']}, alpha = ${o['alpha']}.`,
    `- roskd draws ${o['teachers-per-batch']} teacher(s) per mini-batch (${o['teacher-weighting']} probabilities); kd uses the single best teacher on validation; avgkd averages all teachers' softened probabilities every batch; ce uses the noisy labels only.`,
    `- Teacher outputs: ${o['teacher-logits']} (cache = logits on the unaugmented train set computed once); EMA ${o['ema'] || 'off'}; temporal smoothing ${o['smoothing'] || 'off'}; augmentation ${(o['augment'] as string[]).join(',') || 'none'}.`,
  );
  L.push('', 'Files: config.json, subsets.json, noise.json, metrics.jsonl, metrics.csv, *.svg (the plots as SVG), teacher-*.safetensors, student-*.safetensors, report.json.', '');
  return L.join('\n');
}

/** Series per model of one metric over epochs. */
function series(metrics: MetricsLine[], pick: (m: MetricsLine) => number): { name: string; x: number[]; y: number[] }[] {
  const by = new Map<string, { x: number[]; y: number[] }>();
  for (const m of metrics) {
    const v = pick(m);
    if (!Number.isFinite(v)) continue;
    let s = by.get(m.model);
    if (!s) by.set(m.model, (s = { x: [], y: [] }));
    s.x.push(m.epoch);
    s.y.push(v);
  }
  return [...by.entries()].map(([name, s]) => ({ name, ...s })).sort((a, b) => modelOrder(a.name) - modelOrder(b.name) || (a.name < b.name ? -1 : 1));
}

// plots list models in training order: teachers by index, then students ce, kd, avgkd, roskd
const STUDENT_ORDER = ['ce', 'kd', 'avgkd', 'roskd'];
function modelOrder(name: string): number {
  const t = /^teacher-(\d+)$/.exec(name);
  if (t) return Number(t[1]);
  const k = STUDENT_ORDER.indexOf(name.replace(/^student-/, ''));
  return 1e6 + (k < 0 ? STUDENT_ORDER.length : k);
}

/** Models trained on plain cross-entropy (teachers, the ce student); the others minimise the KD loss. */
export const isCeModel = (model: string): boolean => model.startsWith('teacher') || model === 'student-ce';

/**
 * The report's figures: training loss in one panel per objective (cross-entropy models vs KD
 * students: the KD loss is another quantity, on another scale, and must not share an axis with
 * CE), and one validation plot per metric. Epoch ticks are whole numbers.
 */
export function reportFigures(metrics: MetricsLine[], options: Record<string, unknown> = {}): { file: string; figure: FigureOptions }[] {
  const lineOf = (s: { name: string; x: number[]; y: number[] }): LinePlotOptions['series'][number] => ({ name: s.name, xs: s.x, ys: s.y, dashed: s.name.startsWith('teacher') });
  const out: { file: string; figure: FigureOptions }[] = [];
  const loss = series(metrics, (m) => m.loss);
  const ce = loss.filter((s) => isCeModel(s.name));
  const kd = loss.filter((s) => !isCeModel(s.name));
  const kdTitle = `KD loss (alpha ${options['alpha'] ?? '?'}, T ${options['temperature'] ?? '?'})`;
  const panels: LinePlotOptions[] = [];
  if (ce.length) panels.push({ title: 'cross-entropy (noisy labels)', xLabel: 'epoch', yLabel: 'cross-entropy', xInteger: true, series: ce.map(lineOf) });
  if (kd.length) panels.push({ title: kdTitle, xLabel: 'epoch', yLabel: '(1-a) CE + a T^2 KL', xInteger: true, series: kd.map(lineOf) });
  if (panels.length) out.push({ file: 'loss.png', figure: { title: 'training loss by objective', panels } });
  const specs: [string, string, string, (m: MetricsLine) => number][] = [
    ['val-acc.png', 'validation accuracy (clean labels)', 'accuracy', (m) => m.val.acc],
    ['val-auc.png', 'validation macro AUC (clean labels)', 'AUC', (m) => m.val.auc],
    ['val-f1.png', 'validation macro-F1 (clean labels)', 'macro-F1', (m) => m.val.f1],
  ];
  for (const [file, title, ylabel, pick] of specs) {
    const s = series(metrics, pick);
    if (s.length) out.push({ file, figure: { panels: [{ title, xLabel: 'epoch', yLabel: ylabel, xInteger: true, series: s.map(lineOf) }] } });
  }
  return out;
}

/** Writes report.json, report.md and the plots (PNG + SVG) into the run directory; fills d.tableText. */
export function writeReport(run: RunStore, d: ReportData): void {
  d.tableText = textTable(d.rows, d.selectBy);
  const plots: string[] = [];
  let plotError: string | null = null;
  try {
    for (const { file, figure } of reportFigures(d.metrics, d.options)) {
      const r = renderFigure(figure);
      run.writeText(file, r.png);
      run.writeText(file.replace(/\.png$/, '.svg'), r.svg);
      plots.push(file);
    }
  } catch (e) {
    plotError = (e as Error).message;
  }
  const { metrics: _m, tableText: _t, ...json } = d;
  run.writeJson('report.json', { ...json, plots, table: d.tableText.split('\n') });
  run.writeText('report.md', markdown(d, plots, plotError));
}
