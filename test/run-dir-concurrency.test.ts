// K processes (as K cluster jobs on one shared file system would) write into one run directory
// at once: metrics lines, a read-modify-write JSON file, a file only the first should create,
// identical deterministic inputs. Nothing may be lost, torn or left behind.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, existsSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunDir } from '../kd/run-dir.ts';
import { parseTempName, HOST } from '../kd/data/node-files.ts';
import { withFileLock } from '../kd/file-lock.ts';

const worker = new URL('./fixtures/run-dir-worker.ts', import.meta.url).pathname;

function runWorker(dir: string, id: number, rounds: number): Promise<void> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, ['--import', 'tsx', worker, dir, String(id), String(rounds)], { stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('exit', (code) => (code === 0 ? res() : rej(new Error(`worker ${id} exited with ${code}`))));
  });
}

test('run directory: K concurrent writers lose no metrics line or update, tear nothing, leave no temp or lock', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'roskd-concurrent-'));
  const K = 4;
  const rounds = 60;
  await Promise.all(Array.from({ length: K }, (_, i) => runWorker(dir, i, rounds)));
  const run = new RunDir(dir);
  // every line is whole JSON
  const raw = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean);
  for (const l of raw) JSON.parse(l);
  // each worker reset its own lines from epoch 3 on at rounds/2, then kept appending:
  // epochs 1, 2 and rounds/2+1 .. rounds survive, each exactly once
  const want = [1, 2, ...Array.from({ length: rounds - rounds / 2 }, (_, k) => rounds / 2 + 1 + k)];
  for (let i = 0; i < K; i++) {
    const epochs = raw.map((l) => JSON.parse(l)).filter((m) => m.model === `teacher-${i}`).map((m) => m.epoch);
    assert.equal(epochs, want, `teacher-${i}: epochs in metrics.jsonl`);
  }
  assert.is(run.readMetrics().length, K * want.length);
  // metrics.csv changes under the same lock: one row per metrics.jsonl line, header once
  const csv = readFileSync(join(dir, 'metrics.csv'), 'utf8').split('\n').filter(Boolean);
  assert.is(csv.length - 1, raw.length, 'metrics.csv rows');
  assert.is(csv.filter((l) => l === csv[0]).length, 1, 'one header line');
  const stages = run.readJson<Record<string, number>>('stages.json')!;
  assert.is(stages.total, K * rounds, 'no read-modify-write update lost');
  for (let i = 0; i < K; i++) assert.is(stages[`teacher-${i}`], rounds);
  const cfg = run.readJson<{ writer: number; pad: string }>('config.json')!;
  assert.ok(cfg.writer >= 0 && cfg.writer < K && cfg.pad.length === 20000);
  assert.is(run.readJson<{ pad: string }>('noise.json')!.pad.length, 50000);
  const left = [...readdirSync(dir), ...readdirSync(run.checkpointDir)].filter((f) => parseTempName(f) || f.endsWith('.lock'));
  assert.equal(left, [], 'temp files or locks left behind');
});

test('run directory: cleanTemp keeps a live writer\'s, another node\'s and a recent host-less temp file, removes dead local and old host-less ones', () => {
  const dir = mkdtempSync(join(tmpdir(), 'roskd-clean-'));
  const run = new RunDir(dir);
  const dead = 2 ** 22 + 12345; // above Linux's default pid_max
  const files = {
    live: `a.json.tmp-${process.pid}@${HOST}-abc`,
    deadHere: `b.json.tmp-${dead}@${HOST}-abc`,
    deadOld: `c.json.tmp-${dead}-abc`, // a name from before temp names carried the host, an hour old
    recentOld: `e.json.tmp-${dead}-abc`, // the same, a minute old: maybe a job on another machine
    otherNode: `d.json.tmp-${dead}@some-other-node-abc`,
    otherNodeOld: `f.json.tmp-${dead}@some-other-node-abc`, // two days old: a crash leftover
  };
  for (const f of Object.values(files)) writeFileSync(join(dir, f), 'x');
  const ago = (ms: number): Date => new Date(Date.now() - ms);
  utimesSync(join(dir, files.deadOld), ago(3600_000), ago(3600_000));
  utimesSync(join(dir, files.recentOld), ago(60_000), ago(60_000));
  utimesSync(join(dir, files.otherNodeOld), ago(2 * 86_400_000), ago(2 * 86_400_000));
  assert.equal(parseTempName(files.otherNode), { pid: dead, host: 'some-other-node' });
  run.cleanTemp();
  assert.ok(existsSync(join(dir, files.live)));
  assert.ok(!existsSync(join(dir, files.deadHere)));
  assert.ok(!existsSync(join(dir, files.deadOld)));
  assert.ok(existsSync(join(dir, files.recentOld)), 'a recent temp file without a host may be another machine\'s');
  assert.ok(existsSync(join(dir, files.otherNode)), 'a writer on another node may still be writing it');
  assert.ok(!existsSync(join(dir, files.otherNodeOld)));
});

test('withFileLock: a stale lock (a crashed holder) is broken; a held one times out naming the lock', () => {
  const dir = mkdtempSync(join(tmpdir(), 'roskd-lock-'));
  const p = join(dir, 'f');
  withFileLock(p, () => {
    assert.throws(() => withFileLock(p, () => 1, { timeoutMs: 50 }), /f\.lock: still locked/);
    assert.is(withFileLock(p, () => 2, { staleMs: 0 }), 2);
  });
  assert.ok(!existsSync(`${p}.lock`));
});

test.run();
