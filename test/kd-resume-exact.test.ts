// Resume is exact: a run interrupted mid-epoch (like Ctrl-C) and continued with --resume ends
// with bit-identical weights to the same run left alone. MobileNet-V2 has Dropout, whose mask
// stream is restarted per step from (seed, model, epoch, step) (Module.reseedDropout, called by
// kd/fit.ts); before that the resumed process drew the masks of the first steps again.
// DenseNet-121 (teacher and student, no dropout) guards the other streams. Tiny models, 16 px.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpuInit } from './helpers.ts';
import type { Options } from '../kd/config.ts';
import { runPipeline } from '../kd/pipeline.ts';
import { InterruptedError } from '../kd/interrupt.ts';
import { loadSafetensors } from '../engine/node/safetensors-file.ts';
import * as rk from '../engine/index.ts';

const root = mkdtempSync(join(tmpdir(), 'roskd-resume-exact-'));
process.env.ROSKD_CACHE = join(root, 'cache');
const silent = { print: () => {} };

function opts(out: string, arch: { teacher: string; student: string }, extra: Partial<Options> = {}): Partial<Options> {
  return {
    out: join(root, out), data: 'synthetic', size: 16, syntheticN: 64, noiseRate: 0.3, seed: 5,
    teachers: 1, teacherArchs: [arch.teacher], teacherWidth: 0.0625, studentWidth: 0.0625, student: arch.student,
    teacherEpochs: 1, studentEpochs: 2, batchSize: 16, evalBatchSize: 64, progress: 'none', methods: ['roskd'], ...extra,
  };
}

/** Every tensor of a .safetensors file as raw bits. */
async function bits(file: string): Promise<Map<string, Uint8Array>> {
  const f = await loadSafetensors(file);
  return new Map([...f.tensors].map(([n, t]) => [n, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)]));
}

async function resumeMatchesStraightRun(tag: string, arch: { teacher: string; student: string }, extra: Partial<Options> = {}): Promise<void> {
  const straight = await runPipeline(opts(`${tag}-straight`, arch, extra), silent);
  // same run, stopped after step 2 of 4 of the student's first epoch, then resumed in a fresh model
  const o = opts(`${tag}-resumed`, arch, extra);
  let stopped = false;
  try {
    await runPipeline(o, { ...silent, onStep: ({ model, epoch, step }) => (model === 'student-roskd' && epoch === 1 && step === 2 ? ((stopped = true), 'abort') : undefined) });
  } catch (e) {
    if (!(e instanceof InterruptedError)) throw e;
  }
  assert.ok(stopped, 'the run was interrupted');
  const resumed = await runPipeline({ ...o, resume: true }, silent);
  assert.equal(resumed.students.roskd!.resumedFrom, { epoch: 1, step: 2 });
  assert.equal(
    resumed.students.roskd!.history.map((h) => h.loss),
    straight.students.roskd!.history.map((h) => h.loss),
    'per-epoch training losses',
  );
  const a = await bits(join(straight.run.root, 'student-roskd.safetensors'));
  const b = await bits(join(resumed.run.root, 'student-roskd.safetensors'));
  assert.equal([...b.keys()], [...a.keys()]);
  const differ = [...a].filter(([n, x]) => !Buffer.from(x).equals(Buffer.from(b.get(n)!))).map(([n]) => n);
  assert.equal(differ, [], `${arch.student}: tensors that differ after resume: ${differ.slice(0, 5).join(', ')}`);
}

test.before(async () => {
  await gpuInit();
});
test.after(() => rmSync(root, { recursive: true, force: true }));

test('resume is bit-exact: MobileNet-V2 student (dropout)', async () => {
  await resumeMatchesStraightRun('mnv2', { teacher: 'resnet18', student: 'mobilenet_v2' });
});

test('resume is bit-exact: DenseNet-121 teacher and student', async () => {
  await resumeMatchesStraightRun('dense', { teacher: 'densenet121', student: 'densenet121' });
});

test('resume is bit-exact: --teacher-pool out-of-subset (per-sample draws among 3 teachers)', async () => {
  await resumeMatchesStraightRun('pool', { teacher: 'resnet18', student: 'resnet18' }, { teachers: 3, teacherPool: 'out-of-subset' });
});

test('reseedDropout: the same seed gives the same mask, another seed another mask, per Dropout module', async () => {
  const { nn } = rk;
  const model = new nn.Sequential(new nn.Dropout(0.5, { seed: 1 }), new nn.Dropout(0.5, { seed: 1 }));
  const x = rk.keep(rk.ones([4096]));
  const masks = async (seed: number): Promise<Float32Array[]> => {
    model.reseedDropout(seed);
    const [d0, d1] = model.children();
    return [await (d0.call(x) as rk.Tensor).toArray(), await (d1.call(x) as rk.Tensor).toArray()];
  };
  const [a0, a1] = await masks(7);
  const [b0, b1] = await masks(7);
  const [c0] = await masks(8);
  assert.equal([...b0], [...a0], 'same seed: same mask');
  assert.equal([...b1], [...a1]);
  const frac = (m: Float32Array, n: Float32Array) => m.reduce((s, v, i) => s + (v !== n[i] ? 1 : 0), 0) / m.length;
  assert.ok(frac(a0, a1) > 0.3, `two Dropout modules draw different masks from one seed (${frac(a0, a1)} differ)`);
  assert.ok(frac(a0, c0) > 0.3, `another seed, another mask (${frac(a0, c0)} differ)`);
  const kept = a0.filter((v) => v !== 0);
  assert.ok(kept.every((v) => v === 2) && Math.abs(kept.length / 4096 - 0.5) < 0.05, 'kept elements scaled by 1/(1-p), about half kept');
  x.dispose();
});

test.run();
