// Run control (issue 13, items 7 and 8): non-finite weights are refused where a model is loaded
// and never saved; attack refuses other class names; a failed data load leaves no config.json;
// a resume keeps its batch size and epoch count; stale temp files are cleaned; write errors name
// the file; the NaN-stop message names the checkpoint it keeps. Tiny models, 16 px synthetic data.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { gpuInit } from './helpers.ts';
import * as rk from '../engine/index.ts';
import type { HostTensor } from '../engine/io/safetensors.ts';
import { loadSafetensors } from '../engine/node/safetensors-file.ts';
import { resolveOptions, UsageError, type Options } from '../kd/config.ts';
import { runPipeline } from '../kd/pipeline.ts';
import { loadData } from '../kd/data-source.ts';
import { NanLossError, InterruptedError } from '../kd/interrupt.ts';
import { RunDir } from '../kd/run-dir.ts';
import { buildModel, loadWeights, metadataStrings, modelMeta, modelTensors, toHostTensors, type Module } from '../kd/model-file.ts';
import { readCheckpoint } from '../kd/checkpoint.ts';
import { makeOptimizer } from '../kd/optim-setup.ts';
import { predictFiles } from '../kd/classify.ts';
import { parseAttackCli, runAttackCli } from '../kd/attack-run.ts';
import { encodePng } from '../kd/data/image.ts';

const root = mkdtempSync(join(tmpdir(), 'roskd-runctl-'));
process.env.ROSKD_CACHE = join(root, 'cache');
const silent = { print: () => {} };

async function rejects(p: Promise<unknown>, want: RegExp | ((e: Error) => boolean)): Promise<Error> {
  let err: Error | null = null;
  try {
    await p;
  } catch (e) {
    err = e as Error;
  }
  if (!err) assert.unreachable(`expected a rejection matching ${want}`);
  const ok = want instanceof RegExp ? want.test(err!.message) : want(err!);
  assert.ok(ok, `unexpected error: ${err!.name}: ${err!.message}`);
  return err!;
}

function tiny(out: string, extra: Partial<Options> = {}): Partial<Options> {
  return {
    out: join(root, out), data: 'synthetic', size: 16, syntheticN: 64, noiseRate: 0.3,
    teachers: 1, teacherArchs: ['resnet18'], teacherWidth: 0.0625, studentWidth: 0.0625,
    teacherEpochs: 2, studentEpochs: 1, batchSize: 16, evalBatchSize: 64, progress: 'none', stage: 'teachers', methods: ['ce'], ...extra,
  };
}

/** A process id that is not running (a child that has exited). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  return r.pid!;
}

test.before(async () => {
  await gpuInit();
});
test.after(() => {
  rmSync(root, { recursive: true, force: true });
});

// ---------------------------------------------------------------- item 7: non-finite weights

test('non-finite weights are refused by predict, attack, teacher reuse and resume, naming file and tensor', async () => {
  const o = resolveOptions(tiny('nanfile')).opts;
  const { ds } = await loadData(o);
  const meta = modelMeta(o, ds, 'resnet18', 0.0625, 'student', 'ce');
  const model = buildModel(meta, 1);
  const run = new RunDir(join(root, 'nanfile'));
  const t = new Map<string, rk.Tensor | HostTensor>();
  modelTensors(model, '', t);
  const host = await toHostTensors(t);
  const weight = [...model.namedParameters()][0][0];
  const runningVar = [...model.namedBuffers()].find(([n]) => n.endsWith('running_var'))![0];
  const save = async (file: string, name: string, value: number, prefix = '', extraMeta: Record<string, string> = {}) => {
    const m = new Map<string, rk.Tensor | HostTensor>();
    for (const [n, x] of host) {
      const h = x as HostTensor;
      m.set(prefix + n, n === name ? { ...h, data: Float32Array.from(h.data as Float32Array, (v, i) => (i === 2 ? value : v)) } : h);
    }
    await run.saveTensors(file, m, { ...metadataStrings(meta), ...extraMeta });
    return run.path(file);
  };
  // a clean copy loads (the check is not over-eager)
  const good = await save('student-good.safetensors', '', 0);
  await loadWeights(model, run, good);

  const nanFile = await save('student-nan.safetensors', weight, NaN);
  const img = join(root, 'nanfile', 'x.png');
  writeFileSync(img, encodePng(ds.test.images.subarray(0, ds.height * ds.width * ds.channels), ds.width, ds.height, ds.channels as 1 | 3));
  const named = (file: string, tensor: string, value: string) => (e: Error) => e.message.includes(file) && e.message.includes(`tensor ${tensor} holds ${value}`);
  await rejects(predictFiles(nanFile, [img]), named(nanFile, weight, 'NaN'));
  await rejects(runAttackCli(parseAttackCli(['--model', nanFile, '--data', 'synthetic', '--synthetic-n', '64', '--attack', 'fgsm', '--limit', '8'])), named(nanFile, weight, 'NaN'));

  // a teacher file with an infinite BN statistic (what a diverged teacher used to leave)
  const infFile = await save('teacher-0.safetensors', runningVar, Infinity);
  await rejects(loadWeights(model, run, infFile), named(infFile, runningVar, 'Infinity'));

  // a resume checkpoint with a NaN weight
  const ckpt = await save(run.checkpointFile('student-ce'), weight, NaN, 'model.', { roskd_state: JSON.stringify({ loop: { epoch: 2, step: 0 }, optim: { hyper: {}, steps: [], keys: [] } }) });
  const opt = makeOptimizer(model.parameters(), { optimizer: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 0, normBiasDecay: 0, warmupEpochs: 0, schedule: 'cosine' });
  try {
    await rejects(readCheckpoint(run, ckpt, { model, ema: null, opt }), named(ckpt, `model.${weight}`, 'NaN'));
  } finally {
    opt.dispose();
    model.dispose();
  }
});

test('weights that turn non-finite with a finite loss stop the run as a NaN loss (model, epoch, tensor); nothing non-finite is saved', async () => {
  const opts = tiny('diverge');
  let hit = '';
  const e = await rejects(
    runPipeline(opts, {
      ...silent,
      // a BN running variance overflows while the loss stays finite
      corruptModel: ({ model, epoch, step }, m: Module) => {
        if (model !== 'teacher-0' || epoch !== 2 || step !== 0) return;
        const [name, rv] = [...m.namedBuffers()].find(([n]) => n.endsWith('running_var'))!;
        hit = name;
        rk.writeTensor(rv, Float32Array.from({ length: rv.size }, (_, i) => (i === 0 ? Infinity : 1)));
      },
    }),
    (err: Error) => err instanceof NanLossError,
  );
  assert.ok(hit, 'the fault was injected');
  assert.match(e.message, new RegExp(`^teacher-0: non-finite weights after epoch 2: \\S+: tensor (model\\.)?${hit.replace(/\./g, '\\.')} holds Infinity`));
  assert.match(e.message, /last good checkpoint .*teacher-0\.ckpt\.safetensors \(end of epoch 1\) is kept/);
  const dir = join(root, 'diverge');
  assert.ok(!existsSync(join(dir, 'teacher-0.safetensors')), 'no finished model');
  assert.ok(!existsSync(join(dir, 'checkpoints', 'teacher-0.done.json')));
  for (const f of readdirSync(join(dir, 'checkpoints')).filter((x) => x.endsWith('.safetensors'))) {
    const st = await loadSafetensors(join(dir, 'checkpoints', f));
    for (const [n, t] of st.tensors) if (t.dtype === 'F32') for (const v of t.data as Float32Array) assert.ok(Number.isFinite(v), `${f}: ${n} holds ${v}`);
  }
  const ck = await loadSafetensors(join(dir, 'checkpoints', 'teacher-0.ckpt.safetensors'));
  assert.is(JSON.parse(ck.metadata!.roskd_state).loop.epoch, 2, 'the checkpoint of epoch 1 is kept');
  // resuming without the fault finishes
  const r = await runPipeline({ ...opts, resume: true }, silent);
  assert.is(r.teachers[0]!.history.length, 2);
});

// ---------------------------------------------------------------- item 8

test('NaN stop names the checkpoint it keeps: end of epoch E, or epoch E step S', async () => {
  const corruptAt = (ep: number, st: number) => ({
    ...silent,
    corruptBatch: ({ model, epoch, step }: { model: string; epoch: number; step: number }, _x: Float32Array, labels: Int32Array | Float32Array) => {
      if (model === 'teacher-0' && epoch === ep && step === st) labels[0] = 99;
    },
  });
  // end-of-epoch checkpoint (used to read "(epoch 1, step 1)", a mid-epoch step)
  await rejects(runPipeline(tiny('nanmsg-a'), corruptAt(2, 1)), (e) => e instanceof NanLossError && /loss is NaN at epoch 2, step 2\/2; .*checkpoint \S+teacher-0\.ckpt\.safetensors \(end of epoch 1\) is kept/.test(e.message));
  // mid-epoch checkpoint (Ctrl-C at epoch 1 step 1 of 4), then NaN at step 3 after the resume
  const o = tiny('nanmsg-b', { batchSize: 8 });
  await rejects(runPipeline(o, { ...silent, onStep: ({ epoch, step }) => (epoch === 1 && step === 1 ? 'abort' : undefined) }), (e) => e instanceof InterruptedError);
  await rejects(runPipeline({ ...o, resume: true }, corruptAt(1, 2)), (e) => e instanceof NanLossError && /loss is NaN at epoch 1, step 3\/\d; .*\(epoch 1, step 1\/\d\) is kept/.test(e.message));
});

test('resume refuses another --batch-size or epoch count, naming the option and both values', async () => {
  const o = tiny('resume-opts');
  await rejects(runPipeline(o, { ...silent, onStep: ({ epoch, step }) => (epoch === 1 && step === 1 ? 'abort' : undefined) }), (e) => e instanceof InterruptedError);
  const usage = (re: RegExp) => (e: Error) => e instanceof UsageError && re.test(e.message);
  await rejects(runPipeline({ ...o, resume: true, batchSize: 8 }, silent), usage(/^--batch-size 8 differs from 16 in teacher-0's checkpoint \S+teacher-0\.ckpt\.safetensors/));
  await rejects(runPipeline({ ...o, resume: true, teacherEpochs: 1 }, silent), usage(/^--teacher-epochs 1 differs from 2 in teacher-0's checkpoint/));
  await rejects(runPipeline({ ...o, resume: true, teacherEpochs: 3 }, silent), usage(/^--teacher-epochs 3 differs from 2/));
  const r = await runPipeline({ ...o, resume: true }, silent);
  assert.equal(r.teachers[0]!.resumedFrom, { epoch: 1, step: 1 });
  assert.is(r.teachers[0]!.history.length, 2);
});

test('attack refuses a dataset whose class names differ from the model\'s when the counts match', async () => {
  const o = resolveOptions(tiny('classes')).opts;
  const { ds } = await loadData(o);
  const run = new RunDir(join(root, 'classes'));
  const save = async (file: string, classes: string[]) => {
    const meta = { ...modelMeta(o, ds, 'resnet18', 0.0625, 'student', 'ce'), classes };
    const model = buildModel(meta, 1);
    const t = new Map<string, rk.Tensor | HostTensor>();
    modelTensors(model, '', t);
    await run.saveTensors(file, await toHostTensors(t), metadataStrings(meta));
    model.dispose();
    return run.path(file);
  };
  const args = (f: string) => parseAttackCli(['--model', f, '--data', 'synthetic', '--synthetic-n', '64', '--attack', 'fgsm', '--limit', '8']);
  const ok = await runAttackCli(args(await save('same.safetensors', ds.classes)));
  assert.is(ok.report.n, 8);
  const other = [...ds.classes].reverse();
  assert.not.equal(other, ds.classes);
  const f = await save('other.safetensors', other);
  await rejects(runAttackCli(args(f)), (e) => e.message.includes(`[${ds.classes.join(', ')}]`) && e.message.includes(`[${other.join(', ')}]`) && e.message.includes(f));
});

test('a failed data load leaves no config.json: the corrected rerun goes ahead', async () => {
  const bad = tiny('badload', { data: join(root, 'no-such.npz'), teacherEpochs: 1 });
  await rejects(runPipeline(bad, silent), /no-such\.npz/);
  assert.ok(!existsSync(join(root, 'badload', 'config.json')), 'no config.json after the failed load');
  const r = await runPipeline({ ...bad, data: 'synthetic' }, silent);
  assert.is(r.teachers[0]!.history.length, 1);
  // once written, another data option is still refused
  await rejects(runPipeline({ ...bad, data: 'synthetic', syntheticN: 72 }, silent), (e) => e instanceof UsageError && /--synthetic-n 72 differs from 64/.test(e.message));
});

test('run start removes stale temp files of both atomic writers, keeping live, recent and foreign ones', async () => {
  const dir = join(root, 'tmpclean');
  mkdirSync(join(dir, 'checkpoints'), { recursive: true });
  const dead = deadPid();
  const stale = [join(dir, 'checkpoints', `.teacher-0.ckpt.safetensors.${dead}.0a1b2c3d.tmp`), join(dir, `.teacher-0.safetensors.${dead}.deadbeef.tmp`), join(dir, `metrics.jsonl.tmp-${dead}-k3j5x9`)];
  // kept: a live process's, one written to a minute ago (maybe by a job on another machine), and files of other names
  const recent = join(dir, 'checkpoints', `.teacher-1.ckpt.safetensors.${dead}.0a1b2c3d.tmp`);
  const kept = [join(dir, 'checkpoints', `.teacher-0.ckpt.safetensors.${process.pid}.0a1b2c3d.tmp`), recent, join(dir, 'notes.tmp'), join(dir, 'checkpoints', 'mine.tmp-backup'), join(dir, `.old.${dead}.12345678.tmp.bak`)];
  const hourAgo = new Date(Date.now() - 3600_000);
  for (const f of [...stale, ...kept]) {
    writeFileSync(f, 'x');
    if (f !== recent) utimesSync(f, hourAgo, hourAgo);
  }
  utimesSync(recent, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
  // the run fails at its data, after the start-of-run cleaning
  await rejects(runPipeline(tiny('tmpclean', { data: join(root, 'none.npz') }), silent), /none\.npz/);
  for (const f of stale) assert.ok(!existsSync(f), `stale ${f} removed`);
  for (const f of kept) assert.ok(existsSync(f), `${f} kept`);
});

test('write errors name the file (file-size limit; a full tmpfs where root can mount one)', () => {
  const dir = join(root, 'wfail');
  mkdirSync(dir, { recursive: true });
  const script = join(dir, 'child.mts');
  writeFileSync(
    script,
    `import { RunDir } from ${JSON.stringify(join(import.meta.dirname, '..', 'kd/run-dir.ts'))};
const run = new RunDir(${JSON.stringify(dir)});
const out: string[] = [];
for (const f of [() => run.writeJson('config.json', { big: 'x'.repeat(1 << 20) }), () => run.writeText('plot.png', new Uint8Array(1 << 20)), () => run.appendMetrics({ big: 'x'.repeat(1 << 20) } as never)])
  try { f(); out.push('no error'); } catch (e) { out.push((e as Error).message); }
console.log(JSON.stringify(out));
`,
  );
  const r = spawnSync('bash', ['-c', `trap '' XFSZ; ulimit -f 256; exec ${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(script)}`], { encoding: 'utf8', cwd: join(import.meta.dirname, '..') });
  assert.is(r.status, 0, r.stderr);
  const msgs = JSON.parse(r.stdout.trim().split('\n').pop()!) as string[];
  assert.equal(msgs.length, 3);
  for (const [i, f] of ['config.json', 'plot.png', 'metrics.jsonl'].entries()) assert.ok(msgs[i].startsWith(join(dir, f) + ': cannot '), `message names ${f}: ${msgs[i]}`);
  assert.equal(readdirSync(dir).filter((f) => f.includes('.tmp')), [], 'no temp file left');

  // the same on a real full disk (root only; skipped where mounting is not allowed)
  const mnt = join(root, 'full');
  mkdirSync(mnt);
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]).status !== 0) return;
  try {
    mkdirSync(join(mnt, 'run', 'checkpoints'), { recursive: true });
    spawnSync('bash', ['-c', `cat /dev/zero > ${mnt}/filler 2>/dev/null`]);
    const c = spawnSync(process.execPath, ['--import', 'tsx', '-e', `import('./kd/run-dir.ts').then(({ RunDir }) => new RunDir(${JSON.stringify(join(mnt, 'run'))}).writeJson('config.json', { a: 'x'.repeat(9000) }))`], { encoding: 'utf8', cwd: join(import.meta.dirname, '..') });
    assert.ok(c.stderr.includes(`${join(mnt, 'run', 'config.json')}: cannot write (ENOSPC`), c.stderr);
  } finally {
    spawnSync('umount', [mnt]);
  }
});

test.run();
