// RoS-KD pipeline: subsets, stochastic teacher choice, teacher averaging, the run directory,
// resume after an interrupted stage, NaN guard, bad inputs, predict. Tiny models (width 1/16,
// resnet18 teachers), 16 px synthetic data, 1-2 epochs: the whole file runs in about a minute.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { gpuInit } from './helpers.ts';
import { parseArgs, resolveOptions, helpText, SPECS, UsageError, type Options } from '../kd/config.ts';
import { drawSubsets, subsetStats, TeacherChooser, teacherProbabilities, combineTeachers, TargetSmoother, EmptySubsetError, gatherRows } from '../kd/roskd.ts';
import { runPipeline } from '../kd/pipeline.ts';
import { loadData } from '../kd/data-source.ts';
import { NanLossError, InterruptedError } from '../kd/interrupt.ts';
import { scoreProbs } from '../kd/metrics.ts';
import { makeOptimizer } from '../kd/optim-setup.ts';
import * as rk from '../engine/index.ts';
import { predictFiles } from '../kd/classify.ts';
import { loadSafetensors } from '../engine/node/safetensors-file.ts';
import { makeSynthetic } from '../kd/data/synthetic.ts';
import { encodePng } from '../kd/data/image.ts';

const root = mkdtempSync(join(tmpdir(), 'roskd-pipeline-'));
process.env.ROSKD_CACHE = join(root, 'cache');
const silent = { print: () => {} };

/** Awaits p, which must reject with an error matching `want` (a regex, or a predicate). */
async function rejects(p: Promise<unknown>, want: RegExp | ((e: Error) => boolean)): Promise<void> {
  let err: Error | null = null;
  try {
    await p;
  } catch (e) {
    err = e as Error;
  }
  if (!err) assert.unreachable(`expected a rejection matching ${want}`);
  const ok = want instanceof RegExp ? want.test(err!.message) : want(err!);
  assert.ok(ok, `unexpected error: ${err!.name}: ${err!.message}`);
}

/** The smallest configuration that still exercises everything. */
function tiny(out: string, extra: Partial<Options> = {}): Partial<Options> {
  return {
    out: join(root, out), data: 'synthetic', size: 16, syntheticN: 64, noiseRate: 0.3,
    teachers: 2, teacherArchs: ['resnet18'], teacherWidth: 0.0625, studentWidth: 0.0625,
    teacherEpochs: 1, studentEpochs: 1, batchSize: 16, evalBatchSize: 64, progress: 'none',
    methods: ['ce', 'kd', 'avgkd', 'roskd'], ...extra,
  };
}

test.before(async () => {
  await gpuInit();
});
test.after(() => {
  rmSync(root, { recursive: true, force: true });
});

// ---------------------------------------------------------------- pure logic

test('subsets: sizes, distinct sorted indices, independent draws overlap as expected, seeded', () => {
  const n = 2000;
  const f = 0.7;
  const s = drawSubsets(n, 5, f, 7);
  for (const a of s) {
    assert.is(a.length, Math.round(f * n));
    for (let i = 1; i < a.length; i++) assert.ok(a[i] > a[i - 1], 'sorted and distinct');
    assert.ok(a[0] >= 0 && a[a.length - 1] < n);
  }
  const st = subsetStats(s, n);
  // independent uniform subsets: |Si ∩ Sj| ≈ f^2 n (hypergeometric sd ≈ 9 here)
  for (let i = 0; i < 5; i++)
    for (let j = 0; j < 5; j++) if (i !== j) assert.ok(Math.abs(st.pairOverlap[i][j] - f * f * n) < 60, `overlap ${i},${j} = ${st.pairOverlap[i][j]}`);
  assert.ok(Math.abs(st.unseen - n * (1 - f) ** 5) < 20, `unseen ${st.unseen}`);
  assert.equal(drawSubsets(n, 5, f, 7), s, 'same seed, same subsets');
  assert.not.equal(drawSubsets(n, 5, f, 8)[0], s[0], 'another seed, other subsets');
  assert.equal(drawSubsets(n, 1, 1, 0)[0], Int32Array.from({ length: n }, (_, i) => i), 'fraction 1 = everything');
});

test('subsets: an empty subset is a clear error', () => {
  assert.throws(() => drawSubsets(10, 3, 0.01, 0), (e: Error) => e instanceof EmptySubsetError && /empty subset/.test(e.message) && /0\.01/.test(e.message));
});

test('teacher choice: roskd draws are uniform, seeded and reproducible', () => {
  const K = 3;
  const ch = new TeacherChooser('roskd', K, { seed: 1 });
  const counts = new Array(K).fill(0);
  const N = 30000;
  const seq: number[] = [];
  for (let e = 1; e <= 30; e++) for (let s = 0; s < N / 30; s++) {
    const c = ch.choose(e, s);
    assert.is(c.length, 1);
    counts[c[0]]++;
    if (e === 1) seq.push(c[0]);
  }
  // chi-square with 2 dof: 13.8 is the 0.1% critical value
  const chi2 = counts.reduce((a, c) => a + (c - N / K) ** 2 / (N / K), 0);
  assert.ok(chi2 < 13.8, `counts ${counts} chi2 ${chi2.toFixed(2)}`);
  const again = new TeacherChooser('roskd', K, { seed: 1 });
  assert.equal(seq, Array.from({ length: N / 30 }, (_, s) => again.choose(1, s)[0]), 'same seed: same draws (a resumed run replays them)');
  const other = new TeacherChooser('roskd', K, { seed: 2 });
  assert.not.equal(seq, Array.from({ length: N / 30 }, (_, s) => other.choose(1, s)[0]), 'another seed: other draws');
  // consecutive steps are not correlated with each other (no stuck teacher)
  let same = 0;
  for (let i = 1; i < seq.length; i++) same += seq[i] === seq[i - 1] ? 1 : 0;
  assert.ok(Math.abs(same / (seq.length - 1) - 1 / K) < 0.05, `repeat rate ${same / (seq.length - 1)}`);
});

test('teacher choice: baselines, k per batch, validation weighting', () => {
  assert.equal(new TeacherChooser('ce', 3, { seed: 0 }).choose(1, 0), []);
  assert.equal(new TeacherChooser('kd', 3, { seed: 0, best: 2 }).choose(5, 9), [2]);
  assert.equal(new TeacherChooser('avgkd', 3, { seed: 0 }).choose(1, 0), [0, 1, 2]);
  const two = new TeacherChooser('roskd', 4, { seed: 3, perBatch: 2 });
  for (let s = 0; s < 200; s++) {
    const c = two.choose(1, s);
    assert.is(c.length, 2);
    assert.ok(c[0] !== c[1], 'k teachers drawn without replacement');
  }
  const probs = teacherProbabilities('val', [0.9, 0.6, 0.3]);
  assert.ok(Math.abs(probs[0] - 0.5) < 1e-12 && Math.abs(probs[2] - 1 / 6) < 1e-12, `probs ${probs}`);
  const w = new TeacherChooser('roskd', 3, { seed: 4, probs });
  const counts = [0, 0, 0];
  for (let s = 0; s < 12000; s++) counts[w.choose(1, s)[0]]++;
  assert.ok(Math.abs(counts[0] / 12000 - 0.5) < 0.02 && Math.abs(counts[2] / 12000 - 1 / 6) < 0.02, `weighted counts ${counts}`);
  assert.equal(teacherProbabilities('uniform', [0.9, 0.1]), [0.5, 0.5]);
});

test('avgkd averages the teachers\' softened probabilities; one teacher passes through', () => {
  const T = 4;
  const C = 3;
  const a = Float32Array.from([2, -1, 0.5, 10, 0, -3]);
  const b = Float32Array.from([-1, 3, 0, 0, 0, 0]);
  assert.is(combineTeachers([a], 2, C, T, false), a);
  const z = combineTeachers([a, b], 2, C, T, false);
  const soft = (v: Float32Array, o: number) => {
    const e = [0, 1, 2].map((c) => Math.exp(v[o + c] / T));
    const s = e[0] + e[1] + e[2];
    return e.map((x) => x / s);
  };
  for (let r = 0; r < 2; r++) {
    const want = soft(a, r * C).map((p, c) => (p + soft(b, r * C)[c]) / 2);
    const got = soft(z, r * C);
    for (let c = 0; c < C; c++) assert.ok(Math.abs(got[c] - want[c]) < 1e-6, `row ${r} class ${c}: ${got[c]} vs ${want[c]}`);
  }
  // multi-label: the mean of sigmoid(z/T) per element
  const zm = combineTeachers([a, b], 2, C, T, true);
  const sig = (x: number) => 1 / (1 + Math.exp(-x / T));
  for (let i = 0; i < 6; i++) assert.ok(Math.abs(sig(zm[i]) - (sig(a[i]) + sig(b[i])) / 2) < 1e-6);
  assert.equal(Array.from(gatherRows(Float32Array.from([0, 1, 2, 3, 4, 5]), 2, [2, 0])), [4, 5, 0, 1]);
});

test('temporal smoothing: first visit is the teacher, then an exponential average', () => {
  const T = 2;
  const sm = new TargetSmoother(4, 2, 0.5, T, false);
  const p = (z: Float32Array) => 1 / (1 + Math.exp((z[1] - z[0]) / T)); // softened prob of class 0
  const z1 = sm.apply([3], Float32Array.from([4, 0]));
  assert.ok(Math.abs(p(z1) - 1 / (1 + Math.exp(-2))) < 1e-6);
  const z2 = sm.apply([3], Float32Array.from([0, 4]));
  const want = 0.5 * (1 / (1 + Math.exp(-2))) + 0.5 * (1 / (1 + Math.exp(2)));
  assert.ok(Math.abs(p(z2) - want) < 1e-6, `${p(z2)} vs ${want}`);
  assert.equal(Array.from(sm.seen), [0, 0, 0, 1]);
});

test('metrics: accuracy, macro-F1 and AUC on a hand-checked case', () => {
  const probs = Float32Array.from([0.9, 0.1, 0.4, 0.6, 0.3, 0.7, 0.8, 0.2]);
  const s = scoreProbs(probs, Int32Array.from([0, 0, 1, 1]), 'binary', 2, ['a', 'b']);
  assert.is(s.acc, 0.5);
  assert.is(s.auc, 0.75); // scores of class b: 0.1,0.6 (neg) vs 0.7,0.2 (pos): 3 of 4 pairs ordered
  assert.ok(Math.abs(s.f1 - 0.5) < 1e-12);
});

// ---------------------------------------------------------------- options

test('options: --help documents every option; bad values and unknown options are named', () => {
  const h = helpText();
  for (const s of SPECS) assert.ok(h.includes(`--${s.flag}`), `--help lacks --${s.flag}`);
  assert.ok(h.includes('[paper]'));
  const p = parseArgs(['--teachers', '5', '--subset-fraction=0.5', '--methods', 'ce,roskd', '--resume']);
  assert.is(p.opts.teachers, 5);
  assert.is(p.opts.subsetFraction, 0.5);
  assert.equal(p.opts.methods, ['ce', 'roskd']);
  assert.is(p.opts.resume, true);
  assert.equal(parseArgs(['--method', 'kd']).opts.methods, ['kd'], '--method alone: one student');
  assert.equal(parseArgs([]).opts.methods, ['ce', 'kd', 'avgkd', 'roskd'], 'demo runs every baseline');
  assert.throws(() => parseArgs(['--teachrs', '3']), /unknown option --teachrs/);
  assert.throws(() => parseArgs(['--alpha', '1.5']), /--alpha: 1.5 is above the maximum 1/);
  assert.throws(() => parseArgs(['--method', 'foo']), /--method: unknown value "foo"/);
  assert.throws(() => parseArgs(['--teacher-index', '3']), /--teacher-index 3 is out of range/);
  assert.throws(() => parseArgs(['--subset-fraction', '0']), (e: Error) => e instanceof UsageError && /empty subset/.test(e.message));
  assert.throws(() => resolveOptions({ preset: 'nope' }), /unknown preset/);
  assert.throws(() => parseArgs(['--norm-bias-decay', '-0.5']), /--norm-bias-decay: -0.5 is neither -1/);
  assert.is(parseArgs(['--norm-bias-decay', '0']).opts.normBiasDecay, 0);
});

test('--norm-bias-decay: 1-D parameters (BN, biases) get their own weight decay', async () => {
  for (const optimizer of ['sgd', 'adamw'] as const) {
    const w = rk.keep(rk.tensor(new Float32Array([1, 2, 3, 4]), [2, 2]));
    const b = rk.keep(rk.tensor(new Float32Array([1, 2]), [2]));
    const opt = makeOptimizer([w, b], { optimizer, lr: 0.1, momentum: 0, weightDecay: 0.5, normBiasDecay: 0, warmupEpochs: 0, schedule: 'constant' });
    // zero gradients: only weight decay moves a parameter (SGD: p -= lr*wd*p; AdamW: p *= 1 - lr*wd)
    for (const p of [w, b]) p.grad = rk.keep(rk.zeros(p.shape));
    opt.step();
    opt.zeroGrad();
    assert.equal([...(await b.toArray())], [1, 2], `${optimizer}: 1-D parameter not decayed`);
    const wv = await w.toArray();
    [1, 2, 3, 4].forEach((v, i) => assert.ok(Math.abs(wv[i] - v * 0.95) < 1e-6, `${optimizer}: 2-D parameter decayed by lr*wd (${wv[i]} vs ${v * 0.95})`));
    opt.dispose();
    w.dispose();
    b.dispose();
  }
});

test('command line: --help exits 0, a bad option exits 2 naming it', () => {
  const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'kd/train.ts', ...args], { encoding: 'utf8', cwd: join(import.meta.dirname, '..') });
  const h = cli(['--help']);
  assert.is(h.status, 0, h.stderr);
  assert.ok(h.stdout.includes('--teacher-logits'));
  const bad = cli(['--noise-rate', 'lots']);
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /--noise-rate: expected a number, got "lots"/);
});

// ---------------------------------------------------------------- the pipeline

test('pipeline: teachers stage, interrupted student stage, resume; run directory and report complete', async () => {
  const out = 'resume';
  const logs: string[] = [];
  const print = (l: string) => logs.push(l);
  const r1 = await runPipeline(tiny(out, { stage: 'teachers' }), silent);
  const dir = r1.run.root;
  for (const i of [0, 1]) assert.ok(existsSync(join(dir, `teacher-${i}.safetensors`)));
  assert.ok(!existsSync(join(dir, 'student-ce.safetensors')), 'teachers stage trains no student');
  const subsets = JSON.parse(readFileSync(join(dir, 'subsets.json'), 'utf8'));
  assert.equal(subsets.sizes, [45, 45]);

  // student stage, aborted (like Ctrl-C) in the middle of student-roskd's epoch
  let aborted = false;
  await rejects(
    runPipeline(tiny(out, { stage: 'student', resume: true }), {
      ...silent,
      onStep: ({ model, step }) => (model === 'student-roskd' && step === 2 ? ((aborted = true), 'abort') : undefined),
    }),
    (e: Error) => e instanceof InterruptedError && /student-roskd: interrupted at epoch 1, step 2\/4/.test(e.message),
  );
  assert.ok(aborted);
  assert.ok(existsSync(join(dir, 'checkpoints', 'student-roskd.ckpt.safetensors')), 'interrupt leaves a checkpoint');
  assert.ok(existsSync(join(dir, 'student-avgkd.safetensors')) && !existsSync(join(dir, 'student-roskd.safetensors')));

  // without --resume the interrupted checkpoint is not silently thrown away
  await rejects(runPipeline(tiny(out, { stage: 'student' }), silent), /interrupted checkpoint of student-roskd.*--resume/);

  // resuming with other parameter groups: a clear error, and the checkpoint survives it
  await rejects(runPipeline(tiny(out, { stage: 'student', resume: true, normBiasDecay: 0 }), silent), /student-roskd\.ckpt\.safetensors: the optimizer state does not fit this run.*--norm-bias-decay/);
  assert.ok(existsSync(join(dir, 'checkpoints', 'student-roskd.ckpt.safetensors')), 'a refused resume keeps the checkpoint');

  // resume: teachers and finished students are skipped, roskd continues at step 2
  const steps: string[] = [];
  const r3 = await runPipeline(tiny(out, { stage: 'all', resume: true, progress: 'plain' }), { print, onStep: ({ model, epoch, step }) => void steps.push(`${model}:${epoch}:${step}`) });
  assert.equal(steps, ['student-roskd:1:3', 'student-roskd:1:4'], 'only the missing steps ran');
  assert.ok(logs.some((l) => /teacher-0: already trained/.test(l)));
  assert.ok(logs.some((l) => /student-roskd: resuming at epoch 1, step 2\/4/.test(l)));
  assert.ok(!existsSync(join(dir, 'checkpoints', 'student-roskd.ckpt.safetensors')), 'finished: checkpoint removed');

  const files = readdirSync(dir);
  for (const f of ['config.json', 'subsets.json', 'noise.json', 'teacher-0.safetensors', 'teacher-1.safetensors', 'student-ce.safetensors', 'student-kd.safetensors', 'student-avgkd.safetensors', 'student-roskd.safetensors', 'metrics.jsonl', 'metrics.csv', 'report.json', 'report.md', 'loss.png', 'loss.svg', 'val-auc.png', 'val-auc.svg'])
    assert.ok(files.includes(f), `run directory lacks ${f} (has ${files.join(', ')})`);
  const md = readFileSync(join(dir, 'report.md'), 'utf8');
  for (const name of ['teacher-0', 'teacher-1', 'student-ce', 'student-kd', 'student-avgkd', 'student-roskd']) assert.ok(md.includes(`| ${name} (`), `report.md lacks ${name}`);
  const rep = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
  assert.is(rep.rows.length, 6);
  for (const row of rep.rows) assert.ok(row.test.acc >= 0 && row.test.acc <= 1 && row.test.perClass.length === 4);
  const noise = JSON.parse(readFileSync(join(dir, 'noise.json'), 'utf8'));
  assert.is(noise.rate, 0.3);
  assert.is(noise.transition.length, 4);
  assert.ok(noise.realisedRate > 0.1 && noise.realisedRate < 0.5, `realised ${noise.realisedRate}`);
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.ok(config.adapter && config.versions.node && config.options['subset-fraction'] === 0.7);
  const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(lines.some((m) => m.model === 'student-roskd' && m.epoch === 1 && Number.isFinite(m.val.acc)));
  // after the interrupt and resume, metrics.csv still has exactly one row per (model, epoch) line
  const csvRows = readFileSync(join(dir, 'metrics.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
  assert.equal(csvRows.map((r) => `${r[0]}#${r[1]}`).sort(), lines.map((m) => `${m.model}#${m.epoch}`).sort());
  assert.ok(r3.report && r3.report.tableText.includes('student-roskd'));

  // predict recovers architecture, classes and normalisation from the file alone
  const ds = makeSynthetic({ train: 4, val: 4, test: 4, size: 32 });
  const imgDir = join(root, 'imgs');
  mkdirSync(imgDir, { recursive: true });
  for (let i = 0; i < 3; i++) writeFileSync(join(imgDir, `img${i}.png`), encodePng(ds.test.images.subarray(i * 1024, (i + 1) * 1024), 32, 32, 1));
  writeFileSync(join(imgDir, 'broken.png'), 'garbage');
  const pred = await predictFiles(join(dir, 'student-roskd.safetensors'), [imgDir], { onBadImage: 'skip' });
  assert.is(pred.meta.arch, 'resnet18');
  assert.equal(pred.meta.classes, ['normal', 'consolidation', 'effusion', 'cardiomegaly']);
  assert.is(pred.predictions.length, 3);
  for (const p of pred.predictions) assert.ok(Math.abs(Object.values(p.probabilities).reduce((a, b) => a + b, 0) - 1) < 1e-4);
  assert.equal(pred.skipped.map((s) => s.file), [join(imgDir, 'broken.png')]);
  await rejects(predictFiles(join(dir, 'student-roskd.safetensors'), [imgDir]), /unreadable image .*broken\.png/);

  // a different data setting in the same run directory is refused
  await rejects(runPipeline(tiny(out, { noiseRate: 0.5, stage: 'eval' }), silent), /--noise-rate 0.5 differs/);
});

test('pipeline: online teachers, EMA, k teachers per batch, val weighting, smoothing, augmentation', async () => {
  const r = await runPipeline(
    tiny('variants', { teachers: 3, methods: ['roskd'], teacherLogits: 'online', ema: 0.9, teachersPerBatch: 2, teacherWeighting: 'val', augment: ['crop', 'flip', 'affine'] }),
    silent,
  );
  assert.ok(r.students.roskd && r.students.roskd.history.length === 1);
  assert.ok(existsSync(join(r.run.root, 'student-roskd.safetensors')));
  const s = await runPipeline(tiny('variants2', { teachers: 2, methods: ['avgkd'], smoothing: 0.5, studentEpochs: 2, normBiasDecay: 0 }), silent);
  assert.is(s.students.avgkd!.history.length, 2);
  assert.throws(() => resolveOptions({ smoothing: 0.5, teacherLogits: 'online' }), /--smoothing needs/);
});

test('pipeline: --teacher-index trains one teacher; the student stage names missing teachers', async () => {
  const r = await runPipeline(tiny('index', { stage: 'teachers', teacherIndex: 1 }), silent);
  assert.ok(existsSync(join(r.run.root, 'teacher-1.safetensors')) && !existsSync(join(r.run.root, 'teacher-0.safetensors')));
  await rejects(runPipeline(tiny('index', { stage: 'student' }), silent), /teacher-0\.safetensors missing/);
});

test('pipeline: NaN loss stops naming model/epoch/step and keeps the last good checkpoint', async () => {
  const opts = tiny('nan', { stage: 'teachers', teachers: 1, teacherEpochs: 2 });
  await rejects(
    runPipeline(opts, {
      ...silent,
      // a corrupt label (outside the classes) makes the fused loss NaN on the GPU
      corruptBatch: ({ model, epoch, step }, _x, labels) => {
        if (model === 'teacher-0' && epoch === 2 && step === 1) labels[3] = 99;
      },
    }),
    (e: Error) => e instanceof NanLossError && /teacher-0: loss is NaN at epoch 2, step 2\/2/.test(e.message) && /last good checkpoint/.test(e.message),
  );
  const ckpt = join(root, 'nan', 'checkpoints', 'teacher-0.ckpt.safetensors');
  const f = await loadSafetensors(ckpt);
  const state = JSON.parse(f.metadata!.roskd_state);
  assert.is(state.loop.epoch, 2, 'checkpoint of the last good epoch');
  for (const [name, t] of f.tensors) if (t.dtype === 'F32') for (const v of t.data as Float32Array) assert.ok(Number.isFinite(v), `${name} holds ${v}`);
  assert.ok(!existsSync(join(root, 'nan', 'teacher-0.safetensors')));
  // resuming without the fault finishes the teacher
  const r = await runPipeline({ ...opts, resume: true }, silent);
  assert.is(r.teachers[0]!.history.length, 2);
});

test('bad input: empty subset, missing CSV column, unknown class, unreadable image', async () => {
  await rejects(runPipeline(tiny('empty', { subsetFraction: 0.004 }), silent), (e: Error) => e instanceof EmptySubsetError && /empty subset/.test(e.message));

  const dir = join(root, 'ham');
  mkdirSync(dir, { recursive: true });
  const ds = makeSynthetic({ train: 24, val: 4, test: 4, size: 16 });
  const rows = ['image_id,dx,lesion_id'];
  for (let i = 0; i < 24; i++) {
    const id = `ISIC_${String(i).padStart(7, '0')}`;
    writeFileSync(join(dir, `${id}.png`), encodePng(ds.train.images.subarray(i * 256, (i + 1) * 256), 16, 16, 1));
    rows.push(`${id},${i % 2 ? 'mel' : 'nv'},L${i}`);
  }
  const csv = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const o = (data: string, extra: Partial<Options> = {}) => resolveOptions({ data, size: 16, ...extra }).opts;
  const good = await loadData(o(`ham10000:${csv('ok.csv', rows.join('\n'))}`));
  assert.is(good.ds.train.n + good.ds.val.n + good.ds.test.n, 24);
  await rejects(loadData(o(`ham10000:${csv('nodx.csv', rows.map((r) => r.split(',').filter((_, k) => k !== 1).join(',')).join('\n'))}`)), /missing column "dx"/);
  await rejects(loadData(o(`ham10000:${csv('unknown.csv', [...rows, 'ISIC_0000000,foo,L99'].join('\n'))}`)), /unknown dx "foo"/);
  writeFileSync(join(dir, 'ISIC_0000003.png'), 'not an image');
  await rejects(loadData(o(`ham10000:${csv('bad.csv', rows.join('\n'))}`)), /ISIC_0000003\.png/);
  const skipped = await loadData(o(`ham10000:${csv('bad2.csv', rows.join('\n'))}`, { onBadImage: 'skip' }));
  assert.equal((skipped.load.skipped as { file: string }[]).map((s) => s.file), [join(dir, 'ISIC_0000003.png')]);
});

test('disk full while saving leaves the previous checkpoint intact', () => {
  // A child process with a file-size limit (SIGXFSZ ignored, so writes fail with EFBIG) saves a
  // small checkpoint, then a larger one that cannot be written.
  const dir = join(root, 'full');
  mkdirSync(dir, { recursive: true });
  const script = join(dir, 'child.mts');
  writeFileSync(
    script,
    `import { saveSafetensors, loadSafetensors } from ${JSON.stringify(join(import.meta.dirname, '..', 'engine/node/safetensors-file.ts'))};
import { RunDir } from ${JSON.stringify(join(import.meta.dirname, '..', 'kd/run-dir.ts'))};
const run = new RunDir(${JSON.stringify(dir)});
const f = run.checkpointFile('teacher-0');
const small = { w: { dtype: 'F32' as const, shape: [4], data: Float32Array.from([1, 2, 3, 4]) } };
await saveSafetensors(f, small, { roskd_state: '{"epoch":1}' });
run.writeJson('report.json', { ok: 1 });
let failed = 0;
try { await saveSafetensors(f, { w: { dtype: 'F32' as const, shape: [1 << 20], data: new Float32Array(1 << 20) } }, { roskd_state: '{"epoch":2}' }); } catch (e) { failed++; console.log('save failed:', (e as Error).message); }
try { run.writeJson('report.json', { big: 'x'.repeat(1 << 21) }); } catch (e) { failed++; console.log('json failed:', (e as Error).message); }
const back = await loadSafetensors(f);
console.log(JSON.stringify({ failed, epoch: back.metadata!.roskd_state, w: Array.from(back.tensors.get('w')!.data as Float32Array) }));
`,
  );
  const r = spawnSync('bash', ['-c', `trap '' XFSZ; ulimit -f 256; exec ${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(script)}`], { encoding: 'utf8', cwd: join(import.meta.dirname, '..') });
  assert.is(r.status, 0, r.stderr);
  const last = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.is(last.failed, 2, r.stdout);
  assert.is(last.epoch, '{"epoch":1}');
  assert.equal(last.w, [1, 2, 3, 4]);
  assert.equal(JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')), { ok: 1 });
  assert.equal(readdirSync(join(dir, 'checkpoints')), ['teacher-0.ckpt.safetensors'], 'no temp file left behind');
});

test.run();
