// kd/predict.ts --cam: per image an overlay PNG and the raw map (.npy); the map equals gradCam's
// for the same input normalised by hand; the target class is the predicted one unless --cam-class
// names another; --cam-layer takes PyTorch module names; all five architectures.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { PNG } from 'pngjs';
import { gpuInit } from './helpers.ts';
import * as rk from '../engine/index.ts';
import { loadSafetensors, copyIntoModel } from '../engine/node/safetensors-file.ts';
import { predictFiles } from '../kd/classify.ts';
import { buildModel } from '../kd/model-file.ts';
import { resolveCamClass } from '../kd/cam.ts';
import { parseNpy } from '../kd/data/npy.ts';
import { gradCam } from '../models/gradcam.ts';
import { writeFixtureModel, writeRandomPng } from './kd-model-fixture.ts';

const root = mkdtempSync(join(tmpdir(), 'roskd-cam-'));
const S = 16;
const imgDir = join(root, 'imgs');
const pixels: Uint8Array[] = [];

test.before(async () => {
  await gpuInit();
  mkdirSync(join(imgDir, 'sub'), { recursive: true });
  for (let i = 0; i < 3; i++) pixels.push(writeRandomPng(join(imgDir, `img${i}.png`), S, i + 1));
  pixels.push(writeRandomPng(join(imgDir, 'sub', 'img0.png'), S, 9)); // same stem in another folder
});
test.after(() => rmSync(root, { recursive: true, force: true }));

/** gradCam of the saved model on the images, normalised here ((x/255 - mean) / std), not by kd code. */
async function referenceCam(modelPath: string, imgs: Uint8Array[], layer: string | undefined, classIndex?: number | number[]) {
  const file = await loadSafetensors(modelPath);
  const meta = JSON.parse(file.metadata!.roskd);
  const model = buildModel(meta, 0);
  copyIntoModel(model, file, modelPath);
  const x = new Float32Array(imgs.length * S * S);
  imgs.forEach((im, n) => im.forEach((v, k) => (x[n * S * S + k] = (v / 255 - meta.mean[0]) / meta.std[0])));
  const t = rk.tensor(x, [imgs.length, 1, S, S]);
  try {
    return await gradCam(model as never, t, { layer, classIndex });
  } finally {
    t.dispose();
    model.dispose();
  }
}

function readPng(path: string): PNG {
  return PNG.sync.read(readFileSync(path));
}

const ARCHS: Record<string, { width: number; layer: string }> = {
  resnet18: { width: 0.0625, layer: 'layer4' },
  resnet34: { width: 0.0625, layer: 'layer4' },
  resnet50: { width: 0.0625, layer: 'layer4' },
  densenet121: { width: 0.125, layer: 'features.norm5' },
  mobilenet_v2: { width: 0.25, layer: 'features.18' },
};

test('five architectures: files per image, PNG size, .npy equals gradCam of the same input, predicted class', async () => {
  const files = [0, 1, 2].map((i) => join(imgDir, `img${i}.png`)).concat(join(imgDir, 'sub', 'img0.png'));
  for (const [arch, a] of Object.entries(ARCHS)) {
    const mp = join(root, `${arch}.safetensors`);
    await writeFixtureModel(mp, { arch, width: a.width, classes: ['cat', 'dog', 'owl'], seed: 11 });
    const dir = join(root, `cam-${arch}`);
    const r = await predictFiles(mp, files, { cam: { dir }, batchSize: 3 });
    // the class the table shows (argmax of the probabilities; a near tie of a random model may
    // differ from the CAM batch's own arg-max, so the predicted class is passed on explicitly)
    const predicted = r.predictions.map((p) => ['cat', 'dog', 'owl'].indexOf(p.prediction as string));
    const ref = await referenceCam(mp, pixels, undefined, predicted);
    assert.is(ref.layer, a.layer, `${arch}: default layer`);
    const [, h, w] = ref.shape;
    r.predictions.forEach((p, i) => {
      const stem = i === 3 ? 'img0-2' : `img${i}`;
      assert.ok(p.cam, `${arch}: image ${i} has cam files`);
      assert.is(p.cam!.png, join(dir, `${stem}.cam.png`));
      assert.ok(existsSync(p.cam!.png) && existsSync(p.cam!.npy), `${arch}: ${stem} files exist`);
      assert.is(p.cam!.layer, a.layer);
      // the predicted class, by the model's class names
      assert.is(p.cam!.class, p.prediction, `${arch} image ${i}: explains the predicted class`);
      assert.is(p.cam!.classIndex, ref.classIndex[i]);
      const npy = parseNpy(readFileSync(p.cam!.npy), p.cam!.npy);
      assert.equal(npy.shape, [h, w]);
      const want = ref.maps.subarray(i * h * w, (i + 1) * h * w);
      const scale = Math.max(1e-6, ...Array.from(want, Math.abs));
      let worst = 0;
      (npy.data as Float32Array).forEach((v, k) => (worst = Math.max(worst, Math.abs(v - want[k]))));
      assert.ok(worst <= 1e-5 * scale, `${arch} image ${i}: .npy differs from gradCam by ${worst} (max ${scale})`);
      // 16 px enlarged x14 to 224; pad 8 around; colour bar 14 + tick 6 + gap 4 + label "0.5" 24 + pad 8
      const png = readPng(p.cam!.png);
      assert.equal([png.width, png.height], [8 + 224 + 8 + 14 + 6 + 4 + 24 + 8, 224 + 16], `${arch}: PNG size`);
      let coloured = 0;
      for (let y = 8; y < 232; y += 7) for (let x = 8; x < 232; x += 7) {
        const o = (y * png.width + x) * 4;
        if (png.data[o] !== png.data[o + 1] || png.data[o + 1] !== png.data[o + 2]) coloured++;
      }
      assert.ok(coloured > 100, `${arch}: the overlay is coloured (${coloured} of 1024 sampled pixels)`);
    });
  }
});

test('--cam-class by name or index explains that class; other layers by module name', async () => {
  const mp = join(root, 'resnet18.safetensors');
  const files = [0, 1, 2].map((i) => join(imgDir, `img${i}.png`));
  for (const [spec, k] of [['owl', 2], ['0', 0], ['Dog', 1]] as const) {
    const r = await predictFiles(mp, files, { cam: { dir: join(root, `cls-${spec}`), className: spec, layer: 'layer3.1.conv2' } });
    const ref = await referenceCam(mp, pixels.slice(0, 3), 'layer3.1.conv2', k);
    const [, h, w] = ref.shape;
    r.predictions.forEach((p, i) => {
      assert.is(p.cam!.classIndex, k);
      assert.is(p.cam!.class, ['cat', 'dog', 'owl'][k]);
      const npy = parseNpy(readFileSync(p.cam!.npy)).data as Float32Array;
      const want = ref.maps.subarray(i * h * w, (i + 1) * h * w);
      const scale = Math.max(1e-6, ...Array.from(want, Math.abs));
      npy.forEach((v, j) => assert.ok(Math.abs(v - want[j]) <= 1e-5 * scale, `class ${spec} image ${i} [${j}]: ${v} vs ${want[j]}`));
    });
  }
  // the maps of two classes differ (the class really changes what is explained)
  const a = parseNpy(readFileSync(join(root, 'cls-owl', 'img0.cam.npy'))).data as Float32Array;
  const b = parseNpy(readFileSync(join(root, 'cls-0', 'img0.cam.npy'))).data as Float32Array;
  assert.ok(a.some((v, j) => Math.abs(v - b[j]) > 1e-6), 'class 2 and class 0 maps differ');
  assert.throws(() => resolveCamClass('horse', ['cat', 'dog']), /--cam-class "horse": not a class of this model; give a name \(cat, dog\) or an index 0\.\.1/);
  assert.throws(() => resolveCamClass('2', ['cat', 'dog']), /not a class/);
  try {
    await predictFiles(mp, files, { cam: { dir: join(root, 'bad'), layer: 'layer9' } });
    assert.unreachable('bad layer accepted');
  } catch (e) {
    assert.match((e as Error).message, /--cam-layer "layer9": resnet18 has no module of that name .*Valid names include: conv1, bn1, .*layer4\.1, fc, and \d+ deeper ones/);
  }
  assert.not.ok(existsSync(join(root, 'bad')), 'nothing written for a bad layer');
});

test('command line: --cam with --cam-class and --json; usage errors', () => {
  const mp = join(root, 'resnet18.safetensors');
  const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'kd/predict.ts', ...args], { encoding: 'utf8', cwd: join(import.meta.dirname, '..') });
  const dir = join(root, 'cli-cam');
  const r = cli(['--model', mp, '--cam', dir, '--cam-class', 'dog', '--json', join(imgDir, 'img1.png')]);
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.is(out.predictions[0].cam.class, 'dog');
  assert.is(out.predictions[0].cam.png, join(dir, 'img1.cam.png'));
  assert.ok(existsSync(join(dir, 'img1.cam.npy')));
  const u = cli(['--model', mp, '--cam-class', 'dog', join(imgDir, 'img1.png')]);
  assert.is(u.status, 2);
  assert.match(u.stderr, /--cam-class and --cam-layer need --cam DIR/);
});

test.run();
