// metrics.csv: the flat, spreadsheet-friendly twin of metrics.jsonl (one row per model per epoch,
// columns in a fixed order). Pure text: the run directory (run-dir.ts) appends the rows.
import type { MetricsLine } from './run-store.ts';

/** The columns, in file order (never reordered: scripts may index them by position). */
export const METRICS_CSV_COLUMNS = [
  'model', 'epoch', 'step', 'train_loss', 'val_acc', 'val_f1', 'val_auc', 'val_loss', 'lr', 'images_per_s', 'epoch_secs', 'images', 'time',
] as const;

export type MetricsCsvColumn = (typeof METRICS_CSV_COLUMNS)[number];

// a number as JSON writes it (shortest round-trip form); non-finite values leave the cell empty
const num = (v: unknown): string => (typeof v === 'number' && Number.isFinite(v) ? String(v) : '');
const quote = (s: string): string => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

export function metricsCsvHeader(): string {
  return METRICS_CSV_COLUMNS.join(',') + '\n';
}

/** The cells of one metrics line, in column order. */
export function metricsCsvCells(m: MetricsLine): string[] {
  const v = m.val ?? {};
  const ips = m.secs > 0 ? m.images / m.secs : NaN;
  const cell: Record<MetricsCsvColumn, string> = {
    model: m.model,
    epoch: num(m.epoch),
    step: num(m.step),
    train_loss: num(m.loss),
    val_acc: num(v.acc),
    val_f1: num(v.f1),
    val_auc: num(v.auc),
    val_loss: num(v.loss),
    lr: num(m.lr),
    images_per_s: num(ips),
    epoch_secs: num(m.secs),
    images: num(m.images),
    time: typeof m.time === 'string' ? m.time : '',
  };
  return METRICS_CSV_COLUMNS.map((c) => cell[c]);
}

export function metricsCsvRow(m: MetricsLine): string {
  return metricsCsvCells(m).map(quote).join(',') + '\n';
}

/** The whole file for a list of lines (header included). */
export function metricsCsv(lines: readonly MetricsLine[]): string {
  return metricsCsvHeader() + lines.map(metricsCsvRow).join('');
}
