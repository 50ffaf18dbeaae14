// The web page (web/, `npm run web`) in headless Chromium: the demo student classifies the demo
// images with the same probabilities as kd/predict.ts (to 1e-4), bad input gives a visible message
// naming the file or problem and the page keeps working, a tiny training run completes and its
// student loads in Node, and screenshots of both views are saved (and checked not blank) under
// $ROSKD_TEST_OUT or /tmp/roskd-web-test. Skipped without Chromium (a failure under CI).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import pngjs from 'pngjs';
import { findChromium, launchChromium } from './browser/chromium.ts';
import { buildWeb } from '../scripts/build-web.ts';
import { serveStatic } from '../scripts/serve-web.ts';
import { predictFiles } from '../kd/classify.ts';
import { parseSafetensors, serializeSafetensors } from '../engine/io/safetensors.ts';
import { makeSynthetic } from '../kd/data/synthetic.ts';
import { encodePng } from '../kd/data/image.ts';
import { encodeNpz } from '../kd/data/npy.ts';
import { nodeZipCodec } from '../kd/data/node-files.ts';
import { runPipeline } from '../kd/pipeline.ts';
import type { PageState } from '../web/src/state.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const demoDir = join(root, 'web/demo');
const demoModel = join(demoDir, 'demo-student.safetensors');
const demoImages = readdirSync(join(demoDir, 'images')).filter((f) => /\.(png|jpg)$/.test(f)).sort().map((f) => join(demoDir, 'images', f));
const outDir = process.env.ROSKD_TEST_OUT ? join(process.env.ROSKD_TEST_OUT, 'web') : join(tmpdir(), 'roskd-web-test');
const scratch = mkdtempSync(join(tmpdir(), 'roskd-web-'));
const TOL = 1e-4;

const chromiumPath = findChromium();
const skipReason = chromiumPath ? null : 'no Chromium (Debian package `chromium`; `npm run setup` installs it, or set ROSKD_CHROMIUM)';
if (skipReason && process.env.CI) throw new Error(`web test: ${skipReason}; CI must run it`);
if (skipReason) console.log(`web: skipped: ${skipReason}`);
const maybe = skipReason ? test.skip : test;

let browser: Browser;
let tab: Page;
let stop: () => void = () => {};
const consoleLines: string[] = [];
const state = (): Promise<PageState> => tab.evaluate(() => (globalThis as unknown as { roskdPage: PageState }).roskdPage);
const text = (sel: string): Promise<string> => tab.locator(sel).innerText();
/** Waits until element #id's text matches re (the page's DOM, seen from Node: no DOM types here). */
const waitText = (id: string, re: RegExp) =>
  tab.waitForFunction(([i, src]) => new RegExp(src).test((globalThis as unknown as { document: { getElementById(x: string): { textContent: string } } }).document.getElementById(i).textContent), [id, re.source] as const);

/** A screenshot saved under outDir, and a check that it shows more than one flat colour. */
async function screenshot(name: string, fullPage = true): Promise<string> {
  const file = join(outDir, name);
  const png = await tab.screenshot({ path: file, fullPage });
  const img = pngjs.PNG.sync.read(png);
  const seen = new Set<number>();
  for (let i = 0; i < img.data.length; i += 4 * 7) seen.add((img.data[i] << 16) | (img.data[i + 1] << 8) | img.data[i + 2]);
  assert.ok(seen.size > 20, `${file}: only ${seen.size} distinct colours (blank page?)`);
  return file;
}

test.before(async () => {
  if (skipReason) return;
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
});

test.after(async () => {
  stop();
  await browser?.close();
  rmSync(scratch, { recursive: true, force: true });
});

maybe('npm run web builds a static site with no Node module in its bundle', async () => {
  const t0 = performance.now();
  const b = await buildWeb(join(scratch, 'site'));
  assert.ok(b.inputs.includes('engine/browser/platform.ts'), '#platform resolved to the browser');
  assert.equal(b.inputs.filter((f) => f.startsWith('engine/node/') || f.includes('node_modules/webgpu/') || f.includes('/node-files.ts')), [], 'Node-only files in the bundle');
  const server = await serveStatic(b.dir);
  stop = () => server.close();
  const { port } = server.address() as AddressInfo;
  browser = await launchChromium(chromiumPath!);
  tab = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  tab.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  tab.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  await tab.goto(`http://127.0.0.1:${port}/`);
  await tab.waitForFunction(() => (globalThis as unknown as { roskdPage?: PageState }).roskdPage?.ready, undefined, { timeout: 60_000 });
  const s = await state();
  assert.ok(s.gpu, `the page got no WebGPU adapter: ${s.gpuError}\n${consoleLines.join('\n')}`);
  console.log(`report: web bundle app.js ${(b.bytes / 1024).toFixed(0)} KiB minified (${b.inputs.length} files); page adapter ${s.gpu}; built and loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
});

maybe('the demo student gives the same probabilities in the page as kd/predict.ts (1e-4)', async () => {
  await tab.click('#demo-model');
  await tab.waitForFunction(() => (globalThis as unknown as { roskdPage: PageState }).roskdPage.model !== null, undefined, { timeout: 60_000 });
  await tab.setInputFiles('#image-files', demoImages);
  await tab.waitForFunction((n) => (globalThis as unknown as { roskdPage: PageState }).roskdPage.predictions.length === n, demoImages.length, { timeout: 120_000 });
  const page = (await state()).predictions;
  const node = await predictFiles(demoModel, demoImages);
  assert.is(node.predictions.length, demoImages.length);
  let worst = 0;
  let same = 0;
  for (const n of node.predictions) {
    const base = n.file.split('/').pop()!;
    const p = page.find((x) => x.file === base);
    assert.ok(p, `page has no prediction for ${base}`);
    assert.is(p!.prediction, n.prediction, `${base}: predicted class`);
    for (const [c, v] of Object.entries(n.probabilities)) {
      assert.ok(Number.isFinite(p!.probabilities[c]), `${base} p(${c}) finite`);
      worst = Math.max(worst, Math.abs(p!.probabilities[c] - v));
    }
    if (p!.prediction === n.prediction) same++;
  }
  console.log(`report: predict parity page vs kd/predict.ts on ${page.length} images (PNG and JPEG): max |dp| ${worst.toExponential(2)}, ${same}/${page.length} same class`);
  assert.ok(worst <= TOL, `probabilities differ by ${worst}`);
  // the table shows them, with a Grad-CAM image per row, and the CSV export carries them
  assert.is(await tab.locator('#predictions tbody tr').count(), demoImages.length);
  assert.is(await tab.locator('#predictions tbody img').count(), demoImages.length, 'one Grad-CAM overlay per image');
  const [dl] = await Promise.all([tab.waitForEvent('download'), tab.click('#export-csv')]);
  const csv = readFileSync(await dl.path(), 'utf8').trim().split('\n');
  assert.is(csv.length, demoImages.length + 1);
  const head = csv[0].split(',');
  const row = csv[1].split(',');
  const n0 = node.predictions.find((x) => x.file.endsWith('/' + row[0]))!;
  for (const [c, v] of Object.entries(n0.probabilities)) assert.ok(Math.abs(Number(row[head.indexOf(`p(${c})`)]) - v) <= TOL, `CSV ${row[0]} p(${c})`);
  console.log(`web: classify screenshot ${await screenshot('classify.png')}`);
});

maybe('bad input gives a visible message naming the file, and the page keeps working', async () => {
  const notImage = join(scratch, 'notes.png');
  writeFileSync(notImage, 'this is not an image\n');
  await tab.setInputFiles('#image-files', [notImage]);
  await waitText('classify-msg', /notes\.png/);
  const m1 = await text('#classify-msg');
  assert.match(m1, /notes\.png/);
  assert.ok(await tab.locator('#classify-msg.error').count(), 'shown as an error');

  const garbage = join(scratch, 'garbage.safetensors');
  writeFileSync(garbage, new Uint8Array(64).fill(7));
  await tab.setInputFiles('#model-file', [garbage]);
  await waitText('classify-msg', /garbage\.safetensors/);
  assert.match(await text('#classify-msg'), /cannot use garbage\.safetensors as a model/);

  // another architecture: the demo's weights with metadata claiming mobilenet_v2
  const f = parseSafetensors(readFileSync(demoModel), demoModel);
  const meta = JSON.parse(f.metadata!.roskd);
  const other = join(scratch, 'other-arch.safetensors');
  writeFileSync(other, serializeSafetensors(f.tensors, { ...f.metadata!, roskd: JSON.stringify({ ...meta, arch: 'mobilenet_v2' }) }));
  await tab.setInputFiles('#model-file', [other]);
  await waitText('classify-msg', /other-arch\.safetensors/);
  const m3 = await text('#classify-msg');
  assert.match(m3, /cannot use other-arch\.safetensors/);
  console.log(`web: messages: "${m1}" / "${m3.slice(0, 160)}..."`);

  // still works: the demo model (kept) classifies an image
  await tab.setInputFiles('#image-files', [demoImages[0]]);
  await tab.waitForFunction(() => (globalThis as unknown as { roskdPage: PageState }).roskdPage.predictions.length === 1);
  assert.match(await text('#classify-msg'), /1 image\(s\) classified/);

  // train view: empty folder and a folder with one class
  await tab.click('#tab-train');
  await tab.selectOption('#data-kind', 'folder');
  const empty = join(scratch, 'empty');
  mkdirSync(empty);
  await tab.setInputFiles('#data-folder', empty);
  await tab.click('#train-start');
  await tab.waitForFunction(() => (globalThis as unknown as { roskdPage: PageState }).roskdPage.run.state === 'failed');
  const e1 = await text('#train-msg');
  assert.match(e1, /folder/);
  const one = join(scratch, 'oneclass');
  mkdirSync(join(one, 'pneumonia'), { recursive: true });
  const ds = makeSynthetic({ train: 4, val: 1, test: 1, size: 28, seed: 1 });
  for (let i = 0; i < 4; i++) writeFileSync(join(one, 'pneumonia', `p${i}.png`), encodePng(ds.train.images.subarray(i * 784, (i + 1) * 784), 28, 28, 1));
  await tab.setInputFiles('#data-folder', one);
  await tab.click('#train-start');
  await waitText('train-msg', /one \(/);
  const e2 = await text('#train-msg');
  assert.match(e2, /oneclass: need at least two class folders, found one \(pneumonia\)/);
  assert.ok(await tab.locator('#train-msg.error').count());
  console.log(`web: messages: "${e1}" / "${e2}"`);
});

maybe('a tiny training run in the page completes; its student loads in kd/predict.ts', async () => {
  // a folder of two classes, 24 PNGs each (decoded and split in the page)
  const dir = join(scratch, 'phantoms');
  const ds = makeSynthetic({ train: 96, val: 4, test: 4, size: 28, seed: 3 });
  for (let i = 0; i < ds.train.n; i++) {
    const c = ds.train.labels[i] as number;
    if (c > 1) continue;
    mkdirSync(join(dir, ds.classes[c]), { recursive: true });
    writeFileSync(join(dir, ds.classes[c], `${i}.png`), encodePng(ds.train.images.subarray(i * 784, (i + 1) * 784), 28, 28, 1));
  }
  await tab.setInputFiles('#data-folder', dir);
  for (const [id, v] of [['#size', '28'], ['#teachers', '1'], ['#teacher-epochs', '1'], ['#student-epochs', '2'], ['#batch-size', '8'], ['#noise-rate', '0.2']]) await tab.fill(id, v);
  await tab.uncheck('input[name=method][value=ce]');
  await tab.check('input[name=method][value=roskd]');
  const t0 = performance.now();
  await tab.click('#train-start');
  await tab.waitForFunction(() => ['done', 'failed', 'stopped'].includes((globalThis as unknown as { roskdPage: PageState }).roskdPage.run.state), undefined, { timeout: 8 * 60_000 });
  const s = await state();
  assert.is(s.run.state, 'done', `${s.run.message}\n${await text('#train-log')}`);
  assert.ok(s.run.files.includes('student-roskd.safetensors') && s.run.files.includes('teacher-0.safetensors') && s.run.files.includes('report.md'), s.run.files.join(', '));
  assert.match(await text('#report-table'), /student-roskd/);
  const [dl] = await Promise.all([tab.waitForEvent('download'), tab.getByRole('button', { name: 'Download student-roskd.safetensors' }).click()]);
  const saved = join(scratch, 'page-student.safetensors');
  await dl.saveAs(saved);
  const r = await predictFiles(saved, demoImages.slice(0, 3));
  assert.is(r.meta.arch, 'resnet18');
  assert.equal(r.meta.classes, [ds.classes[0], ds.classes[1]].sort());
  for (const p of r.predictions) assert.ok(Math.abs(Object.values(p.probabilities).reduce((a, b) => a + b, 0) - 1) < 1e-5);
  const wall = (performance.now() - t0) / 1000;
  // the same run in Node (Dawn), for the throughput comparison
  const nr = await runPipeline({ preset: 'demo', data: `folder:${dir}`, size: 28, channels: 1, teachers: 1, teacherEpochs: 1, studentEpochs: 2, batchSize: 8, evalBatchSize: 64, noiseRate: 0.2, methods: ['roskd'], teachersPerBatch: 1, out: join(scratch, 'node-run'), progress: 'none' }, { print: () => {} });
  const models = [...nr.teachers, ...Object.values(nr.students)].filter((x) => x !== null);
  const nImages = models.reduce((a, m) => a + m!.images, 0);
  const nSecs = models.reduce((a, m) => a + m!.secs, 0);
  console.log(
    `report: training throughput, same run (folder of 2 classes, resnet18 teacher w=0.125 + roskd student w=0.0625, batch 8, 28 px): ` +
      `page ${s.run.imagesPerSec.toFixed(1)} images/s (${s.run.images} images, ${s.run.secs.toFixed(1)} s incl. validation; wall ${wall.toFixed(1)} s), ` +
      `node ${(nImages / nSecs).toFixed(1)} images/s (${nImages} images, ${nSecs.toFixed(1)} s)`,
  );
  console.log(`web: train screenshot ${await screenshot('train.png')}`);
});

maybe('a deflate-compressed MedMNIST-style .npz trains in the page (inflated by DecompressionStream)', async () => {
  const ds = makeSynthetic({ train: 64, val: 16, test: 16, size: 28, seed: 5 });
  const arrays: Record<string, { data: Uint8Array; shape: number[] }> = {};
  for (const sp of ['train', 'val', 'test'] as const) {
    // two classes: keep labels 0 and 1 only
    const keep = [...Array(ds[sp].n).keys()].filter((i) => (ds[sp].labels[i] as number) < 2);
    const im = new Uint8Array(keep.length * 784);
    keep.forEach((i, k) => im.set(ds[sp].images.subarray(i * 784, (i + 1) * 784), k * 784));
    arrays[`${sp}_images`] = { data: im, shape: [keep.length, 28, 28] };
    arrays[`${sp}_labels`] = { data: Uint8Array.from(keep, (i) => ds[sp].labels[i] as number), shape: [keep.length, 1] };
  }
  const npz = join(scratch, 'tiny.npz');
  writeFileSync(npz, encodeNpz(arrays, { compress: true, codec: nodeZipCodec }));
  await tab.selectOption('#data-kind', 'npz');
  await tab.setInputFiles('#data-npz', npz);
  await tab.check('input[name=method][value=ce]');
  await tab.uncheck('input[name=method][value=roskd]');
  await tab.fill('#student-epochs', '1');
  await tab.click('#train-start');
  await tab.waitForFunction(() => ['done', 'failed', 'stopped'].includes((globalThis as unknown as { roskdPage: PageState }).roskdPage.run.state), undefined, { timeout: 5 * 60_000 });
  const s = await state();
  assert.is(s.run.state, 'done', s.run.message);
  const n = (sp: string) => arrays[`${sp}_labels`].shape[0];
  const log = await tab.locator('#train-log').textContent() ?? '';
  assert.ok(new RegExp(`data: tiny .*train/val/test ${n('train')}/${n('val')}/${n('test')}`).test(log), log.split('\n')[0]);
  assert.ok(s.run.files.includes('student-ce.safetensors'));
  await tab.uncheck('input[name=method][value=ce]');
  await tab.check('input[name=method][value=roskd]');
});

maybe('Stop keeps the best-so-far student downloadable, and it loads in kd/predict.ts', async () => {
  await tab.selectOption('#data-kind', 'synthetic');
  for (const [id, v] of [['#synthetic-n', '64'], ['#student-epochs', '6'], ['#batch-size', '16']]) await tab.fill(id, v);
  await tab.click('#train-start');
  await tab.waitForFunction(() => /student-roskd epoch 1\/6:/.test((globalThis as unknown as { document: { getElementById(x: string): { textContent: string } } }).document.getElementById('train-log').textContent), undefined, { timeout: 5 * 60_000 });
  await tab.click('#train-stop');
  await tab.waitForFunction(() => ['done', 'failed', 'stopped'].includes((globalThis as unknown as { roskdPage: PageState }).roskdPage.run.state), undefined, { timeout: 5 * 60_000 });
  const s = await state();
  assert.is(s.run.state, 'stopped', s.run.message);
  assert.match(await text('#train-msg'), /stopped: student-roskd: interrupted/);
  assert.ok(s.run.files.includes('checkpoints/student-roskd.best.safetensors'), s.run.files.join(', '));
  const [dl] = await Promise.all([tab.waitForEvent('download'), tab.getByRole('button', { name: 'Download student-roskd (best so far).safetensors' }).click()]);
  assert.is(dl.suggestedFilename(), 'student-roskd-best.safetensors');
  const saved = join(scratch, 'best.safetensors');
  await dl.saveAs(saved);
  const r = await predictFiles(saved, demoImages.slice(0, 2));
  assert.is(r.meta.method, 'roskd');
  assert.is(r.predictions.length, 2);
  // and a new run starts after a stop
  assert.is(await tab.locator('#train-start').isDisabled(), false);
});

maybe('the Adapter tab lists the adapter; without WebGPU the page says what to enable', async () => {
  await tab.click('#tab-adapter');
  const info = await text('#adapter-info');
  assert.match(info, /WebGPU adapter/);
  assert.match(info, /maxStorageBufferBindingSize/);
  console.log(`web: adapter screenshot ${await screenshot('adapter.png', false)}`);
  const plain = await launchChromium(chromiumPath!, { webgpu: false });
  try {
    const t = await plain.newPage();
    await t.goto(tab.url());
    await t.waitForFunction(() => (globalThis as unknown as { roskdPage?: PageState }).roskdPage?.ready, undefined, { timeout: 60_000 });
    const s = await t.evaluate(() => (globalThis as unknown as { roskdPage: PageState }).roskdPage);
    if (s.gpu) console.log(`web: this Chromium gives WebGPU (${s.gpu}) even without --enable-unsafe-webgpu; the no-WebGPU message is not exercised`);
    else {
      assert.ok(await t.locator('#gpu-banner').isVisible(), 'banner shown');
      const banner = await t.locator('#gpu-banner').innerText();
      assert.match(banner, /enable-unsafe-webgpu/);
      assert.ok(await t.locator('#demo-model').isDisabled(), 'classify controls disabled without a GPU');
      console.log(`web: without WebGPU: "${banner.slice(0, 200)}..."`);
    }
  } finally {
    await plain.close();
  }
  await tab.click('#tab-classify');
});

maybe('phone width: no horizontal scrolling of the page', async () => {
  await tab.setViewportSize({ width: 390, height: 844 });
  for (const t of ['#tab-train', '#tab-classify']) {
    await tab.click(t);
    const over = await tab.evaluate(() => {
      const d = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document.documentElement;
      return d.scrollWidth - d.clientWidth;
    });
    assert.ok(over <= 1, `${t}: page is ${over}px wider than a 390px screen`);
  }
  console.log(`web: phone screenshot ${await screenshot('classify-phone.png', false)}`);
  await tab.setViewportSize({ width: 1280, height: 800 });
});

test.run();
