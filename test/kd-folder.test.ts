// Folder/CSV dataset loaders (ChestX-ray14, ISIC 2019, HAM10000, class folders),
// grouped stratified splits, the decoded-image cache, bad-image handling and
// worker-thread decoding. Fixtures are tiny images generated into a temp dir.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readdirSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadedDataset } from '../kd/data/image-set.ts';
import { loadChestXray14, CHESTXRAY14_FINDINGS } from '../kd/data/chestxray14.ts';
import { loadIsic2019 } from '../kd/data/isic2019.ts';
import { loadHam10000, HAM10000_CLASSES } from '../kd/data/ham10000.ts';
import { loadImageFolder } from '../kd/data/image-folder.ts';
import { groupedStratifiedSplit, multilabelStrata } from '../kd/data/split.ts';
import { encodePng, encodeJpeg } from '../kd/data/image.ts';
import { classCounts, validateDataset, type Dataset } from '../kd/data/dataset.ts';
import { Rng } from '../engine/rng.ts';

const root = mkdtempSync(join(tmpdir(), 'roskd-folder-'));
const cacheDir = join(root, 'cache');

async function rejectsMatching(p: Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`expected a rejection matching ${re}`);
}

/** A small gray gradient image whose brightness encodes k, as PNG (8 or 16 bit) or JPEG. */
function grayImage(k: number, fmt: 'png' | 'png16' | 'jpg', w = 20, h = 16): Uint8Array {
  if (fmt === 'jpg') k %= 8;
  const px = Uint8Array.from({ length: w * h }, (_, i) => (k * 37 + (i % w) * 5) % 256);
  if (fmt === 'png16') return encodePng(Uint16Array.from(px, (v) => v * 257), w, h, 1, 16);
  if (fmt === 'jpg') {
    const key = `g${k}/${w}/${h}`;
    if (!jpegCache.has(key)) jpegCache.set(key, encodeJpeg(px, w, h, 1, 90));
    return jpegCache.get(key)!;
  }
  return encodePng(px, w, h, 1);
}

// jpeg-js rebuilds large tables on every encode (slow, GC heavy), so only a few distinct JPEGs are made.
const jpegCache = new Map<string, Uint8Array>();
function rgbJpeg(k: number, w = 24, h = 18): Uint8Array {
  k %= 8;
  const key = `${k}/${w}/${h}`;
  let b = jpegCache.get(key);
  if (!b) {
    const px = new Uint8Array(w * h * 3);
    for (let p = 0; p < w * h; p++) px.set([(k * 53) % 256, (k * 91 + p) % 256, 128], p * 3);
    jpegCache.set(key, (b = encodeJpeg(px, w, h, 3, 90)));
  }
  return b;
}

function allSplitsGroups(ds: Dataset): Map<string, string> {
  const where = new Map<string, string>();
  for (const s of ['train', 'val', 'test'] as const)
    for (const g of ds[s].groups ?? []) {
      const prev = where.get(g);
      if (prev && prev !== s) assert.unreachable(`group ${g} in both ${prev} and ${s}`);
      where.set(g, s);
    }
  return where;
}

// ---------------------------------------------------------------- splits

test('groupedStratifiedSplit: no group in two parts, fractions and class mix preserved, deterministic', () => {
  const rng = Rng.keyed('t', 1);
  const n = 3000;
  const strata = new Int32Array(n);
  const groups: string[] = [];
  for (let i = 0; i < n; i++) {
    strata[i] = rng.next() < 0.15 ? 2 : rng.next() < 0.4 ? 1 : 0;
    groups.push(`p${Math.floor(i / 3) + (rng.next() < 0.3 ? 1 : 0)}`); // groups of ~3 adjacent samples
  }
  const parts = groupedStratifiedSplit(strata, groups, [0.7, 0.1, 0.2], 5);
  assert.is(parts.reduce((a, p) => a + p.length, 0), n);
  const owner = new Map<string, number>();
  parts.forEach((p, k) =>
    p.forEach((i) => {
      const o = owner.get(groups[i]);
      assert.ok(o === undefined || o === k, `group ${groups[i]} split across parts`);
      owner.set(groups[i], k);
    }),
  );
  const total = [0, 0, 0];
  for (let i = 0; i < n; i++) total[strata[i]]++;
  [0.7, 0.1, 0.2].forEach((f, k) => {
    assert.ok(Math.abs(parts[k].length / n - f) < 0.02, `part ${k} has ${parts[k].length}`);
    for (let c = 0; c < 3; c++) {
      const inPart = Array.from(parts[k]).filter((i) => strata[i] === c).length;
      assert.ok(Math.abs(inPart / parts[k].length - total[c] / n) < 0.03, `class ${c} share in part ${k}`);
    }
  });
  assert.equal(groupedStratifiedSplit(strata, groups, [0.7, 0.1, 0.2], 5), parts);
  assert.not.equal(groupedStratifiedSplit(strata, groups, [0.7, 0.1, 0.2], 6), parts);
  // Tiny strata still land somewhere sensible; zero fractions stay empty.
  const [a, b] = groupedStratifiedSplit([0, 0, 1], undefined, [1, 0], 0);
  assert.equal([a.length, b.length], [3, 0]);
});

test('multilabelStrata: rarest positive label, L for none', () => {
  // labels for 4 samples, L = 3; label 2 is rarest.
  const lab = Uint8Array.from([1, 0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 0]);
  assert.equal(Array.from(multilabelStrata(lab, 4, 3)), [0, 1, 2, 3]);
});

// ---------------------------------------------------------------- ChestX-ray14

function makeChestXray14(dir: string): { ids: string[]; testIds: string[] } {
  mkdirSync(join(dir, 'images'), { recursive: true });
  mkdirSync(join(dir, 'images_002', 'images'), { recursive: true });
  const findings = ['No Finding', 'Cardiomegaly', 'Effusion|Infiltration', 'Cardiomegaly|Effusion', 'Pleural_Thickening', 'Hernia', 'No Finding', 'Mass|Nodule|Pneumothorax'];
  const lines = ['Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],'];
  const ids: string[] = [];
  let k = 0;
  for (let patient = 1; patient <= 14; patient++) {
    const nImg = 1 + (patient % 3);
    for (let f = 0; f < nImg; f++, k++) {
      const id = `${String(patient).padStart(8, '0')}_${String(f).padStart(3, '0')}.png`;
      ids.push(id);
      lines.push(`${id},${findings[k % findings.length]},${f},${patient},50,M,PA,2500,2048,0.14,0.14,`);
      const sub = patient > 10 ? join(dir, 'images_002', 'images') : join(dir, 'images');
      writeFileSync(join(sub, id), grayImage(k, k % 5 === 0 ? 'png16' : 'png'));
    }
  }
  writeFileSync(join(dir, 'Data_Entry_2017.csv'), lines.join('\r\n') + '\r\n');
  // Official lists split by patient: patients 12-14 are test.
  const testIds = ids.filter((id) => Number(id.slice(0, 8)) >= 12);
  writeFileSync(join(dir, 'train_val_list.txt'), ids.filter((id) => !testIds.includes(id)).join('\n') + '\n');
  writeFileSync(join(dir, 'test_list.txt'), testIds.join('\n') + '\n');
  return { ids, testIds };
}

test('ChestX-ray14: multilabel findings, official test list, patient-grouped val, cache hit on second load', async () => {
  const dir = join(root, 'cxr14');
  const { ids, testIds } = makeChestXray14(dir);
  const ds = await loadChestXray14({ root: dir, size: 8, cacheDir, valFraction: 0.25 });
  validateDataset(ds);
  assert.is(ds.task, 'multilabel');
  assert.equal(ds.classes, CHESTXRAY14_FINDINGS);
  assert.equal([ds.channels, ds.height, ds.width], [1, 8, 8]);
  assert.equal([...ds.test.ids!].sort(), [...testIds].sort());
  assert.is(ds.train.n + ds.val.n + ds.test.n, ids.length);
  assert.ok(ds.val.n > 0 && ds.train.n > ds.val.n);
  allSplitsGroups(ds);
  // Row 3 (patient 2, image 1) is 'Cardiomegaly|Effusion'.
  const all = ['train', 'val', 'test'] as const;
  const find = (id: string) => {
    for (const s of all) {
      const i = ds[s].ids!.indexOf(id);
      if (i >= 0) return Array.from(ds[s].labels.subarray(i * 14, (i + 1) * 14));
    }
    return null;
  };
  const lab = find('00000002_001.png')!;
  assert.equal(lab.flatMap((v, c) => (v ? [CHESTXRAY14_FINDINGS[c]] : [])), ['Cardiomegaly', 'Effusion']);
  assert.equal(find('00000001_000.png'), new Array(14).fill(0)); // No Finding
  assert.is(ds.load.fromCache, false);
  assert.ok(ds.load.decodeMs > 0 && ds.load.loadMs >= ds.load.decodeMs);
  assert.is(ds.load.images, ids.length);

  // Second load: from cache, identical data, even with other split options.
  const again = await loadChestXray14({ root: dir, size: 8, cacheDir, valFraction: 0.25 });
  assert.is(again.load.fromCache, true);
  assert.is(again.load.decodeMs, 0);
  for (const s of all) {
    assert.ok(Buffer.from(again[s].images).equals(Buffer.from(ds[s].images)), `${s} images differ`);
    assert.equal(again[s].ids, ds[s].ids);
  }
  const reseeded = await loadChestXray14({ root: dir, size: 8, cacheDir, valFraction: 0.4, seed: 3 });
  assert.is(reseeded.load.fromCache, true);
  // Other decode options miss the cache.
  const bigger = await loadChestXray14({ root: dir, size: 12, cacheDir });
  assert.is(bigger.load.fromCache, false);
  assert.is(bigger.height, 12);
  // Without lists: seeded grouped split over everything.
  const noLists = await loadChestXray14({ root: dir, size: 8, cacheDir, trainValList: false, testList: false, fractions: [0.6, 0.2, 0.2] });
  assert.is(noLists.train.n + noLists.val.n + noLists.test.n, ids.length);
  allSplitsGroups(noLists);
});

test('ChestX-ray14: bad inputs name the file, row, column or image', async () => {
  const dir = join(root, 'cxr14-bad');
  makeChestXray14(dir);
  unlinkSync(join(dir, 'images', '00000003_000.png'));
  writeFileSync(join(dir, 'images', '00000004_000.png'), Buffer.from('\x89PNG\r\n\x1a\n garbage', 'latin1'));
  await rejectsMatching(loadChestXray14({ root: dir, size: 8, cacheDir: false }), /bad image .*(00000003_000\.png|00000004_000\.png)/);
  const ds = await loadChestXray14({ root: dir, size: 8, cacheDir, onBadImage: 'skip' });
  assert.equal(ds.load.skipped.map((b) => b.id).sort(), ['00000003_000.png', '00000004_000.png']);
  assert.match(ds.load.skipped.find((b) => b.id === '00000004_000.png')!.reason, /cannot decode PNG/);
  assert.match(ds.load.skipped.find((b) => b.id === '00000003_000.png')!.reason, /not found/);
  assert.ok(ds.load.skipped.find((b) => b.id === '00000004_000.png')!.file.endsWith('00000004_000.png'));
  // The skip list survives the cache.
  const again = await loadChestXray14({ root: dir, size: 8, cacheDir, onBadImage: 'skip' });
  assert.is(again.load.fromCache, true);
  assert.is(again.load.skipped.length, 2);
  assert.is(again.train.n + again.val.n + again.test.n, ds.train.n + ds.val.n + ds.test.n);

  const csvDir = join(root, 'cxr14-csv');
  mkdirSync(csvDir, { recursive: true });
  writeFileSync(join(csvDir, 'Data_Entry_2017.csv'), 'Image Index,Finding Labels,Patient ID\na.png,Cardiomegaly|Pneumonitis,1\n');
  await rejectsMatching(loadChestXray14({ root: csvDir, size: 8, cacheDir: false }), /Data_Entry_2017\.csv:2: unknown finding "Pneumonitis" in column "Finding Labels"/);
  writeFileSync(join(csvDir, 'Data_Entry_2017.csv'), 'Image Index,Labels,Patient ID\na.png,Cardiomegaly,1\n');
  await rejectsMatching(loadChestXray14({ root: csvDir, size: 8, cacheDir: false }), /Data_Entry_2017\.csv: missing column "Finding Labels"/);
  await rejectsMatching(loadChestXray14({ root: join(root, 'nowhere'), size: 8 }), /cannot read CSV .*nowhere.*Data_Entry_2017\.csv/);
});

// ---------------------------------------------------------------- ISIC 2019

test('ISIC 2019: one-hot columns, lesion grouping from metadata, RGB JPEGs, bad image skip/fail', async () => {
  const dir = join(root, 'isic');
  const imgDir = join(dir, 'ISIC_2019_Training_Input');
  mkdirSync(imgDir, { recursive: true });
  const classes = ['MEL', 'NV', 'BCC', 'AK', 'BKL', 'DF', 'VASC', 'SCC', 'UNK'];
  const gt = ['image,' + classes.join(',')];
  const meta = ['image,age_approx,anatom_site_general,lesion_id,sex'];
  const n = 48;
  for (let i = 0; i < n; i++) {
    const id = `ISIC_${String(i).padStart(7, '0')}`;
    const c = i % 8; // UNK never used, like the real training set
    gt.push(`${id},${classes.map((_, k) => (k === c ? '1.0' : '0.0')).join(',')}`);
    meta.push(`${id},45,anterior torso,${i % 4 === 3 ? '' : `BCN_${Math.floor(i / 2)}`},female`);
    writeFileSync(join(imgDir, `${id}.jpg`), rgbJpeg(i));
  }
  writeFileSync(join(dir, 'ISIC_2019_Training_GroundTruth.csv'), gt.join('\n') + '\n');
  writeFileSync(join(dir, 'ISIC_2019_Training_Metadata.csv'), meta.join('\n') + '\n');
  const ds = await loadIsic2019({ csv: join(dir, 'ISIC_2019_Training_GroundTruth.csv'), size: 8, cacheDir });
  validateDataset(ds);
  assert.is(ds.task, 'multiclass');
  assert.equal(ds.classes, classes);
  assert.equal([ds.channels, ds.height], [3, 8]);
  assert.is(ds.train.n + ds.val.n + ds.test.n, n);
  const where = allSplitsGroups(ds);
  assert.ok(where.has('lesion:BCN_0') && where.has('image:ISIC_0000003'));
  const counts = classCounts(ds.train, 9).map((v, c) => v + classCounts(ds.val, 9)[c] + classCounts(ds.test, 9)[c]);
  assert.equal(counts, [6, 6, 6, 6, 6, 6, 6, 6, 0]);
  // RGB survived: the red channel of image k is (k*53)%256 everywhere.
  const i0 = ds.train.ids!.indexOf('ISIC_0000001');
  if (i0 >= 0) assert.ok(Math.abs(ds.train.images[i0 * 192] - 53) <= 4, `red ${ds.train.images[i0 * 192]}`);

  writeFileSync(join(imgDir, 'ISIC_0000005.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]));
  await rejectsMatching(
    loadIsic2019({ csv: join(dir, 'ISIC_2019_Training_GroundTruth.csv'), size: 8, cacheDir: false }),
    /ISIC_2019_Training_GroundTruth\.csv: bad image .*ISIC_0000005\.jpg: cannot decode JPEG/,
  );
  const skipped = await loadIsic2019({ csv: join(dir, 'ISIC_2019_Training_GroundTruth.csv'), size: 8, cacheDir: false, onBadImage: 'skip' });
  assert.is(skipped.load.skipped.length, 1);
  assert.is(skipped.load.skipped[0].id, 'ISIC_0000005');
  assert.is(skipped.load.images, n - 1);

  const bad = join(dir, 'bad.csv');
  writeFileSync(bad, 'image,MEL,NV\nx,1.0,1.0\n');
  await rejectsMatching(loadIsic2019({ csv: bad, size: 8, cacheDir: false, metadataCsv: false }), /bad\.csv:2: image x is marked as both MEL and NV/);
  writeFileSync(bad, 'image,MEL,NV\nx,0,0\n');
  await rejectsMatching(loadIsic2019({ csv: bad, size: 8, cacheDir: false, metadataCsv: false }), /bad\.csv:2: image x has no class set/);
  writeFileSync(bad, 'image,MEL,NV\nx,yes,0\n');
  await rejectsMatching(loadIsic2019({ csv: bad, size: 8, cacheDir: false, metadataCsv: false }), /bad\.csv:2: column "MEL" has non-numeric value "yes"/);
  writeFileSync(bad, 'img,MEL,NV\nx,1,0\n');
  await rejectsMatching(loadIsic2019({ csv: bad, size: 8, cacheDir: false }), /bad\.csv: missing column "image"/);
});

// ---------------------------------------------------------------- HAM10000

function makeHam(dir: string, n: number): void {
  mkdirSync(join(dir, 'HAM10000_images_part_1'), { recursive: true });
  mkdirSync(join(dir, 'HAM10000_images_part_2'), { recursive: true });
  const lines = ['lesion_id,image_id,dx,dx_type,age,sex,localization'];
  const weights = [0.05, 0.07, 0.11, 0.02, 0.11, 0.62, 0.02]; // roughly HAM10000's class mix
  const rng = Rng.keyed('ham', 1);
  for (let i = 0; i < n; i++) {
    let u = rng.next();
    let c = 0;
    while (c < 6 && u >= weights[c]) u -= weights[c++];
    const lesion = Math.floor(i / 2);
    const id = `ISIC_${String(24306 + i).padStart(7, '0')}`;
    lines.push(`HAM_${String(lesion).padStart(7, '0')},${id},${HAM10000_CLASSES[c]},histo,50.0,male,back`);
    writeFileSync(join(dir, i % 2 ? 'HAM10000_images_part_2' : 'HAM10000_images_part_1', `${id}.jpg`), rgbJpeg(i, 12, 9));
  }
  writeFileSync(join(dir, 'HAM10000_metadata.csv'), lines.join('\n') + '\n');
}

test('HAM10000: dx classes, images across part folders, lesion-grouped stratified split, limit', async () => {
  const dir = join(root, 'ham');
  makeHam(dir, 240);
  const ds = await loadHam10000({ csv: join(dir, 'HAM10000_metadata.csv'), size: 6, cacheDir, seed: 2 });
  validateDataset(ds);
  assert.equal(ds.classes, HAM10000_CLASSES);
  assert.is(ds.train.n + ds.val.n + ds.test.n, 240);
  allSplitsGroups(ds);
  // Roughly 70/10/20, and nv (the majority class) keeps its share in every split.
  assert.ok(Math.abs(ds.train.n / 240 - 0.7) < 0.05 && Math.abs(ds.test.n / 240 - 0.2) < 0.05);
  const nvShare = (s: 'train' | 'val' | 'test') => classCounts(ds[s], 7)[5] / ds[s].n;
  const overall = (classCounts(ds.train, 7)[5] + classCounts(ds.val, 7)[5] + classCounts(ds.test, 7)[5]) / 240;
  for (const s of ['train', 'val', 'test'] as const) assert.ok(Math.abs(nvShare(s) - overall) < 0.12, `nv share in ${s}: ${nvShare(s)} vs ${overall}`);
  const lim = await loadHam10000({ csv: join(dir, 'HAM10000_metadata.csv'), size: 6, cacheDir: false, limit: 30 });
  assert.is(lim.train.n + lim.val.n + lim.test.n, 30);
  const bad = join(dir, 'bad.csv');
  writeFileSync(bad, 'lesion_id,image_id,dx\nL1,ISIC_0024306,melanoma\n');
  await rejectsMatching(loadHam10000({ csv: bad, size: 6, cacheDir: false }), /bad\.csv:2: unknown dx "melanoma" in column "dx"/);
});

test('decoding on worker threads gives the same pixels as in-thread decoding', async () => {
  const dir = join(root, 'ham-workers');
  makeHam(dir, 40);
  const a = await loadHam10000({ csv: join(dir, 'HAM10000_metadata.csv'), size: 6, cacheDir: false, workers: 0 });
  const b = await loadHam10000({ csv: join(dir, 'HAM10000_metadata.csv'), size: 6, cacheDir: false, workers: 2 });
  for (const s of ['train', 'val', 'test'] as const) {
    assert.ok(Buffer.from(a[s].images).equals(Buffer.from(b[s].images)), `${s} differs`);
    assert.equal(Array.from(a[s].labels), Array.from(b[s].labels));
  }
  // A bad image is still reported by name from a worker.
  writeFileSync(join(dir, 'HAM10000_images_part_1', 'ISIC_0024306.jpg'), Buffer.from('nope'));
  await rejectsMatching(loadHam10000({ csv: join(dir, 'HAM10000_metadata.csv'), size: 6, cacheDir: false, workers: 1 }), /bad image .*ISIC_0024306\.jpg: unsupported image format/);
  const c = await loadHam10000({ csv: join(dir, 'HAM10000_metadata.csv'), size: 6, cacheDir: false, workers: 1, onBadImage: 'skip' });
  assert.equal(c.load.skipped.map((x) => [x.id, x.reason]), [['ISIC_0024306', 'unsupported image format (only PNG and JPEG are read; convert DICOM/BMP/TIFF first)']]);
});

// ---------------------------------------------------------------- class folders

test('image folder: official train/test dirs, val carved from train, class names from folders', async () => {
  const dir = join(root, 'chest_xray');
  let k = 0;
  for (const split of ['train', 'test'])
    for (const cls of ['NORMAL', 'PNEUMONIA']) {
      mkdirSync(join(dir, split, cls), { recursive: true });
      const n = split === 'train' ? 10 : 4;
      for (let i = 0; i < n; i++) writeFileSync(join(dir, split, cls, `person${k++}.jpeg`), grayImage(k, 'jpg'));
    }
  writeFileSync(join(dir, 'train', 'NORMAL', 'notes.txt'), 'ignored');
  const ds: LoadedDataset = await loadImageFolder({ root: dir, size: 8, cacheDir, valFraction: 0.2 });
  assert.is(ds.task, 'binary');
  assert.equal(ds.classes, ['NORMAL', 'PNEUMONIA']);
  assert.equal([ds.train.n + ds.val.n, ds.test.n], [20, 8]);
  assert.is(ds.val.n, 4);
  assert.equal(classCounts(ds.test, 2), [4, 4]);
  assert.ok(ds.test.ids!.every((id) => id.startsWith('test/')));
  // Adding a file invalidates the cache.
  writeFileSync(join(dir, 'test', 'NORMAL', 'extra.jpeg'), grayImage(99, 'jpg'));
  const again = await loadImageFolder({ root: dir, size: 8, cacheDir, valFraction: 0.2 });
  assert.is(again.load.fromCache, false);
  assert.is(again.test.n, 9);
  const third = await loadImageFolder({ root: dir, size: 8, cacheDir, valFraction: 0.2 });
  assert.is(third.load.fromCache, true);
  // Flat class folders: seeded split.
  const flat = join(root, 'flat');
  for (const cls of ['a', 'b', 'c']) {
    mkdirSync(join(flat, cls), { recursive: true });
    for (let i = 0; i < 10; i++) writeFileSync(join(flat, cls, `${i}.png`), grayImage(i, 'png'));
  }
  const f = await loadImageFolder({ root: flat, size: 4, cacheDir: false });
  assert.is(f.task, 'multiclass');
  assert.equal([f.train.n, f.val.n, f.test.n], [21, 3, 6]);
  mkdirSync(join(root, 'one', 'only'), { recursive: true });
  await rejectsMatching(loadImageFolder({ root: join(root, 'one'), cacheDir: false }), /need at least two class folders, found only/);
  assert.ok(readdirSync(join(cacheDir, 'decoded')).every((f) => f.endsWith('.npz')), 'no temp files left in the cache');
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
