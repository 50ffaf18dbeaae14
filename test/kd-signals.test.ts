// Ctrl-C and SIGTERM under the documented commands (`npx tsx kd/train.ts`, `npm run train`):
// the signal goes to the whole process group, as a terminal sends it, at several moments while
// the training process's main thread is busy (test/fixtures/stall.mjs blocks it for 1.5 s, longer
// than tsx's 60 ms before it SIGKILLs a child that does not answer). Every interrupt must end
// with exit code 130, its message and a checkpoint, and the resumed chain must end with the same
// weights, bit for bit, as an uninterrupted run. Also: repeated signals count as one Ctrl-C,
// three deliberate presses quit, a SIGKILLed supervisor still leaves a checkpoint, and an
// uncreatable --out (/proc/x) is a clear error instead of a hang.
// Tiny runs (16 px synthetic, resnet18 at width 1/16): about 2 minutes in all.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PressCounter, SAME_PRESS_MS } from '../kd/supervise.ts';
import { makeDirs } from '../kd/data/node-files.ts';

const REPO = join(import.meta.dirname, '..');
const root = mkdtempSync(join(tmpdir(), 'roskd-signals-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

const tinyArgs = (out: string): string[] => [
  '--out', join(root, out), '--size', '16', '--synthetic-n', '64', '--teachers', '2', '--teacher-archs', 'resnet18',
  '--teacher-width', '0.0625', '--student-width', '0.0625', '--teacher-epochs', '2', '--student-epochs', '1',
  '--batch-size', '4', '--eval-batch-size', '64', '--methods', 'roskd', '--progress', 'tty',
];
const NPX_TRAIN = ['npx', 'tsx', 'kd/train.ts'];
/** what `npx tsx` runs, without npm in between (its exit code is the process's own) */
const TSX_TRAIN = ['node_modules/.bin/tsx', 'kd/train.ts'];
const STALL = `--import=${join(REPO, 'test/fixtures/stall.mjs')}`;

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** the exit status as a shell reports it ($?): npm re-raises the signal its child got */
  status: number;
  out: string;
  err: string;
  secs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Every process below pid (the worker runs in its own session, so it is not in pid's group). */
function descendants(pid: number): number[] {
  let kids: number[] = [];
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {}
  return kids.flatMap((k) => [k, ...descendants(k)]);
}
/** Running (a zombie waiting for a busy init to reap it is not). */
const alive = (pid: number): boolean => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/**
 * Runs cmd in its own process group (like a terminal's foreground job). `stall` picks the busy
 * moment; once the process prints it, `onStall(pid)` sends the signals. Resolves when every
 * writer of its stdout/stderr is gone (a worker orphaned by its supervisor included).
 */
function run(cmd: string[], opts: { stall?: string; onStall?: (pid: number) => Promise<void> | void; env?: Record<string, string> } = {}): Promise<Result> {
  const t0 = performance.now();
  const p = spawn(cmd[0], cmd.slice(1), {
    cwd: REPO, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', ROSKD_TEST_STALL: opts.stall ?? '', NODE_OPTIONS: STALL, ...opts.env },
  });
  let out = '';
  let err = '';
  let stalled = false;
  let exit: { code: number | null; signal: NodeJS.Signals | null } = { code: null, signal: null };
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => {
    err += d;
    if (!stalled && /STALL \w+/.test(err)) {
      stalled = true;
      void opts.onStall?.(p.pid!);
    }
  });
  p.on('exit', (code, signal) => (exit = { code, signal }));
  const family = () => [p.pid!, ...descendants(p.pid!)];
  let everyone: number[] = [];
  const watch = setInterval(() => (everyone = [...new Set([...everyone, ...family()])]), 200);
  return new Promise((resolve) => {
    const guard = setTimeout(() => {
      for (const pid of everyone) if (alive(pid)) process.kill(pid, 'SIGKILL');
      err += '\n[test: killed after 180 s]';
    }, 180_000);
    p.on('close', () => {
      clearTimeout(guard);
      clearInterval(watch);
      resolve({ ...exit, status: exit.code ?? 128 + constants.signals[exit.signal!], out, err, secs: (performance.now() - t0) / 1000 });
    });
  });
}

const group = (pid: number, sig: NodeJS.Signals): void => {
  try {
    process.kill(-pid, sig);
  } catch {} // the group is gone already (a failure the assertions report)
};
const ctrlC = (pid: number) => group(pid, 'SIGINT');
const show = (r: Result) => `exit status ${r.status} (${r.signal ?? r.code}) after ${r.secs.toFixed(1)} s\n--- stdout\n${r.out}\n--- stderr\n${r.err.replace(/\r/g, '\n')}`;
const ckpt = (out: string, model: string) => join(root, out, 'checkpoints', `${model}.ckpt.safetensors`);
const MODELS = ['teacher-0.safetensors', 'teacher-1.safetensors', 'student-roskd.safetensors'];

function interrupted(r: Result, message: RegExp): void {
  assert.is(r.status, 130, show(r));
  assert.match(r.err, message, show(r));
  assert.not.match(r.err, /without a (new )?checkpoint|killed by|Force killing/, show(r));
}

// ---------------------------------------------------------------- pure logic

test('Ctrl-C presses: repeats within the window are one press, later ones count', () => {
  const c = new PressCounter();
  assert.is(c.press(1000), 1);
  assert.is(c.press(1030), 0, "tsx's re-send 30 ms later");
  assert.is(c.press(1000 + SAME_PRESS_MS - 1), 0);
  assert.is(c.press(1000 + SAME_PRESS_MS), 2);
  assert.is(c.press(1000 + 2 * SAME_PRESS_MS + 5), 3);
});

test('makeDirs: nested and existing directories; a clear error, not a hang, where mkdir cannot work', () => {
  const d = join(root, 'mk', 'a', 'b');
  makeDirs(d);
  makeDirs(d); // exists: fine
  assert.ok(statSync(d).isDirectory());
  writeFileSync(join(root, 'mk', 'file'), 'x');
  assert.throws(() => makeDirs(join(root, 'mk', 'file', 'sub'), '--out'), (e: Error) => e.message === `--out ${join(root, 'mk', 'file', 'sub')}: cannot create it, ${join(root, 'mk', 'file')} is not a directory`);
  const t0 = performance.now();
  // Node 20's mkdirSync('/proc/x/y', { recursive: true }) never returns here
  assert.throws(() => makeDirs('/proc/x/y'), /directory \/proc\/x\/y: cannot create it \(the file system at \/proc does not allow creating \/proc\/x\)/);
  assert.ok(performance.now() - t0 < 1000);
});

// ---------------------------------------------------------------- the chain

test('npx tsx: Ctrl-C while busy mid-epoch, in data load, in a checkpoint write, SIGTERM, in evaluation; the resumed chain ends bit-identical', async () => {
  const ref = await run([...NPX_TRAIN, ...tinyArgs('ref')]);
  assert.is(ref.status, 0, show(ref));
  const trials: string[] = [];
  const note = (what: string, r: Result) => trials.push(`${what}: exit status ${r.status}, ${r.secs.toFixed(1)} s`);

  // mid-epoch, busy; three signals 20 ms apart (like tsx + npm re-sends) are one Ctrl-C
  const a = await run([...NPX_TRAIN, ...tinyArgs('chain')], {
    stall: 'step',
    onStall: async (pid) => {
      for (let k = 0; k < 3; k++, await sleep(20)) ctrlC(pid);
    },
  });
  note('mid-epoch x3', a);
  interrupted(a, /teacher-0: interrupted at epoch 1, step \d+\/11; checkpoint saved/);
  assert.match(a.err, /Ctrl-C: saving a checkpoint after this step/);
  assert.is(a.err.match(/Ctrl-C:/g)!.length, 1, 'the repeats are one press');
  assert.ok(existsSync(ckpt('chain', 'teacher-0')), show(a));
  const saved = readFileSync(ckpt('chain', 'teacher-0'));

  // busy before the data load: nothing is training, the checkpoint stays as it was
  const b = await run([...NPX_TRAIN, ...tinyArgs('chain'), '--resume'], { stall: 'load', onStall: ctrlC });
  note('data load', b);
  interrupted(b, /stopped before a model was training: nothing new to checkpoint/);
  assert.ok(readFileSync(ckpt('chain', 'teacher-0')).equals(saved), 'checkpoint unchanged');

  // busy opening the end-of-epoch checkpoint: it is completed, then the run stops
  const c = await run([...NPX_TRAIN, ...tinyArgs('chain'), '--resume'], { stall: 'checkpoint', onStall: ctrlC });
  note('checkpoint write', c);
  interrupted(c, /teacher-0: interrupted after epoch 1; checkpoint saved/);
  assert.ok(existsSync(ckpt('chain', 'teacher-0')));

  // SIGTERM (Slurm, systemd) to the group of `tsx kd/train.ts`, busy mid-epoch of the next model
  const d = await run([...TSX_TRAIN, ...tinyArgs('chain'), '--resume'], { stall: 'step', onStall: (pid) => group(pid, 'SIGTERM') });
  note('SIGTERM mid-epoch', d);
  assert.is(d.code, 130, show(d));
  interrupted(d, /teacher-1: interrupted at epoch 1, step \d+\/11; checkpoint saved/);
  assert.match(d.err, /SIGTERM: saving a checkpoint/);
  assert.ok(existsSync(ckpt('chain', 'teacher-1')));

  // busy in the eval stage: every model is saved already
  const e = await run([...NPX_TRAIN, ...tinyArgs('chain'), '--resume'], { stall: 'eval', onStall: ctrlC });
  note('evaluation', e);
  interrupted(e, /stopped before a model was training/);
  for (const f of MODELS) assert.ok(existsSync(join(root, 'chain', f)), `${f} after the student stage`);
  assert.not.ok(existsSync(join(root, 'chain', 'report.md')), 'the report was not reached');

  const f = await run([...NPX_TRAIN, ...tinyArgs('chain'), '--resume']);
  note('final resume', f);
  assert.is(f.status, 0, show(f));
  for (const m of MODELS) assert.ok(readFileSync(join(root, 'chain', m)).equals(readFileSync(join(root, 'ref', m))), `${m}: resumed chain differs from the uninterrupted run`);
  const rows = (dir: string) => (JSON.parse(readFileSync(join(root, dir, 'report.json'), 'utf8')) as { rows: { name: string; test: unknown; bestEpoch: number }[] }).rows.map((r) => [r.name, r.test, r.bestEpoch]);
  assert.equal(rows('chain'), rows('ref'));
  console.log(`  ${trials.join('; ')}`);
});

test('npm run train: one Ctrl-C while busy mid-epoch checkpoints and exits 130', async () => {
  const r = await run(['npm', 'run', '--silent', 'train', '--', ...tinyArgs('npm')], { stall: 'step', onStall: ctrlC });
  interrupted(r, /teacher-0: interrupted at epoch 1, step \d+\/11; checkpoint saved/);
  assert.ok(existsSync(ckpt('npm', 'teacher-0')));
});

test('three deliberate Ctrl-C presses quit at once, without a new checkpoint', async () => {
  let t0 = 0;
  const r = await run([...NPX_TRAIN, ...tinyArgs('force')], {
    stall: 'step:10000',
    onStall: async (pid) => {
      t0 = performance.now();
      for (let k = 0; k < 3; k++) {
        ctrlC(pid);
        await sleep(SAME_PRESS_MS + 500); // a loaded machine may deliver one late: keep them apart
      }
    },
  });
  const secs = (performance.now() - t0) / 1000;
  assert.is(r.status, 130, show(r));
  assert.match(r.err, /Ctrl-C 1 more time quits without it/, show(r));
  assert.match(r.err, /quitting without a new checkpoint/, show(r));
  assert.ok(secs < 8, `quit before the 10 s stall ended (${secs.toFixed(1)} s after the first Ctrl-C)`);
  assert.not.ok(existsSync(ckpt('force', 'teacher-0')));
});

test('the worker checkpoints and exits when its supervisor is SIGKILLed', async () => {
  let worker = 0;
  const r = await run([process.execPath, '--import', 'tsx', 'kd/train.ts', ...tinyArgs('orphan')], {
    stall: 'step',
    onStall: (pid) => {
      worker = descendants(pid)[0];
      process.kill(pid, 'SIGKILL');
    },
  });
  assert.ok(worker > 0, 'found the worker process');
  assert.is(r.signal, 'SIGKILL');
  assert.match(r.err, /the supervising process is gone: saving a checkpoint/, show(r));
  assert.match(r.err, /teacher-0: interrupted at epoch 1, step \d+\/11; checkpoint saved/, show(r));
  assert.not.ok(alive(worker), 'the worker exited');
  assert.ok(existsSync(ckpt('orphan', 'teacher-0')));
});

test('--out /proc/x: a clear error naming the path, no hang', async () => {
  const r = await run(['npx', 'tsx', 'kd/train.ts', '--out', '/proc/x/run', '--size', '16', '--synthetic-n', '64']);
  assert.is(r.status, 1, show(r));
  assert.match(r.err, /error: --out \/proc\/x\/run: cannot create it \(the file system at \/proc does not allow creating \/proc\/x\)/);
  assert.ok(r.secs < 60, `took ${r.secs.toFixed(1)} s`);
});

test.run();
