// Progress output: the whole-run line (model i of n, stage, overall ETA) above the per-model line,
// drawn in place on a terminal (checked on a small terminal emulator), the width of a terminal
// that reports 0 columns, and byte progress of a MedMNIST download from a local HTTP server.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Progress, fitWidth, formatRunLine, formatModelLine, formatDownload, runEta, fmtSecs, type ProgressInfo } from '../kd/progress.ts';
import { resolveMedMNIST } from '../kd/data/medmnist-files.ts';

const root = mkdtempSync(join(tmpdir(), 'roskd-progress-'));

/** A terminal: \r, \n, erase line (ESC[2K), cursor up (ESC[nA), printable text; lines are cut at `cols`. */
class Term {
  lines: string[] = [''];
  row = 0;
  col = 0;
  constructor(readonly cols: number) {}
  write(s: string): void {
    for (let i = 0; i < s.length; i++) {
      const c = s[i];
      if (c === '\r') this.col = 0;
      else if (c === '\n') {
        this.row++;
        this.col = 0;
        while (this.lines.length <= this.row) this.lines.push('');
      } else if (c === '\x1b') {
        const m = /^\x1b\[(\d*)([AK])/.exec(s.slice(i));
        if (!m) throw new Error(`unknown escape ${JSON.stringify(s.slice(i, i + 6))}`);
        if (m[2] === 'K') this.lines[this.row] = '';
        else this.row = Math.max(0, this.row - Number(m[1] || 1));
        i += m[0].length - 1;
      } else {
        if (this.col >= this.cols) throw new Error('text past the last column (the terminal would wrap)');
        const l = this.lines[this.row].padEnd(this.col);
        this.lines[this.row] = l.slice(0, this.col) + c + l.slice(this.col + 1);
        this.col++;
      }
    }
  }
  screen(): string[] {
    const out = this.lines.map((l) => l.trimEnd());
    while (out.length && !out[out.length - 1]) out.pop(); // blank lines at the bottom are no output
    return out;
  }
}

const info = (model: string, stage: string, epoch: number, epochs: number, step: number, steps: number): ProgressInfo => ({ stage, model, epoch, epochs, step, steps, loss: 0.5, ips: 100, eta: 10 });

test('fitWidth: an unknown or 0-column terminal cuts nothing; otherwise the last column stays free', () => {
  const line = 'abcdefghij';
  assert.is(fitWidth(line, 0), line);
  assert.is(fitWidth(line, undefined), line);
  assert.is(fitWidth(line, 11), line);
  assert.is(fitWidth(line, 10), 'abcdefghi');
  assert.is(fitWidth(line, 5), 'abcd');
});

test('a terminal reporting 0 columns gets the whole line (the last character was cut before)', () => {
  const written: string[] = [];
  const p = new Progress('tty', { write: (s: string) => void written.push(s), columns: 0, isTTY: true }, () => {}, () => 0);
  const i = info('teacher-0', 'teachers', 1, 2, 3, 3);
  p.update(i);
  assert.ok(written.join('').endsWith(formatModelLine(i)), JSON.stringify(written.join('')));
  const t = new Term(40);
  const q = new Progress('tty', { write: (s: string) => t.write(s), columns: 40, isTTY: true }, () => {}, () => 0);
  q.update(i);
  assert.is(t.screen()[0], formatModelLine(i).slice(0, 39));
});

test('formatting: the run line, the model line, durations and download bytes', () => {
  assert.is(formatRunLine({ index: 4, count: 7, model: 'student-kd', stage: 'student', fraction: 0.523, elapsed: 190, eta: 160 }), '[run] model 4 of 7 (student-kd, stage student) 52% done, 3m10s elapsed, about 2m40s left');
  assert.is(formatRunLine({ index: 1, count: 3, model: 'teacher-0', stage: 'teachers', fraction: 0, elapsed: 0, eta: NaN }), '[run] model 1 of 3 (teacher-0, stage teachers) 0% done, 0s elapsed, about ? left');
  assert.is(formatModelLine(info('teacher-1', 'teachers', 2, 5, 7, 9)), '[teachers] teacher-1 epoch 2/5 step 7/9 loss 0.5000 100 img/s ETA 10s');
  assert.equal([fmtSecs(59.4), fmtSecs(61), fmtSecs(3725), fmtSecs(Infinity)], ['59s', '1m01s', '1h02m', '?']);
  const MiB = 1024 * 1024;
  assert.is(formatDownload({ file: 'pneumoniamnist.npz', received: 10 * MiB, total: 40 * MiB, secs: 5 }), 'downloading pneumoniamnist.npz: 10.0 MiB of 40.0 MiB (25%) 2.0 MiB/s ETA 15s');
  assert.is(formatDownload({ file: 'x.npz', received: 1.5 * MiB, total: null, secs: 0 }), 'downloading x.npz: 1.5 MiB');
});

test('runEta: remaining steps of each model at its stage rate, else the mean rate seen', () => {
  const items = [
    { stage: 'teachers', steps: 10, done: 10 },
    { stage: 'teachers', steps: 10, done: 4 },
    { stage: 'student', steps: 30, done: 0 },
  ];
  assert.is(runEta(items, { teachers: 2 }), 6 / 2 + 30 / 2);
  assert.is(runEta(items, { teachers: 2, student: 3 }), 6 / 2 + 30 / 3);
  assert.ok(Number.isNaN(runEta(items, {})));
});

test('Progress with a plan: model i of n, overall ETA across models (not reset per model), skipped models count as done', () => {
  let clock = 0;
  const t = new Term(200);
  const permanent: string[] = [];
  const p = new Progress('tty', { write: (s: string) => t.write(s), columns: 200, isTTY: true }, (l) => permanent.push(l), () => clock);
  p.setPlan([
    { model: 'teacher-0', stage: 'teachers', steps: 6 },
    { model: 'teacher-1', stage: 'teachers', steps: 6 },
    { model: 'student-ce', stage: 'student', steps: 8 },
  ]);
  p.modelDone('teacher-0'); // already trained: skipped
  // teacher-1: 2 epochs of 3 steps, 1 s per step
  for (let e = 1; e <= 2; e++)
    for (let s = 1; s <= 3; s++) {
      clock += 1000;
      p.update(info('teacher-1', 'teachers', e, 2, s, 3));
      if (e === 1 && s === 3) {
        const r = p.runStatus('teacher-1')!;
        assert.equal([r.index, r.count, r.stage], [2, 3, 'teachers']);
        assert.is(r.fraction, 9 / 20);
        // 2 s of measured steps for 2 steps (the first update only starts the clock): 1 step/s; 3 + 8 steps left
        assert.is(r.eta, 11);
        assert.equal(t.screen(), [formatRunLine(r), formatModelLine(info('teacher-1', 'teachers', 1, 2, 3, 3))]);
      }
    }
  p.modelDone('teacher-1');
  p.log('teacher-1 done');
  assert.equal(t.screen(), [], 'log() clears both live lines before printing');
  // the student: 0.5 s per step; its ETA uses the student rate once measured
  for (let s = 1; s <= 4; s++) {
    clock += 500;
    p.update(info('student-ce', 'student', 1, 2, s, 4));
  }
  const r = p.runStatus('student-ce')!;
  assert.equal([r.index, r.count, r.fraction], [3, 3, 16 / 20]);
  assert.is(r.eta, 4 * 0.5 + 0 * 1); // 4 student steps left at 2 steps/s (the gap before its first step counts as one step)
  assert.is(t.screen().length, 2);
  assert.ok(t.screen()[0].startsWith('[run] model 3 of 3 (student-ce, stage student) 80% done'));
  // a status line (download) replaces both live lines, and the next update brings two back
  p.status('downloading x.npz: 1.0 MiB');
  clock += 500;
  p.status('downloading x.npz: 2.0 MiB');
  assert.equal(t.screen(), ['downloading x.npz: 2.0 MiB']);
  clock += 500;
  p.update(info('student-ce', 'student', 2, 2, 1, 4));
  assert.is(t.screen().length, 2);
  p.clear();
  assert.equal(t.screen(), []);
  assert.equal(permanent, ['teacher-1 done']);
});

test('MedMNIST download: byte progress from a local HTTP server (with and without Content-Length)', async () => {
  const body = Buffer.alloc(300_000 + 22);
  for (let i = 0; i < 300_000; i++) body[i] = (i * 7919) & 255;
  body.writeUInt32LE(0x06054b50, 300_000); // an (empty) zip end-of-central-directory record
  const server = createServer((req, res) => {
    const chunked = req.url!.includes('chunked');
    res.writeHead(200, chunked ? {} : { 'content-length': String(body.length) });
    let off = 0;
    const next = () => {
      if (off >= body.length) return res.end();
      res.write(body.subarray(off, (off += 65536)), next);
    };
    next();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    for (const [dir, withLength] of [['plain', true], ['chunked', false]] as const) {
      const seen: { received: number; total: number | null; file: string }[] = [];
      const path = await resolveMedMNIST('testmnist', { cacheDir: join(root, dir), searchDirs: [], baseUrl: `http://127.0.0.1:${port}/${dir}`, onProgress: (p) => seen.push(p) });
      assert.equal(readFileSync(path), body);
      assert.ok(seen.length >= 2, `${seen.length} progress calls`);
      assert.ok(seen.every((s, i) => i === 0 || s.received > seen[i - 1].received), 'bytes grow');
      assert.is(seen.at(-1)!.received, body.length);
      assert.is(seen[0].file, 'testmnist.npz');
      assert.ok(seen.every((s) => s.total === (withLength ? body.length : null)), `total ${seen[0].total}`);
    }
    // an injected fetch works the same way
    const seen: number[] = [];
    await resolveMedMNIST('testmnist', { cacheDir: join(root, 'inj'), searchDirs: [], baseUrl: 'http://invalid.example', fetch: async () => new Response(body, { headers: { 'content-length': String(body.length) } }), onProgress: (p) => seen.push(p.received) });
    assert.is(seen.at(-1), body.length);
  } finally {
    server.close();
  }
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
