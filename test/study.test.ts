// The noise-robustness study (kd/study.ts): command-line parsing and presets, the grid
// (variants, cells, shared teachers, reuse of baselines across roskd-only ablations), the
// statistics and the RoS-KD shortfall list, and a micro study end to end (2 methods, 1 noise
// rate, 1 seed, a tiny model, 1 epoch) that writes study.json / study.md / plots and resumes
// (a second run skips the done cell); plus `--attacks` in the pipeline's eval stage.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpuInit } from './helpers.ts';
import { parseStudyArgs, resolveStudy } from '../kd/study-config.ts';
import { variantsOf, cellsOf, baseCellOf, type CellResult, type MethodResult } from '../kd/study-grid.ts';
import { stat, summarize, roskdShortfalls } from '../kd/study-report.ts';
import { renderStudy, runStudy } from '../kd/study-run.ts';
import { runPipeline } from '../kd/pipeline.ts';
import { UsageError } from '../kd/config.ts';
import { runAttackCli, parseAttackCli } from '../kd/attack-run.ts';
import { spawnSync } from 'node:child_process';

const REPO = new URL('..', import.meta.url).pathname;
const ATTACK_CLI = new URL('../kd/attack.ts', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'roskd-study-'));
process.env.ROSKD_CACHE = join(root, 'cache');

test.before(async () => {
  await gpuInit();
});
test.after(() => {
  rmSync(root, { recursive: true, force: true });
});

// ---------------------------------------------------------------- configuration and grid

test('study args: presets, lists, seeds as a count or a list, train options passed through, clear errors', () => {
  const c = parseStudyArgs(['--preset', 'demo', '--noise-rates', '0,0.2', '--seeds', '2', '--eps', '2/255,8/255', '--student-epochs', '2', '--data=synthetic', '--out', 'x']);
  assert.equal(c.noiseRates, [0, 0.2]);
  assert.equal(c.seeds, [0, 1]);
  assert.equal(c.eps, [2 / 255, 8 / 255]);
  assert.is(c.train.studentEpochs, 2);
  assert.is(c.train.syntheticN, 512, 'the preset\'s train options stay unless overridden');
  assert.is(c.out, 'x');
  assert.equal(parseStudyArgs(['--seeds', '3,5']).seeds, [3, 5]);
  assert.equal(parseStudyArgs(['--attacks', 'none']).attacks, []);
  assert.equal(resolveStudy({ preset: 'pneumonia' }).train.data, 'pneumoniamnist');
  for (const [argv, re] of [
    [['--preset', 'nope'], /unknown study preset/],
    [['--methods', 'ce,bogus'], /unknown method "bogus"/],
    [['--noise-rates', '0,1.5'], /1.5 is not a rate/],
    [['--eps', 'lots'], /--eps/],
    [['--stage', 'eval'], /manages itself/],
    [['--student-epochz', '2'], /unknown option --student-epochz/],
    [['--teachers', '2', '--teachers-per-batch', '3'], /exceeds/],
  ] as [string[], RegExp][])
    assert.throws(() => parseStudyArgs(argv), (e: Error) => e instanceof UsageError && re.test(e.message), argv.join(' '));
});

test('grid: ablation variants, K = 1 makes stochastic and average one variant, teachers shared per (noise, seed, K, fraction)', () => {
  const c = resolveStudy({ preset: 'demo', noiseRates: [0.2], seeds: [0, 1], teachers: [1, 3], choice: ['stochastic', 'average'], ema: [0] });
  const v = variantsOf(c);
  assert.equal(v.map((x) => x.label), ['K=1 stochastic', 'K=3 stochastic', 'K=3 average']);
  assert.equal(v.map((x) => x.teachersPerBatch), [1, 1, 3]);
  const cells = cellsOf(c);
  assert.is(cells.length, 6);
  assert.is(new Set(cells.map((x) => x.id)).size, 6, 'cell ids are unique');
  const avg = cells.find((x) => x.variant.label === 'K=3 average' && x.seed === 1)!;
  const base = baseCellOf(c, avg, cells)!;
  assert.is(base.variant.label, 'K=3 stochastic');
  assert.is(base.teacherKey, avg.teacherKey, 'same teachers');
  assert.is(base.seed, 1);
  assert.is(baseCellOf(c, base, cells), null, 'a base cell runs everything itself');
  // EMA changes every student: no reuse
  const e = resolveStudy({ preset: 'demo', noiseRates: [0.2], seeds: [0], ema: [0, 0.99] });
  const ec = cellsOf(e);
  assert.is(ec[0].teacherKey, ec[1].teacherKey);
  assert.is(baseCellOf(e, ec[1], ec), null);
});

function fakeCell(seed: number, noiseRate: number, accs: Record<string, number>): CellResult {
  const m = (a: number): MethodResult => ({
    clean: { accuracy: a, macroF1: a - 0.05, auc: a + 0.1, loss: 1 },
    cleanSubset: { accuracy: a, macroF1: a, auc: a, loss: 1 },
    attacks: [{ label: 'fgsm 2/255', kind: 'fgsm', name: 'fgsm', eps: 2 / 255, accuracy: a / 2, macroF1: a / 2, auc: a / 2, loss: 2, flipped: 0.5 }],
    attackImages: 10, pipelineTest: null, bestEpoch: 1,
  });
  return {
    id: `c${seed}-${noiseRate}`, variant: { teachers: 3, subsetFraction: 0.7, ema: 0, teachersPerBatch: 1, choice: 'stochastic', label: '' }, noiseRate, seed, teacherKey: 'k', realisedNoise: noiseRate,
    methods: Object.fromEntries(Object.entries(accs).map(([k, a]) => [k, m(a)])), teachers: [], secs: { teachers: 0, students: 0, attacks: 0, total: 0 }, finished: '',
  };
}

test('statistics: mean ± sample std over seeds, grouped per (variant, method, noise); shortfalls listed', () => {
  assert.equal(stat([1, 2, 3]), { mean: 2, std: 1, n: 3 });
  assert.equal(stat([5]), { mean: 5, std: 0, n: 1 });
  assert.is(stat([NaN]).n, 0);
  const cells = [fakeCell(0, 0.4, { ce: 0.6, roskd: 0.7 }), fakeCell(1, 0.4, { ce: 0.8, roskd: 0.7 }), fakeCell(0, 0, { ce: 0.9, roskd: 0.85 })];
  const s = summarize(cells, { methods: ['ce', 'roskd'] });
  assert.equal(s.map((r) => `${r.method}@${r.noiseRate}`), ['ce@0', 'roskd@0', 'ce@0.4', 'roskd@0.4']);
  const ce4 = s[2];
  assert.ok(Math.abs(ce4.clean.accuracy.mean - 0.7) < 1e-12 && Math.abs(ce4.clean.accuracy.std - Math.sqrt(0.02)) < 1e-12);
  assert.equal(ce4.seeds, [0, 1]);
  assert.ok(ce4.attacks['fgsm 2/255'] && ce4.attacks['clean (attacked subset)']);
  const sh = roskdShortfalls(s);
  // noise 0: roskd below ce on every metric of both conditions (6); noise 0.4: ties (not above) on all 6
  assert.is(sh.total, 12);
  assert.is(sh.wins, 0);
  assert.is(sh.losses.length, 12);
  assert.ok(sh.losses.every((l) => l.baseline === 'ce'));
});

// ---------------------------------------------------------------- micro study end to end

test('micro study: runs, writes study.json / study.md / plots, resumes by skipping the done cell; --attacks in the eval stage', async () => {
  const out = join(root, 'micro');
  const cfg = resolveStudy(
    { preset: 'demo', out, methods: ['ce', 'roskd'], noiseRates: [0.3], seeds: [0], attacks: ['fgsm', 'pgd'], eps: [2 / 255, 8 / 255], pgdSteps: 2, attackLimit: 12, attackBatchSize: 16, quiet: true },
    { size: 16, syntheticN: 48, teachers: 2, teacherArchs: ['resnet18'], teacherWidth: 0.0625, studentWidth: 0.0625, teacherEpochs: 1, studentEpochs: 1, batchSize: 16, evalBatchSize: 64 },
  );
  const lines: string[] = [];
  const t0 = performance.now();
  const r1 = await runStudy(cfg, { print: (l) => lines.push(l) });
  const secs1 = (performance.now() - t0) / 1000;
  assert.equal(r1.ran, ['nr0.3_seed0_K2_f0.7_k1_ema0']);
  const cell = r1.cells[0];
  for (const m of ['ce', 'roskd'] as const) {
    const r = cell.methods[m]!;
    assert.ok(r.clean.accuracy >= 0 && r.clean.accuracy <= 1, `${m} clean accuracy ${r.clean.accuracy}`);
    assert.is(r.attacks.length, 4);
    assert.is(r.attackImages, 12);
    assert.equal(r.attacks.map((a) => a.label), ['fgsm 2/255', 'fgsm 8/255', 'pgd2 2/255', 'pgd2 8/255']);
  }
  assert.is(cell.teachers.length, 2);
  for (const f of ['study.json', 'study.md', 'study-config.json', 'clean-accuracy-vs-noise.png', 'clean-accuracy-vs-noise.svg', 'fgsm-accuracy-vs-eps-noise0.3.png', 'pgd2-auc-vs-eps-noise0.3.png', `cells/${cell.id}/cell.json`, `teachers/${cell.teacherKey}/teacher-1.safetensors`, `cells/${cell.id}/run/report.md`])
    assert.ok(existsSync(join(out, f)), `${f} written`);
  const png = readFileSync(join(out, 'clean-accuracy-vs-noise.png'));
  assert.equal([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], 'a PNG');
  const md = readFileSync(join(out, 'study.md'), 'utf8');
  for (const want of ['Clean test metrics vs label noise', 'accuracy %', 'Under attack', 'fgsm 8/255', 'Where RoS-KD did not beat a baseline', 'pixel units']) assert.ok(md.includes(want), `study.md mentions ${want}`);
  const js = JSON.parse(readFileSync(join(out, 'study.json'), 'utf8'));
  assert.is(js.summary.length, 2);
  assert.ok(js.summary[0].clean.accuracy.n === 1);

  // --report-only on a grid with a second seed: the outputs hold the one finished cell, nothing
  // is trained or created for the other; an empty or foreign directory is refused by name
  const wider = { ...cfg, seeds: [0, 1], reportOnly: true };
  const rep = renderStudy(wider, { print: () => {} });
  assert.equal(rep.skipped, [cell.id]);
  assert.equal(rep.ran, []);
  assert.ok(readFileSync(join(out, 'study.md'), 'utf8').includes('1 of 2 cells done'), 'partial study.md');
  assert.ok(!existsSync(join(out, 'cells', 'nr0.3_seed1_K2_f0.7_k1_ema0')), 'no cell started');
  assert.equal(JSON.parse(readFileSync(join(out, 'study.json'), 'utf8')).summary[0].clean.accuracy.mean, js.summary[0].clean.accuracy.mean);
  assert.throws(() => renderStudy({ ...wider, out: join(root, 'no-study') }, { print: () => {} }), (e: Error) => e instanceof UsageError && /holds no study/.test(e.message));
  assert.throws(() => renderStudy({ ...wider, noiseRates: [0.1] }, { print: () => {} }), (e: Error) => e instanceof UsageError && /none of the 2 cells/.test(e.message));
  assert.throws(() => parseStudyArgs(['--preset', 'demo', '--report-only', '--cells', cell.id]), /leave out --cells/);
  assert.is(parseStudyArgs(['--preset', 'demo', '--report-only']).reportOnly, true);

  // resume: the done cell is skipped, nothing retrained, outputs rewritten
  const mtime = statSync(join(out, 'cells', cell.id, 'cell.json')).mtimeMs;
  const t1 = performance.now();
  const r2 = await runStudy(cfg, { print: () => {} });
  const secs2 = (performance.now() - t1) / 1000;
  assert.equal(r2.ran, []);
  assert.equal(r2.skipped, [cell.id]);
  assert.is(statSync(join(out, 'cells', cell.id, 'cell.json')).mtimeMs, mtime);
  assert.ok(secs2 < secs1 / 3, `resume took ${secs2.toFixed(1)} s vs ${secs1.toFixed(1)} s`);
  assert.equal(r2.cells[0].methods.roskd!.clean, cell.methods.roskd!.clean);

  // an ablation axis added later (stochastic vs average): the base cell is reused as is, the new
  // variant trains only its roskd student on the same teachers and takes ce from the base cell
  const teacherFile = join(out, 'teachers', cell.teacherKey, 'teacher-0.safetensors');
  const tmtime = statSync(teacherFile).mtimeMs;
  const r3 = await runStudy({ ...cfg, choice: ['stochastic', 'average'] }, { print: () => {} });
  assert.equal(r3.skipped, [cell.id]);
  assert.equal(r3.ran, ['nr0.3_seed0_K2_f0.7_k2_ema0']);
  const avg = r3.cells.find((c) => c.id === r3.ran[0])!;
  assert.is(avg.variant.label, 'average');
  assert.is(avg.methods.ce!.sharedFrom, cell.id);
  assert.equal(avg.methods.ce!.clean, cell.methods.ce!.clean);
  assert.ok(!avg.methods.roskd!.sharedFrom);
  assert.is(avg.secs.teachers, 0, 'teachers reused');
  assert.is(statSync(teacherFile).mtimeMs, tmtime);
  assert.ok(!existsSync(join(out, 'cells', avg.id, 'run', 'student-ce.safetensors')), 'ce not retrained');
  const md3 = readFileSync(join(out, 'study.md'), 'utf8');
  assert.ok(md3.includes('## Variant: stochastic') && md3.includes('## Variant: average'), 'both variants reported');

  // another data setting in the same directory is refused
  const other = resolveStudy({ ...cfg, train: {} }, { ...cfg.train, syntheticN: 64 });
  let err: Error | null = null;
  try {
    await runStudy(other, { print: () => {} });
  } catch (e) {
    err = e as Error;
  }
  assert.ok(err instanceof UsageError && /other data\/model\/attack settings/.test(err.message), String(err));

  // the pipeline's eval stage with --attacks adds a robustness section to the run's report
  const runDir = join(out, 'cells', cell.id, 'run');
  const res = await runPipeline({ ...cfg.train, out: runDir, noiseRate: 0.3, seed: 0, teachers: 2, methods: ['ce', 'roskd'], stage: 'eval', attacks: ['fgsm:2/255:n=8'], progress: 'none' }, { print: () => {} });
  const sec = res.report!.extra.find((x) => /fgsm 2\/255/.test(x.title));
  assert.ok(sec, 'a robustness section');
  assert.equal(sec!.rows.map((r) => r.model), ['student-ce', 'student-roskd']);
  assert.ok(readFileSync(join(runDir, 'report.md'), 'utf8').includes('Adversarial robustness: fgsm 2/255'));

  // kd/attack.ts on the saved student: data options come from the run's config.json
  const model = join(runDir, 'student-roskd.safetensors');
  const a = await runAttackCli({ ...parseAttackCli(['--model', model, '--attack', 'fgsm,pgd', '--eps', '2/255', '--steps', '2', '--limit', '8']) });
  assert.is(a.report.n, 8);
  assert.equal(a.report.attacks.map((x) => x.label), ['fgsm 2/255', 'pgd2 2/255']);
  assert.is(a.data, 'synthetic');
  const cli = spawnSync(process.execPath, ['--import', 'tsx', ATTACK_CLI, '--model', model, '--attack', 'fgsm', '--eps', '1/255,4/255', '--limit', '6', '--json'], { encoding: 'utf8', cwd: REPO, env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' } });
  assert.is(cli.status, 0, cli.stderr);
  const j = JSON.parse(cli.stdout);
  assert.is(j.n, 6);
  assert.equal(j.attacks.map((x: { label: string }) => x.label), ['fgsm 1/255', 'fgsm 4/255']);
  assert.ok(j.clean.accuracy >= 0 && j.clean.accuracy <= 1);
  const bad = spawnSync(process.execPath, ['--import', 'tsx', ATTACK_CLI, '--model', model, '--eps', '8'], { encoding: 'utf8', cwd: REPO });
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /8\/255, not 8/);
});

test.run();
