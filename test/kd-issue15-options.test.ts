// The study options of issue 15 in the pipeline: --val-labels noisy, --teacher-pool out-of-subset,
// teacher health and --drop-collapsed-teachers, old run directories whose "symmetric" noise is now
// flip-to-other, the study's teacher-pool axis and paired statistics. Tiny models, 16 px synthetic data.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpuInit } from './helpers.ts';
import { resolveOptions, upgradeStoredOptions, type Options } from '../kd/config.ts';
import { prepareData, loadData } from '../kd/data-source.ts';
import { runPipeline } from '../kd/pipeline.ts';
import { resolveStudy, identity, sameIdentity, parseStudyArgs } from '../kd/study-config.ts';
import { cellsOf, variantsOf, baseCellOf, type CellResult, type MethodResult } from '../kd/study-grid.ts';
import { pairedComparisons, pairedMarkdown } from '../kd/study-paired.ts';

const root = mkdtempSync(join(tmpdir(), 'roskd-i15-'));
process.env.ROSKD_CACHE = join(root, 'cache');
const silent = { print: () => {} };

function tiny(out: string, extra: Partial<Options> = {}): Partial<Options> {
  return {
    out: join(root, out), data: 'synthetic', size: 16, syntheticN: 64, noiseRate: 0.3,
    teachers: 3, teacherArchs: ['resnet18'], teacherWidth: 0.0625, studentWidth: 0.0625,
    teacherEpochs: 1, studentEpochs: 1, batchSize: 16, evalBatchSize: 64, progress: 'none', ...extra,
  };
}

test.before(async () => {
  await gpuInit();
});
test.after(() => {
  rmSync(root, { recursive: true, force: true });
});

test('--val-labels noisy: val labels get the same noise (own stream), train and test as with clean', async () => {
  const base = { data: 'synthetic', syntheticN: 4000, size: 16, noiseRate: 0.4, noiseType: 'flip-to-other' } as Partial<Options>;
  const clean = await prepareData(resolveOptions(base).opts, null);
  const noisy = await prepareData(resolveOptions({ ...base, valLabels: 'noisy' }).opts, null);
  const { ds } = await loadData(resolveOptions(base).opts);
  assert.equal(Array.from(clean.ds.val.labels), Array.from(ds.val.labels), 'clean: val untouched');
  assert.equal(Array.from(noisy.noisy), Array.from(clean.noisy), 'train noise unchanged');
  assert.equal(Array.from(noisy.ds.test.labels), Array.from(ds.test.labels), 'test stays clean');
  const n = ds.val.n;
  let changed = 0;
  for (let i = 0; i < n; i++) changed += noisy.ds.val.labels[i] !== ds.val.labels[i] ? 1 : 0;
  const p = 0.4;
  assert.ok(Math.abs(changed / n - p) <= 4.5 * Math.sqrt((p * (1 - p)) / n), `val flip rate ${changed / n} for rate 0.4 (n = ${n})`);
  assert.is((noisy.noise.val as { labels: string }).labels, 'noisy');
  assert.ok(Math.abs((noisy.noise.val as { realisedRate: number }).realisedRate - changed / n) < 1e-12);
});

test('pipeline: --teacher-pool out-of-subset and --drop-collapsed-teachers; health in the log and report', async () => {
  const out = 'pool';
  const r1 = await runPipeline(tiny(out, { stage: 'teachers', methods: ['roskd'] }), silent);
  const dir = r1.run.root;
  // the health rule reads the done records: teacher-1 becomes a constant predictor, 0 and 2 perfect
  // (1-epoch tiny teachers are at chance, which the rule would rightly flag)
  const f = join(dir, 'checkpoints', 'teacher-1.done.json');
  const done = JSON.parse(readFileSync(f, 'utf8'));
  const n = done.bestVal.confusion.flat().reduce((a: number, b: number) => a + b, 0);
  const rows = done.bestVal.confusion.map((r: number[]) => r.reduce((a, b) => a + b, 0));
  for (const i of [0, 2]) {
    const g = join(dir, 'checkpoints', `teacher-${i}.done.json`);
    const d = JSON.parse(readFileSync(g, 'utf8'));
    d.bestVal = { ...d.bestVal, acc: 1, f1: 1, auc: 1, confusion: rows.map((s: number, k: number) => rows.map((_: number, j: number) => (j === k ? s : 0))) };
    writeFileSync(g, JSON.stringify(d));
  }
  done.bestVal.confusion = rows.map((s: number) => rows.map((_: number, j: number) => (j === 0 ? s : 0)));
  done.bestVal.auc = 0.5;
  done.bestVal.f1 = 0;
  done.bestVal.acc = rows[0] / n;
  writeFileSync(f, JSON.stringify(done));
  const logs: string[] = [];
  const r = await runPipeline(tiny(out, { stage: 'all', resume: true, methods: ['kd', 'roskd'], teacherPool: 'out-of-subset', dropCollapsedTeachers: true, progress: 'plain' }), { print: (l) => logs.push(l) });
  assert.ok(logs.some((l) => /teacher-1: COLLAPSED \(.*\); left out \(--drop-collapsed-teachers\)/.test(l)), logs.join('\n'));
  assert.ok(logs.some((l) => /student-roskd: .*1 of 2 teachers per sample, among those that did not train on it.*teachers 0, 2 only/.test(l)), logs.join('\n'));
  const md = readFileSync(join(dir, 'report.md'), 'utf8');
  assert.match(md, /## Teacher health/);
  assert.match(md, /teacher-1 \(resnet18\) \|[^\n]*COLLAPSED \| no \|/);
  assert.ok(r.report!.rows.every((x) => x.test.ece! >= 0 && x.test.ece! <= 1 && x.test.brier! >= 0 && x.test.brier! <= 2), 'ECE and Brier in every row');
  // all collapsed: a clear error
  for (const i of [0, 2]) {
    const g = join(dir, 'checkpoints', `teacher-${i}.done.json`);
    writeFileSync(g, JSON.stringify({ ...JSON.parse(readFileSync(g, 'utf8')), bestVal: done.bestVal }));
  }
  rmSync(join(dir, 'student-roskd.safetensors'));
  rmSync(join(dir, 'checkpoints', 'student-roskd.done.json'));
  let err = '';
  try {
    await runPipeline(tiny(out, { stage: 'student', resume: true, methods: ['roskd'], dropCollapsedTeachers: true }), silent);
  } catch (e) {
    err = (e as Error).message;
  }
  assert.match(err, /--drop-collapsed-teachers: all 3 teachers are collapsed/);
});

test('old run directories: "symmetric" without noiseDefinitions is flip-to-other; new options take their defaults', async () => {
  const up = upgradeStoredOptions({ 'noise-type': 'symmetric', 'noise-rate': 0.4 }, undefined);
  assert.is(up['noise-type'], 'flip-to-other');
  assert.is(up['val-labels'], 'clean');
  assert.is(up['teacher-pool'], 'all');
  assert.is(upgradeStoredOptions({ 'noise-type': 'symmetric' }, 2)['noise-type'], 'symmetric');
  // a run directory written before the rename resumes with the default (flip-to-other) and refuses the new symmetric
  const out = 'legacy';
  const r = await runPipeline(tiny(out, { stage: 'teachers', teachers: 1, methods: ['ce'] }), silent);
  const cf = join(r.run.root, 'config.json');
  const cfg = JSON.parse(readFileSync(cf, 'utf8'));
  assert.is(cfg.noiseDefinitions, 2);
  delete cfg.noiseDefinitions;
  cfg.options['noise-type'] = 'symmetric';
  delete cfg.options['val-labels'];
  writeFileSync(cf, JSON.stringify(cfg));
  await runPipeline(tiny(out, { stage: 'teachers', teachers: 1, methods: ['ce'] }), silent);
  let err = '';
  try {
    await runPipeline(tiny(out, { stage: 'teachers', teachers: 1, methods: ['ce'], noiseType: 'symmetric' }), silent);
  } catch (e) {
    err = (e as Error).message;
  }
  assert.match(err, /--noise-type "symmetric" differs from "flip-to-other".*written before the noise types were renamed/);
  // an old study identity (no noiseDefinitions, symmetric, no new options) is today's default study
  const cfgS = resolveStudy({ preset: 'demo' });
  const now = identity(cfgS) as { train: Record<string, unknown>; attacks: unknown };
  const old = { train: { ...now.train, 'noise-type': 'symmetric' } as Record<string, unknown>, attacks: now.attacks };
  delete old.train['val-labels'];
  delete old.train['drop-collapsed-teachers'];
  assert.ok(sameIdentity(old, identity(cfgS)));
  assert.not.ok(sameIdentity({ ...old, noiseDefinitions: 2 }, identity(cfgS)), 'a new file with symmetric is the new symmetric');
});

test('study: --teacher-pool axis reuses ce/kd/avgkd; paired comparisons include the pool ablation', () => {
  const c = parseStudyArgs(['--preset', 'demo', '--noise-rates', '0.4', '--seeds', '2', '--teacher-pool', 'all,out-of-subset']);
  const v = variantsOf(c);
  assert.equal(v.map((x) => x.label), ['pool=all', 'pool=out-of-subset']);
  const cells = cellsOf(c);
  assert.equal(cells.map((x) => x.id), ['nr0.4_seed0_K3_f0.7_k1_ema0', 'nr0.4_seed1_K3_f0.7_k1_ema0', 'nr0.4_seed0_K3_f0.7_k1_ema0_oos', 'nr0.4_seed1_K3_f0.7_k1_ema0_oos']);
  assert.is(baseCellOf(c, cells[3], cells)!.id, cells[1].id);
  // --val-labels clean,noisy: noisy validation picks other teacher epochs, so other teachers
  const vc = cellsOf(parseStudyArgs(['--preset', 'demo', '--noise-rates', '0.4', '--seeds', '1', '--val-labels', 'clean,noisy']));
  assert.equal(vc.map((x) => [x.id, x.variant.label]), [['nr0.4_seed0_K3_f0.7_k1_ema0', 'val=clean'], ['nr0.4_seed0_K3_f0.7_valnoisy_k1_ema0', 'val=noisy']]);
  assert.is(baseCellOf(parseStudyArgs(['--preset', 'demo', '--noise-rates', '0.4', '--seeds', '1', '--val-labels', 'clean,noisy']), vc[1], vc), null, 'no reuse across validation labels');
  assert.equal(resolveStudy({ preset: 'paper-small' }).teacherPool, ['all', 'out-of-subset']);
  assert.equal(resolveStudy({ preset: 'paper-small' }).train.teacherArchs, ['resnet50', 'densenet121', 'mobilenet_v2']);
  const m = (acc: number, ece: number): MethodResult => ({ clean: { accuracy: acc, macroF1: acc, auc: acc, loss: 1, ece, brier: ece }, cleanSubset: null, attacks: [], attackImages: 0, pipelineTest: null, bestEpoch: 1 });
  const cell = (seed: number, label: string, ros: number, ce: number): CellResult => ({
    id: `${label}${seed}`, variant: { ...v[label === 'pool=all' ? 0 : 1] }, noiseRate: 0.4, seed, teacherKey: 'k', realisedNoise: 0.4,
    methods: { ce: m(ce, 0.1), roskd: m(ros, 0.05) }, teachers: [], secs: { teachers: 0, students: 0, attacks: 0, total: 0 }, finished: '',
  });
  const res = [cell(0, 'pool=all', 0.8, 0.7), cell(1, 'pool=all', 0.9, 0.8), cell(0, 'pool=out-of-subset', 0.85, 0.7), cell(1, 'pool=out-of-subset', 0.95, 0.8)];
  const rows = pairedComparisons(res, ['ce', 'roskd'], { resamples: 2000 });
  const acc = rows.find((r) => r.variant === 'pool=all' && r.metric === 'accuracy')!;
  assert.equal(acc.seeds, [0, 1]);
  acc.diffs.forEach((d) => assert.ok(Math.abs(d - 0.1) < 1e-12));
  assert.ok(Math.abs(acc.ci.lo - 0.1) < 1e-12 && Math.abs(acc.ci.hi - 0.1) < 1e-12);
  assert.ok(Math.abs(acc.sign.p - 0.5) < 1e-12);
  const pool = rows.find((r) => r.a === 'roskd [pool=out-of-subset]' && r.metric === 'accuracy')!;
  pool.diffs.forEach((d) => assert.ok(Math.abs(d - 0.05) < 1e-12));
  const ece = rows.find((r) => r.variant === 'pool=all' && r.metric === 'ece')!;
  assert.ok(Math.abs(ece.mean + 0.05) < 1e-12);
  const md = pairedMarkdown(rows).join('\n');
  assert.match(md, /\| 0\.4 \| roskd - ce \| accuracy \| 2 \| \+10\.0, \+10\.0 \| \+10\.0 \| \[10\.0, 10\.0\] \| 0\.500 \| 0\.500 \|/);
  assert.match(md, /ECE \(15 bins\) \(lower better\)/);
});

test.run();
