// Data ergonomics (issue 16): --images for the CSV sets (CSV and images in different folders, one
// reached through a symbolic link), the loaders' default image size, --epochs, and MedMNIST files
// found where the `medmnist` Python package keeps them ($MEDMNIST_ROOT, ~/.medmnist).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, resolveOptions, UsageError, type Options } from '../kd/config.ts';
import { loadData } from '../kd/data-source.ts';
import { encodePng } from '../kd/data/image.ts';
import { writeNpz } from '../kd/data/node-files.ts';
import { loadMedMNIST } from '../kd/data/medmnist-files.ts';
import { HAM10000_CLASSES } from '../kd/data/ham10000.ts';
import { parseStudyArgs } from '../kd/study-config.ts';
import type { Dataset, Split } from '../kd/data/dataset.ts';
import { runPipeline } from '../kd/pipeline.ts';
import { parseAttackCli, runAttackCli } from '../kd/attack-run.ts';
import { gpuInit } from './helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'roskd-ergo-'));
const saved = { ...process.env };
process.env.ROSKD_CACHE = join(root, 'cache'); // never the user's cache
test.after(() => {
  process.env = saved;
  rmSync(root, { recursive: true, force: true });
});

async function throwsUsage(p: Promise<unknown> | (() => unknown), re: RegExp): Promise<void> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    assert.ok(e instanceof UsageError, `expected a UsageError, got ${(e as Error).name}: ${(e as Error).message}`);
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`expected an error matching ${re}`);
}

async function rejects(p: Promise<unknown>, ok: (e: Error) => boolean, what: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(ok(e as Error), `${what}: got ${(e as Error).message}`);
    return;
  }
  assert.unreachable(`expected an error: ${what}`);
}

/** A solid image whose red value encodes its index: the loaded pixels prove which file was read. */
const redOf = (i: number) => (i * 11 + 7) % 251;
function solidPng(i: number, w = 10, h = 7): Uint8Array {
  const px = new Uint8Array(w * h * 3);
  for (let p = 0; p < w * h; p++) px.set([redOf(i), 40, 200], p * 3);
  return encodePng(px, w, h, 3);
}

/** Every image of every split is the solid colour of its id's index (first channel, any pixel). */
function checkPixels(ds: Dataset, indexOf: (id: string) => number): number {
  let n = 0;
  for (const s of [ds.train, ds.val, ds.test] as Split[]) {
    const px = ds.channels * ds.height * ds.width;
    s.ids!.forEach((id, k) => {
      const im = s.images.subarray(k * px, (k + 1) * px);
      const want = ds.channels === 3 ? redOf(indexOf(id)) : undefined;
      if (want !== undefined) {
        assert.is(im[0], want, `${id}: red channel`);
        assert.is(im[ds.height * ds.width - 1], want, `${id}: red channel, last pixel`);
      }
      n++;
    });
  }
  return n;
}

const opts = (o: Partial<Options>) => resolveOptions({ progress: 'none', ...o }).opts;

// ---------------------------------------------------------------- --images

test('--images: HAM10000 with the CSV in one folder and the images behind a symbolic link elsewhere', async () => {
  const meta = join(root, 'ham-meta');
  const store = join(root, 'disk2', 'ham-images');
  mkdirSync(meta, { recursive: true });
  mkdirSync(join(store, 'HAM10000_images_part_1'), { recursive: true });
  mkdirSync(join(store, 'HAM10000_images_part_2'), { recursive: true });
  const lines = ['lesion_id,image_id,dx'];
  const n = 42;
  for (let i = 0; i < n; i++) {
    const id = `ISIC_${String(24306 + i).padStart(7, '0')}`;
    lines.push(`HAM_${Math.floor(i / 2)},${id},${HAM10000_CLASSES[i % 3 === 0 ? 5 : i % 3 === 1 ? 4 : 2]}`);
    writeFileSync(join(store, `HAM10000_images_part_${(i % 2) + 1}`, `${id}.png`), solidPng(i));
  }
  const csv = join(meta, 'HAM10000_metadata.csv');
  writeFileSync(csv, lines.join('\n') + '\n');
  const link = join(root, 'ham-link');
  symlinkSync(store, link);
  // without --images the CSV's folder holds no image: the first missing one is named
  await rejects(loadData(opts({ data: `ham10000:${csv}` })), (e) => /bad image ISIC_0024306: not found/.test(e.message), 'the first missing image named');
  const { ds, load } = await loadData(opts({ data: `ham10000:${csv}`, images: link }));
  assert.is(ds.train.n + ds.val.n + ds.test.n, n);
  assert.is(ds.height, 64, 'the ham10000 default size');
  assert.is(checkPixels(ds, (id) => Number(id.slice(5)) - 24306), n);
  assert.is(load.images, n);
});

test('--images: a run trained with it records it; kd/attack.ts finds the images from the run config', async () => {
  await gpuInit();
  const csv = join(root, 'ham-meta', 'HAM10000_metadata.csv');
  const out = join(root, 'ham-run');
  const r = await runPipeline(
    { data: `ham10000:${csv}`, images: join(root, 'ham-link'), size: 16, teachers: 1, teacherArchs: ['resnet18'], teacherWidth: 0.0625, studentWidth: 0.0625, epochs: 1, methods: ['ce'], batchSize: 8, progress: 'none', out },
    { print: () => {} },
  );
  assert.ok(r.run.exists('student-ce.safetensors'));
  const a = await runAttackCli(parseAttackCli(['--model', join(out, 'student-ce.safetensors'), '--attack', 'fgsm', '--eps', '2/255', '--limit', '3']));
  assert.is(a.data, `ham10000:${csv}`);
  assert.is(a.report.n, 3);
  assert.is(a.report.attacks.length, 1);
});

test('--images: ISIC 2019 ground truth in one folder, images in another (a linked sub-folder inside)', async () => {
  const meta = join(root, 'isic-meta');
  const imgs = join(root, 'isic-images');
  const elsewhere = join(root, 'isic-elsewhere');
  mkdirSync(meta, { recursive: true });
  mkdirSync(imgs, { recursive: true });
  mkdirSync(elsewhere, { recursive: true });
  symlinkSync(elsewhere, join(imgs, 'batch-2')); // a symlinked sub-folder is followed too
  const classes = ['MEL', 'NV', 'BCC'];
  const lines = [`image,${classes.join(',')}`];
  const n = 30;
  for (let i = 0; i < n; i++) {
    const id = `ISIC_${String(i).padStart(7, '0')}`;
    lines.push(`${id},${classes.map((_, c) => (c === i % 3 ? '1.0' : '0.0')).join(',')}`);
    writeFileSync(join(i < 15 ? imgs : elsewhere, `${id}.png`), solidPng(i));
  }
  const csv = join(meta, 'ISIC_2019_Training_GroundTruth.csv');
  writeFileSync(csv, lines.join('\n') + '\n');
  const parsed = parseArgs(['--data', `isic2019:${csv}`, '--images', imgs, '--progress', 'none']);
  assert.is(parsed.opts.size, 64);
  const { ds } = await loadData(parsed.opts);
  assert.equal(ds.classes, classes);
  assert.is(checkPixels(ds, (id) => Number(id.slice(5))), n);
});

test('--images: ChestX-ray14 (csv path) with the images folder reached through a link', async () => {
  const meta = join(root, 'cxr-meta');
  const imgs = join(root, 'cxr-store', 'images');
  mkdirSync(meta, { recursive: true });
  mkdirSync(imgs, { recursive: true });
  const lines = ['Image Index,Finding Labels,Follow-up #,Patient ID'];
  const n = 40;
  for (let i = 0; i < n; i++) {
    const id = `${String(i).padStart(8, '0')}_000.png`;
    lines.push(`${id},${i % 2 ? 'Effusion|Mass' : 'No Finding'},0,${i}`);
    const px = new Uint8Array(16 * 12).fill(redOf(i));
    writeFileSync(join(imgs, id), encodePng(px, 16, 12, 1));
  }
  const csv = join(meta, 'Data_Entry_2017.csv');
  writeFileSync(csv, lines.join('\n') + '\n');
  const link = join(root, 'cxr-link');
  symlinkSync(join(root, 'cxr-store'), link);
  const o = opts({ data: `chestxray14:${csv}`, images: link });
  assert.is(o.size, 28, 'chestxray14 keeps the preset size');
  const { ds } = await loadData(o);
  assert.is(ds.train.n + ds.val.n + ds.test.n, n);
  const px = ds.height * ds.width;
  for (const s of [ds.train, ds.val, ds.test]) s.ids!.forEach((id, k) => assert.is(s.images[k * px + 5], redOf(Number(id.slice(0, 8))), id));
});

test('--images: a missing folder, a file, or a set without images are usage errors naming it', async () => {
  const csv = join(root, 'ham-meta', 'HAM10000_metadata.csv');
  await throwsUsage(loadData(opts({ data: `ham10000:${csv}`, images: join(root, 'no-such-dir') })), /--images .*no-such-dir: no such folder/);
  await throwsUsage(loadData(opts({ data: `ham10000:${csv}`, images: csv })), /--images .*HAM10000_metadata\.csv: not a folder/);
  const broken = join(root, 'broken-link');
  symlinkSync(join(root, 'gone'), broken);
  await throwsUsage(loadData(opts({ data: `ham10000:${csv}`, images: broken })), /broken-link: no such folder \(or a broken link\)/);
  await throwsUsage(() => parseArgs(['--images', root]), /--images names the image folder of a CSV set .*--data synthetic has none/);
  await throwsUsage(() => parseArgs(['--data', `folder:${root}`, '--images', root]), /--data folder:/);
});

// ---------------------------------------------------------------- default size

test('size: 64 px for ham10000/isic2019 unless --size, the preset otherwise; the choice is described', () => {
  const ham = parseArgs(['--data', 'ham10000:/x/HAM10000_metadata.csv']);
  assert.is(ham.opts.size, 64);
  assert.match(ham.sizeNote!, /^64 px \(the ham10000: default; --size changes it\)$/);
  assert.is(parseArgs(['--data', 'isic2019:/x/gt.csv']).opts.size, 64);
  const given = parseArgs(['--data', 'ham10000:/x/m.csv', '--size', '28']);
  assert.is(given.opts.size, 28);
  assert.is(given.sizeNote, '28 px (--size)');
  assert.is(parseArgs(['--data', 'ham10000:/x/m.csv', '--size', '96']).opts.size, 96);
  const demo = parseArgs([]);
  assert.is(demo.opts.size, 28);
  assert.match(demo.sizeNote!, /the demo preset's default/);
  assert.is(parseArgs(['--data', 'folder:/x']).opts.size, 28);
  assert.is(parseArgs(['--data', 'pneumoniamnist']).opts.size, 28);
  assert.is(parseArgs(['--preset', 'paper', '--data', 'chestxray14:/x']).opts.size, 64);
  // the study: its presets' 28 px must not override the loader's default, nor an explicit --size
  assert.is(parseStudyArgs(['--data', 'ham10000:/x/m.csv']).train.size, 64);
  assert.is(parseStudyArgs(['--data', 'ham10000:/x/m.csv', '--size', '40']).train.size, 40);
});

// ---------------------------------------------------------------- --epochs

test('--epochs sets teacher and student epochs; a disagreeing stage option is an error', async () => {
  const p = parseArgs(['--epochs', '7']);
  assert.is(p.opts.teacherEpochs, 7);
  assert.is(p.opts.studentEpochs, 7);
  const paper = parseArgs(['--preset', 'paper', '--epochs', '2']).opts;
  assert.equal([paper.teacherEpochs, paper.studentEpochs], [2, 2]);
  const same = parseArgs(['--epochs', '4', '--teacher-epochs', '4']).opts;
  assert.equal([same.teacherEpochs, same.studentEpochs], [4, 4]);
  await throwsUsage(() => parseArgs(['--epochs', '7', '--student-epochs', '2']), /--epochs 7 sets both stages' epochs, but --student-epochs 2 disagrees/);
  await throwsUsage(() => parseArgs(['--teacher-epochs', '1', '--epochs', '3']), /--teacher-epochs 1 disagrees/);
  // without --epochs the stage options stay independent
  const apart = parseArgs(['--teacher-epochs', '2', '--student-epochs', '9']).opts;
  assert.equal([apart.teacherEpochs, apart.studentEpochs], [2, 9]);
  const study = parseStudyArgs(['--epochs', '5']).train;
  assert.equal([study.teacherEpochs, study.studentEpochs], [5, 5]);
});

// ---------------------------------------------------------------- MedMNIST in ~/.medmnist

function toyNpz(path: string, n: [number, number, number], h: number): void {
  const arrays: Record<string, { data: Uint8Array; shape: number[] }> = {};
  (['train', 'val', 'test'] as const).forEach((sp, k) => {
    arrays[`${sp}_images`] = { data: Uint8Array.from({ length: n[k] * h * h }, (_, i) => (i * 7 + k) % 256), shape: [n[k], h, h] };
    arrays[`${sp}_labels`] = { data: Uint8Array.from({ length: n[k] }, (_, i) => i % 2), shape: [n[k], 1] };
  });
  writeNpz(path, arrays);
}

test('medmnist: found in ~/.medmnist (and $MEDMNIST_ROOT first) before any download, and said where', async () => {
  const home = join(root, 'home');
  mkdirSync(join(home, '.medmnist'), { recursive: true });
  toyNpz(join(home, '.medmnist', 'pneumoniamnist.npz'), [10, 4, 6], 28);
  toyNpz(join(home, '.medmnist', 'pneumoniamnist_64.npz'), [12, 4, 4], 64);
  process.env.HOME = home;
  process.env.ROSKD_OFFLINE = '1'; // a lookup miss would be an error, never a download
  process.env.ROSKD_CACHE = join(root, 'empty-cache');
  delete process.env.ROSKD_DATA_DIR;
  delete process.env.MEDMNIST_ROOT;
  const said: string[] = [];
  const ds = await loadMedMNIST('pneumoniamnist', { log: (s) => said.push(s) });
  assert.is(ds.train.n, 10);
  assert.ok(said.some((s) => s.includes(`found ${join(home, '.medmnist', 'pneumoniamnist.npz')} (~/.medmnist`)), said.join('\n'));
  const big = await loadMedMNIST('pneumoniamnist', { size: 64 });
  assert.equal([big.train.n, big.height], [12, 64]);
  // $MEDMNIST_ROOT (the package's override) comes before ~/.medmnist
  const mroot = join(root, 'mroot');
  mkdirSync(mroot);
  toyNpz(join(mroot, 'pneumoniamnist.npz'), [14, 4, 4], 28);
  process.env.MEDMNIST_ROOT = mroot;
  said.length = 0;
  assert.is((await loadMedMNIST('pneumoniamnist', { log: (s) => said.push(s) })).train.n, 14);
  assert.ok(said.some((s) => s.includes('($MEDMNIST_ROOT)')), said.join('\n'));
  // and the miss names every folder it looked in
  await rejects(loadMedMNIST('breastmnist'), (e) => e.message.includes(join(home, '.medmnist', 'breastmnist.npz')) && e.message.includes(join(mroot, 'breastmnist.npz')), 'the folders looked in');
  process.env.HOME = saved.HOME;
});

test.run();
