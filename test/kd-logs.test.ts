// Run logs: metrics.csv beside metrics.jsonl (same values, fixed columns, safe under concurrent
// writers, rewritten with the JSONL when lines are dropped) and TensorBoard event files
// (CRC32C framing checked against published test vectors, read back record by record).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { gpuInit } from './helpers.ts';
import { RunDir } from '../kd/run-dir.ts';
import { METRICS_CSV_COLUMNS } from '../kd/metrics-csv.ts';
import { crc32c, maskedCrc32c, readEventFile, scalarRecord, eventFileHeader, frameRecord } from '../kd/tfevents.ts';
import { runPipeline } from '../kd/pipeline.ts';
import type { MetricsLine } from '../kd/run-store.ts';

const root = mkdtempSync(join(tmpdir(), 'roskd-logs-'));
process.env.ROSKD_CACHE = join(root, 'cache');

/** RFC 4180 parsing, written independently of the writer. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) {
      if (c === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (c === '"') q = false;
      else cell += c;
    } else if (c === '"') q = true;
    else if (c === ',') row.push(cell), (cell = '');
    else if (c === '\n') row.push(cell), rows.push(row), (row = []), (cell = '');
    else cell += c;
  }
  assert.is(cell + row.join(''), '', 'file ends with a newline');
  return rows;
}

/** The CSV as objects keyed by header, checked against the fixed column order. */
function readCsv(path: string): Record<string, string>[] {
  const [head, ...body] = parseCsv(readFileSync(path, 'utf8'));
  assert.equal(head, [...METRICS_CSV_COLUMNS]);
  for (const r of body) assert.is(r.length, head.length);
  return body.map((r) => Object.fromEntries(head.map((h, i) => [h, r[i]])));
}

const cell = (v: unknown): string => (typeof v === 'number' && Number.isFinite(v) ? String(v) : '');

/** Every CSV row equals its JSONL line, number for number (and in the same order). */
function assertCsvMatchesJsonl(dir: string): number {
  const jsonl = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as MetricsLine);
  const csv = readCsv(join(dir, 'metrics.csv'));
  const key = (model: string, epoch: string | number) => `${model}#${epoch}`;
  const fromCsv = new Map(csv.map((r) => [key(r.model, r.epoch), r]));
  assert.is(fromCsv.size, csv.length, 'no duplicate (model, epoch) rows');
  assert.is(csv.length, new Set(jsonl.map((m) => key(m.model, m.epoch))).size);
  for (const m of jsonl) {
    const r = fromCsv.get(key(m.model, m.epoch))!;
    assert.ok(r, `no CSV row for ${m.model} epoch ${m.epoch}`);
    const v = m.val as Record<string, number | null>;
    assert.equal(
      [r.step, r.train_loss, r.val_acc, r.val_f1, r.val_auc, r.val_loss, r.lr, r.epoch_secs, r.images, r.time],
      [cell(m.step), cell(m.loss), cell(v.acc), cell(v.f1), cell(v.auc), cell(v.loss), cell(m.lr), cell(m.secs), cell(m.images), m.time ?? ''],
      `${m.model} epoch ${m.epoch}`,
    );
    assert.ok(Math.abs(Number(r.images_per_s) - m.images / m.secs) <= 1e-9 * (m.images / m.secs));
  }
  return csv.length;
}

const line = (model: string, epoch: number, extra: Partial<MetricsLine> = {}): MetricsLine => ({
  model, epoch, step: epoch * 7, loss: 1 / (epoch + 0.3), lr: 0.1 * 0.9 ** epoch, val: { acc: 0.5 + epoch / 100, f1: 0.4, auc: Math.SQRT1_2, loss: 0.9 }, secs: 1.25 * epoch, images: 448, time: new Date(1e12 + epoch).toISOString(), ...extra,
});

test('CRC32C: RFC 3720 test vectors and the masked form', () => {
  assert.is(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  assert.is(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.is(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.is(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  const c = 0xe3069283;
  assert.is(maskedCrc32c(new TextEncoder().encode('123456789')), ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) % 2 ** 32);
});

test('tfevents: records read back with their CRCs; corruption is detected', () => {
  const bytes = new Uint8Array([...eventFileHeader(1700000000.5), ...scalarRecord({ wallTime: 1700000001.25, step: 3, scalars: { 'val/acc': 0.875, 'train/loss': 0.3, skipped: NaN } }), ...scalarRecord({ wallTime: 1700000002, step: 300000, scalars: { lr: 1e-3 } })]);
  const ev = readEventFile(bytes);
  assert.is(ev.length, 3);
  assert.equal(ev[0], { wallTime: 1700000000.5, step: 0, fileVersion: 'brain.Event:2', scalars: {} });
  assert.is(ev[1].wallTime, 1700000001.25);
  assert.is(ev[1].step, 3);
  assert.equal(ev[1].scalars, { 'val/acc': 0.875, 'train/loss': Math.fround(0.3) });
  assert.equal([ev[2].step, ev[2].scalars.lr], [300000, Math.fround(1e-3)]);
  // the framing: 8-byte length, then the length's masked CRC, as TensorFlow's record writer lays it out
  const rec = frameRecord(new Uint8Array([1, 2, 3]));
  assert.equal([...rec.subarray(0, 8)], [3, 0, 0, 0, 0, 0, 0, 0]);
  assert.is(new DataView(rec.buffer).getUint32(8, true), maskedCrc32c(rec.subarray(0, 8)));
  const bad = bytes.slice();
  bad[bad.length - 6] ^= 1;
  assert.throws(() => readEventFile(bad), /bad data CRC/);
  assert.throws(() => readEventFile(bytes.subarray(0, bytes.length - 2)), /truncated/);
});

test('metrics.csv: one row per line, values equal to metrics.jsonl, rewritten when lines are dropped, created for an older run directory', () => {
  const dir = join(root, 'unit');
  const run = new RunDir(dir, { tensorboard: true });
  for (let e = 1; e <= 3; e++) run.appendMetrics(line('teacher-0', e));
  run.appendMetrics(line('student-a,b "x"', 1, { val: { acc: NaN, f1: 0.5, auc: 0.5, loss: Infinity } }));
  assert.is(assertCsvMatchesJsonl(dir), 4);
  const rows = readCsv(join(dir, 'metrics.csv'));
  assert.is(rows[3].model, 'student-a,b "x"', 'quoted model names survive');
  assert.is(rows[3].val_acc, '', 'non-finite values are empty cells');
  run.resetMetrics('teacher-0', 2);
  assert.is(assertCsvMatchesJsonl(dir), 2);
  assert.equal(readCsv(join(dir, 'metrics.csv')).map((r) => r.model + ':' + r.epoch), ['student-a,b "x":1', 'teacher-0:1'], 'rewritten in readMetrics order');
  // a run directory written before metrics.csv existed: the first append writes the whole file
  const old = join(root, 'old');
  new RunDir(old);
  writeFileSync(join(old, 'metrics.jsonl'), [line('teacher-0', 1), line('teacher-0', 2)].map((m) => JSON.stringify(m) + '\n').join(''));
  new RunDir(old).appendMetrics(line('teacher-0', 3));
  assert.is(assertCsvMatchesJsonl(old), 3);
  // TensorBoard: one folder per model, the header event then one scalar event per epoch (step = epoch)
  const tb = join(dir, 'tensorboard', 'teacher-0');
  const files = readdirSync(tb);
  assert.is(files.length, 1);
  assert.match(files[0], /^events\.out\.tfevents\.\d+\.[^.]+.*\.\d+$/);
  const ev = readEventFile(readFileSync(join(tb, files[0])));
  assert.equal(ev.map((e) => e.step), [0, 1, 2, 3]);
  assert.is(ev[0].fileVersion, 'brain.Event:2');
  const m2 = line('teacher-0', 2);
  assert.equal(ev[2].scalars, { 'train/loss': Math.fround(m2.loss), 'val/acc': Math.fround(m2.val.acc), 'val/f1': Math.fround(0.4), 'val/auc': Math.fround(Math.SQRT1_2), 'val/loss': Math.fround(0.9), lr: Math.fround(m2.lr), 'train/images_per_s': Math.fround(448 / 2.5) });
});

test('metrics.csv: two processes appending at once leave one header and every row', async () => {
  const dir = join(root, 'concurrent');
  new RunDir(dir);
  const script = join(root, 'writer.ts');
  writeFileSync(script, `import { RunDir } from ${JSON.stringify(join(process.cwd(), 'kd/run-dir.ts'))};
const run = new RunDir(process.argv[2]);
for (let e = 1; e <= 150; e++) run.appendMetrics({ model: process.argv[3], epoch: e, step: e, loss: e / 3, lr: 0.1, val: { acc: 0.5, f1: 0.5, auc: 0.5, loss: 1 / e }, secs: 1, images: 10, time: new Date().toISOString() });\n`);
  const tsx = join(process.cwd(), 'node_modules', '.bin', 'tsx');
  await Promise.all(['teacher-0', 'teacher-1', 'teacher-2'].map((m) => new Promise<void>((res, rej) => {
    const p = spawn(tsx, [script, dir, m], { stdio: 'inherit' });
    p.on('exit', (code) => (code === 0 ? res() : rej(new Error(`writer ${m} exited ${code}`))));
  })));
  assert.is(assertCsvMatchesJsonl(dir), 450);
});

test('a tiny run: metrics.csv has a row per model per epoch equal to metrics.jsonl; --tensorboard writes event files', async () => {
  await gpuInit();
  const out = join(root, 'run');
  await runPipeline({
    out, data: 'synthetic', size: 16, syntheticN: 48, noiseRate: 0.3, teachers: 1, teacherArchs: ['resnet18'], teacherWidth: 0.0625, studentWidth: 0.0625,
    teacherEpochs: 2, studentEpochs: 2, batchSize: 16, evalBatchSize: 64, progress: 'none', methods: ['ce', 'kd'], tensorboard: true,
  }, { print: () => {} });
  assert.is(assertCsvMatchesJsonl(out), 6);
  const rows = readCsv(join(out, 'metrics.csv'));
  assert.equal(rows.map((r) => `${r.model}:${r.epoch}:${r.step}`), ['teacher-0:1:2', 'teacher-0:2:4', 'student-ce:1:3', 'student-ce:2:6', 'student-kd:1:3', 'student-kd:2:6']);
  for (const r of rows) assert.ok(Number(r.train_loss) > 0 && Number(r.val_acc) >= 0 && Number(r.val_acc) <= 1 && Number(r.images_per_s) > 0 && !Number.isNaN(Date.parse(r.time)));
  assert.equal(readdirSync(join(out, 'tensorboard')).sort(), ['student-ce', 'student-kd', 'teacher-0']);
  const ev = readEventFile(readFileSync(join(out, 'tensorboard', 'student-kd', readdirSync(join(out, 'tensorboard', 'student-kd'))[0])));
  assert.equal(ev.map((e) => e.step), [0, 1, 2]);
  assert.is(ev[2].scalars['train/loss'], Math.fround(Number(rows[5].train_loss)));
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
