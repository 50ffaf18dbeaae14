// kd/predict.ts --labels: a model whose logits are the same for every input (classifier weight
// zeroed, bias set) scored against folder, CSV and npz labels, so every number is known exactly;
// the refusal of a model whose classes differ from the labels'; the command line and its JSON.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { gpuInit } from './helpers.ts';
import { evaluateModelFile, ClassMismatchError } from '../kd/evaluate-labels.ts';
import type { Evaluation } from '../kd/evaluation.ts';
import { writeNpz } from '../kd/data/node-files.ts';
import { writeFixtureModel, writeRandomPng } from './kd-model-fixture.ts';

const root = mkdtempSync(join(tmpdir(), 'roskd-eval-'));
const S = 16;
const model = join(root, 'const.safetensors');
const folder = join(root, 'eval');
const close = (got: number, want: number, what: string, tol = 1e-6) => assert.ok(Math.abs(got - want) <= tol, `${what}: got ${got}, want ${want}`);

test.before(async () => {
  await gpuInit();
  // every input: logits [ln 9, 0] -> p(normal) = 0.9, p(pneumonia) = 0.1
  await writeFixtureModel(model, { classes: ['normal', 'pneumonia'], constantLogits: [Math.log(9), 0], size: S });
  for (const [c, k] of [['normal', 3], ['pneumonia', 1]] as const) {
    mkdirSync(join(folder, c), { recursive: true });
    for (let i = 0; i < k; i++) writeRandomPng(join(folder, c, `${i}.png`), S, 10 * k + i);
  }
});
test.after(() => rmSync(root, { recursive: true, force: true }));

/**
 * 3 normal, 1 pneumonia, everything predicted normal with confidence 0.9:
 * accuracy 3/4; normal P 3/4 R 1 F1 6/7; pneumonia 0 0 0; macro-F1 3/7; AUC 1/2 (all scores tied);
 * ECE |3/4 - 0.9| = 0.15 (one bin); Brier (3 (0.1^2 + 0.1^2) + 0.9^2 + 0.9^2) / 4 = 0.42.
 */
function checkKnown(e: Evaluation, what: string): void {
  assert.is(e.n, 4, what);
  close(e.accuracy, 0.75, `${what} accuracy`, 1e-12);
  assert.equal(e.confusion, [[3, 0], [1, 0]], what);
  close(e.perClass[0].precision, 0.75, `${what} precision normal`, 1e-12);
  close(e.perClass[0].recall, 1, `${what} recall normal`, 1e-12);
  close(e.perClass[0].f1, 6 / 7, `${what} f1 normal`, 1e-12);
  assert.equal([e.perClass[1].precision, e.perClass[1].recall, e.perClass[1].f1], [0, 0, 0], what);
  assert.equal(e.perClass.map((r) => r.support), [3, 1], what);
  close(e.macroF1, 3 / 7, `${what} macro-F1`, 1e-12);
  close(e.auc, 0.5, `${what} AUC`, 1e-12);
  close(e.ece, 0.15, `${what} ECE`);
  close(e.brier, 0.42, `${what} Brier`);
}

test('folder, CSV and npz labels: every metric known exactly', async () => {
  checkKnown((await evaluateModelFile(model, folder)).evaluation, 'folder');
  // CSV: paths relative to the CSV's folder, class names as labels
  const csv = join(root, 'labels.csv');
  writeFileSync(csv, 'image,label\neval/normal/0.png,normal\neval/normal/1.png,normal\neval/pneumonia/0.png,pneumonia\neval/normal/2.png,normal\n');
  checkKnown((await evaluateModelFile(model, csv)).evaluation, 'csv');
  // npz in the MedMNIST layout: the test split has the four images (labels 0 0 0 1); the class
  // names come from the MedMNIST name in the file name
  const npzDir = join(root, 'npz');
  mkdirSync(npzDir);
  const img = (n: number) => ({ data: Uint8Array.from({ length: n * S * S }, (_, i) => (i * 37) % 251), shape: [n, S, S] });
  writeNpz(join(npzDir, 'pneumoniamnist.npz'), {
    train_images: img(2), train_labels: { data: Uint8Array.from([0, 1]), shape: [2, 1] },
    val_images: img(2), val_labels: { data: Uint8Array.from([0, 1]), shape: [2, 1] },
    test_images: img(4), test_labels: { data: Uint8Array.from([0, 0, 0, 1]), shape: [4, 1] },
  });
  const r = await evaluateModelFile(model, join(npzDir, 'pneumoniamnist.npz'));
  assert.is(r.split, 'test');
  checkKnown(r.evaluation, 'npz');
  const v = await evaluateModelFile(model, join(npzDir, 'pneumoniamnist.npz'), { split: 'val' });
  close(v.evaluation.accuracy, 0.5, 'npz val accuracy', 1e-12);
});

test('multi-label CSV: per-label ECE and Brier, mean accuracy, exact match', async () => {
  const mp = join(root, 'ml.safetensors');
  // p = sigmoid([0, ln 3, -ln 3]) = [1/2, 3/4, 1/4] for every input
  await writeFixtureModel(mp, { classes: ['x', 'y', 'z'], task: 'multilabel', constantLogits: [0, Math.log(3), -Math.log(3)], size: S });
  const csv = join(root, 'ml.csv');
  writeFileSync(csv, 'file,labels\neval/normal/0.png,x|y\neval/normal/1.png,\n');
  const e = (await evaluateModelFile(mp, csv)).evaluation;
  // decisions [1, 1, 0] for both; truth [1, 1, 0] and [0, 0, 0]
  close(e.accuracy, (0.5 + 0.5 + 1) / 3, 'mean per-label accuracy');
  close(e.exactMatch!, 0.5, 'exact match');
  // ECE per label: x conf .5 acc .5 -> 0; y conf .75 acc .5 -> .25; z conf .75 acc 1 -> .25
  [0, 0.25, 0.25].forEach((want, l) => close(e.perClass[l].ece!, want, `ECE ${'xyz'[l]}`));
  close(e.ece, 1 / 6, 'mean ECE');
  // Brier per label: x (.25 + .25) / 2; y (.0625 + .5625) / 2; z (.0625 + .0625) / 2
  [0.25, 0.3125, 0.0625].forEach((want, l) => close(e.perClass[l].brier!, want, `Brier ${'xyz'[l]}`));
  close(e.brier, 0.625 / 3, 'mean Brier');
  assert.equal(e.perClass.map((r) => r.support), [1, 1, 0]);
});

test('refuses labels whose classes the model does not have, naming both lists', async () => {
  const bad = join(root, 'bad');
  for (const c of ['effusion', 'normal']) {
    mkdirSync(join(bad, c), { recursive: true });
    writeRandomPng(join(bad, c, 'a.png'), S, 3);
  }
  const refused = async (p: Promise<unknown>, re: RegExp) => {
    try {
      await p;
      assert.unreachable('accepted');
    } catch (e) {
      assert.instance(e, ClassMismatchError);
      assert.match((e as Error).message, re);
    }
  };
  await refused(evaluateModelFile(model, bad), /the labels' classes \[effusion, normal\] do not match the model's \[normal, pneumonia\] \(not classes of the model: effusion\)/);
  const other = join(root, 'other.safetensors');
  await writeFixtureModel(other, { classes: ['benign', 'malignant'], size: S });
  await refused(evaluateModelFile(other, join(root, 'npz', 'pneumoniamnist.npz')), /the labels' classes \[normal, pneumonia\] do not match the model's \[benign, malignant\]/);
  await refused(evaluateModelFile(other, join(root, 'labels.csv')), /\[normal, pneumonia\] do not match the model's \[benign, malignant\]/);
});

test('command line: --labels prints the report and --out writes JSON; refusal exits 1', () => {
  const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'kd/predict.ts', ...args], { encoding: 'utf8', cwd: join(import.meta.dirname, '..') });
  const out = join(root, 'eval.json');
  const r = cli(['--model', model, '--labels', folder, '--out', out]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /accuracy 0\.7500  macro-F1 0\.4286  AUC 0\.5000  ECE 0\.1500  Brier 0\.4200/);
  assert.match(r.stdout, /normal\s+0\.750\s+1\.000\s+0\.857\s+0\.500\s+3/);
  assert.match(r.stdout, /pneumonia\s+1\s+0\n?/);
  const j = JSON.parse(readFileSync(out, 'utf8'));
  assert.is(j.accuracy, 0.75);
  assert.equal(j.confusion, [[3, 0], [1, 0]]);
  assert.is(j.classes.length, 2);
  assert.is(j.eceBins.length, 15);
  const bad = cli(['--model', model, '--labels', join(root, 'bad')]);
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /\[effusion, normal\] do not match the model's \[normal, pneumonia\]/);
  const mixed = cli(['--model', model, '--labels', folder, join(folder, 'normal', '0.png')]);
  assert.is(mixed.status, 2);
  assert.match(mixed.stderr, /drop the image arguments/);
});

test('real PneumoniaMNIST test split (when ../shared/data is present)', async () => {
  const p = join(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared', 'data'), 'pneumoniamnist.npz');
  if (!existsSync(p)) {
    console.log(`  skipped: ${p} not present`);
    return;
  }
  const mp = join(root, 'const28.safetensors');
  await writeFixtureModel(mp, { classes: ['normal', 'pneumonia'], constantLogits: [Math.log(9), 0], size: 28 });
  const e = (await evaluateModelFile(mp, p)).evaluation;
  // 234 normal, 390 pneumonia, all predicted normal at 0.9
  assert.is(e.n, 624);
  assert.equal(e.confusion, [[234, 0], [390, 0]]);
  close(e.accuracy, 234 / 624, 'accuracy', 1e-12);
  close(e.ece, 0.9 - 234 / 624, 'ECE');
});

test.run();
