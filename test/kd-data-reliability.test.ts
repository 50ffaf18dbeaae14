// Hostile and changing data (issue 13): deflate bombs in npz members, images that declare
// gigabytes of pixels, stray labels, a stale decoded-image cache, symlinked class folders and bad
// JSON. Every bomb is generated here; memory is checked through the peak RSS (maxRSS).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { writeZip } from '../kd/data/zip.ts';
import { readJsonFile, readNpzFile, writeNpz, indexImages } from '../kd/data/node-files.ts';
import { loadMedMNISTFile } from '../kd/data/medmnist-files.ts';
import { decodeImage, encodeJpeg, encodePng, imageDimensions } from '../kd/data/image.ts';
import { loadImageFolder } from '../kd/data/image-folder.ts';
import type { NpyData } from '../kd/data/npy.ts';
import { readModelMeta } from '../kd/model-file.ts';
import { Rng } from '../engine/rng.ts';

const root = mkdtempSync(join(tmpdir(), 'roskd-datarel-'));
const MB = 1024 * 1024;

function throwsMatching(fn: () => unknown, re: RegExp): Error {
  try {
    fn();
  } catch (e) {
    assert.match((e as Error).message, re);
    return e as Error;
  }
  assert.unreachable(`expected an error matching ${re}`);
  throw new Error('unreachable');
}

async function rejectsMatching(p: Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`expected a rejection matching ${re}`);
}

/** Runs fn, returning how far the process's peak RSS rose (MiB) and the wall time (ms). */
function measure(fn: () => void): { peakMb: number; ms: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const before = process.resourceUsage().maxRSS; // KiB
  const t0 = performance.now();
  fn();
  return { peakMb: (process.resourceUsage().maxRSS - before) / 1024, ms: performance.now() - t0 };
}

// ---------------------------------------------------------------- npz deflate bombs

/** A raw deflate stream of `mib` MiB of zeros in about mib KiB: a 1 MiB block, full-flushed (self-contained), repeated. */
function deflateBomb(mib: number): Buffer {
  const block = zlib.deflateRawSync(Buffer.alloc(MB), { level: 9, finishFlush: zlib.constants.Z_FULL_FLUSH });
  return Buffer.concat([...new Array<Buffer>(mib).fill(block), zlib.deflateRawSync(Buffer.alloc(0))]);
}

/** A zip whose member `name` declares `data`'s size but whose deflate body is `body`. */
function zipWithBody(name: string, data: Uint8Array, body: Uint8Array): Uint8Array {
  const lying = { deflateRaw: () => body, inflateRaw: () => new Uint8Array(0) };
  return writeZip([{ name, data }], { compress: true, codec: lying });
}

test('npz: a deflate bomb member with a lying size stops at the declared size, naming file and member', () => {
  const body = deflateBomb(768); // 768 MiB of zeros behind a 1000-byte declaration
  assert.ok(body.length < 1 * MB, `bomb is ${body.length} bytes`);
  // It is a real bomb: its first 4 KiB alone inflate to over 3 MiB.
  const head = zlib.inflateRawSync(body.subarray(0, 4096), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.ok(head.length > 3 * MB, `first 4 KiB inflate to ${head.length} bytes`);

  const file = join(root, 'bomb.npz');
  writeFileSync(file, zipWithBody('train_images.npy', new Uint8Array(1000), body));
  const m = measure(() => throwsMatching(() => readNpzFile(file), /bomb\.npz: member train_images\.npy inflates to more than the 1000 bytes its directory entry declares/));
  assert.ok(m.peakMb < 200, `peak RSS rose by ${m.peakMb.toFixed(0)} MiB`);
  assert.ok(m.ms < 3000, `took ${m.ms.toFixed(0)} ms`);
  // The MedMNIST loader reads through the same path.
  throwsMatching(() => loadMedMNISTFile(file), /member train_images\.npy inflates to more than/);

  // A declared size deflate cannot reach from the compressed size is refused before inflating.
  const small = zlib.deflateRawSync(Buffer.alloc(10));
  const fake = Buffer.from(zipWithBody('x.npy', new Uint8Array(10), small));
  // Patch the central directory's uncompressed size (offset 24 of the entry) to 1 GiB.
  const cd = fake.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
  fake.writeUInt32LE(1 << 30, cd + 24);
  writeFileSync(join(root, 'liar.npz'), fake);
  const m2 = measure(() => throwsMatching(() => readNpzFile(join(root, 'liar.npz')), /liar\.npz: member x\.npy declares 1073741824 bytes from \d+ compressed, more than deflate can produce/));
  assert.ok(m2.peakMb < 200, `peak RSS rose by ${m2.peakMb.toFixed(0)} MiB`);
});

test('npz: honest compressed members still round-trip exactly', () => {
  const rng = new Rng(3);
  const a = Float32Array.from({ length: 5000 }, () => rng.next() - 0.5);
  const b = Uint8Array.from({ length: 70000 }, (_, i) => (i * 7) % 13);
  writeNpz(join(root, 'ok.npz'), { a: { data: a, shape: [50, 100] }, b: { data: b, shape: [70000] } }, { compress: true });
  const z = readNpzFile(join(root, 'ok.npz'));
  assert.equal(Array.from(z.get('a')!.data as Float32Array), Array.from(a));
  assert.equal(Array.from(z.get('b')!.data as Uint8Array), Array.from(b));
});

// ---------------------------------------------------------------- pixel limit

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32 ? zlib.crc32(td) : crcTable(td));
  return Buffer.concat([len, td, crc]);
}
function crcTable(b: Buffer): number {
  let c = 0xffffffff;
  for (const v of b) {
    c ^= v;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** A valid all-black 1-bit grayscale PNG of w x h, written by hand (rows streamed through deflate). */
async function oneBitPng(w: number, h: number): Promise<Buffer> {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 0; // grayscale
  const row = Buffer.alloc(1 + Math.ceil(w / 8)); // filter byte 0 + packed zero bits
  const def = zlib.createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  def.on('data', (d: Buffer) => parts.push(d));
  const done = new Promise((r) => def.on('end', r));
  for (let y = 0; y < h; y++) if (!def.write(row)) await new Promise((r) => def.once('drain', r));
  def.end();
  await done;
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, pngChunk('IHDR', ihdr), pngChunk('IDAT', Buffer.concat(parts)), pngChunk('IEND', Buffer.alloc(0))]);
}

test('imageDimensions reads PNG IHDR and JPEG SOF sizes without decoding', () => {
  const rng = new Rng(11);
  for (let t = 0; t < 6; t++) {
    const w = 1 + Math.floor(rng.next() * 40);
    const h = 1 + Math.floor(rng.next() * 40);
    const px = Uint8Array.from({ length: w * h * 3 }, () => Math.floor(rng.next() * 256));
    assert.equal(imageDimensions(encodePng(px, w, h, 3)), { width: w, height: h });
    assert.equal(imageDimensions(encodeJpeg(px, w, h, 3, 80)), { width: w, height: h });
    const d = decodeImage(encodeJpeg(px, w, h, 3, 80), 'x.jpg');
    assert.equal([d.width, d.height], [w, h]);
  }
  assert.is(imageDimensions(Buffer.from('not an image')), undefined);
});

test('images: a 30000x30000 1-bit PNG (about 110 KB) and a JPEG declaring 30000x30000 are refused from the header', async () => {
  // The generator makes real PNGs: a small one decodes to the expected all-black image.
  const smallPng = await oneBitPng(67, 45);
  const d = decodeImage(smallPng, 'small.png');
  assert.equal([d.width, d.height], [67, 45]);
  for (let i = 0; i < d.data.length; i += 4) assert.equal([d.data[i], d.data[i + 1], d.data[i + 2], d.data[i + 3]], [0, 0, 0, 255]);

  const bomb = await oneBitPng(30000, 30000);
  assert.ok(bomb.length < 200_000, `bomb PNG is ${bomb.length} bytes`);
  const m = measure(() => throwsMatching(() => decodeImage(bomb, '/data/bomb.png'), /\/data\/bomb\.png: image is 30000x30000 \(900\.0 megapixels\), over the limit of 100\.0 megapixels \(--max-pixels\)/));
  assert.ok(m.peakMb < 200, `peak RSS rose by ${m.peakMb.toFixed(0)} MiB`);
  assert.ok(m.ms < 1000, `took ${m.ms.toFixed(0)} ms`);

  // A JPEG whose SOF0 claims 30000x30000 (patched into a real 16x16 JPEG).
  const jpg = Buffer.from(encodeJpeg(new Uint8Array(16 * 16).fill(90), 16, 16, 1, 80));
  let sof = -1;
  for (let p = 2; p < jpg.length - 1; p++) if (jpg[p] === 0xff && jpg[p + 1] === 0xc0) (sof = p), (p = jpg.length);
  assert.ok(sof > 0);
  jpg.writeUInt16BE(30000, sof + 5);
  jpg.writeUInt16BE(30000, sof + 7);
  const mj = measure(() => throwsMatching(() => decodeImage(jpg, 'big.jpg'), /big\.jpg: image is 30000x30000 \(900\.0 megapixels\), over the limit/));
  assert.ok(mj.peakMb < 200, `peak RSS rose by ${mj.peakMb.toFixed(0)} MiB`);

  // The limit is an option: a folder set with maxPixels below 67x45 skips that image, naming it.
  const dir = join(root, 'pix');
  for (const c of ['a', 'b']) {
    mkdirSync(join(dir, c), { recursive: true });
    for (let k = 0; k < 3; k++) writeFileSync(join(dir, c, `${k}.png`), encodePng(new Uint8Array(8 * 8).fill(40 * k), 8, 8, 1));
  }
  writeFileSync(join(dir, 'a', 'huge.png'), smallPng);
  const ds = await loadImageFolder({ root: dir, size: 8, cacheDir: false, onBadImage: 'skip', maxPixels: 1000, fractions: [1, 0, 0] });
  assert.is(ds.load.skipped.length, 1);
  assert.match(ds.load.skipped[0].file, /huge\.png$/);
  assert.match(ds.load.skipped[0].reason, /67x45 \(0\.0 megapixels\), over the limit of 0\.0 megapixels/);
  await rejectsMatching(loadImageFolder({ root: dir, size: 8, cacheDir: false, maxPixels: 1000 }), /bad image .*huge\.png: image is 67x45/);
});

// ---------------------------------------------------------------- labels

function npzArrays(labels: Record<'train' | 'val' | 'test', number[]>, h = 4): Record<string, { data: NpyData; shape: number[] }> {
  const out: Record<string, { data: NpyData; shape: number[] }> = {};
  for (const sp of ['train', 'val', 'test'] as const) {
    const n = labels[sp].length;
    out[`${sp}_images`] = { data: Uint8Array.from({ length: n * h * h }, (_, i) => (i * 31) % 256), shape: [n, h, h] };
    out[`${sp}_labels`] = { data: Uint8Array.from(labels[sp]), shape: [n, 1] };
  }
  return out;
}

test('labels: one stray label in a binary npz is an error naming file, split, row and value (not 8 classes)', () => {
  const train = [0, 1, 0, 7, 1, 0, 1, 1];
  // A known MedMNIST name: its table says 2 classes.
  writeNpz(join(root, 'pneumoniamnist.npz'), npzArrays({ train, val: [0, 1], test: [1, 0] }));
  throwsMatching(() => loadMedMNISTFile(join(root, 'pneumoniamnist.npz')), /pneumoniamnist\.npz: member train_labels\.npy row 3: label 7 is not one of the 2 classes of pneumoniamnist \(0\.\.1\)/);
  // An unknown name: classes are inferred from train, and a gap below the stray label gives it away.
  writeNpz(join(root, 'mybinary.npz'), npzArrays({ train, val: [0, 1], test: [1, 0] }));
  throwsMatching(() => loadMedMNISTFile(join(root, 'mybinary.npz')), /mybinary\.npz: member train_labels\.npy row 3: label 7, but classes 2\.\.6 never occur in train/);
  // In val/test: outside the classes found in train, or a class train never has.
  writeNpz(join(root, 'valstray.npz'), npzArrays({ train: [0, 1, 2, 1], val: [0, 3], test: [1, 0] }));
  throwsMatching(() => loadMedMNISTFile(join(root, 'valstray.npz')), /valstray\.npz: member val_labels\.npy row 1: label 3 is not one of the 3 classes found in train \(0\.\.2\)/);
  writeNpz(join(root, 'dermamnist.npz'), npzArrays({ train: [0, 1, 2, 3, 4, 5, 0], val: [0, 1], test: [2, 6, 1] }));
  throwsMatching(() => loadMedMNISTFile(join(root, 'dermamnist.npz')), /dermamnist\.npz: member test_labels\.npy row 1: label 6 \(vascular lesions\) does not occur in the train split/);
  // A clean file still loads, with the table's classes.
  writeNpz(join(root, 'breastmnist.npz'), npzArrays({ train: [0, 1, 1, 0], val: [0, 1], test: [1, 0] }));
  const ds = loadMedMNISTFile(join(root, 'breastmnist.npz'));
  assert.equal(ds.classes, ['malignant', 'normal, benign']);
  assert.equal(Array.from(ds.train.labels), [0, 1, 1, 0]);
});

test('labels: a class folder present under test/ but not train/ is an error naming the image', async () => {
  const dir = join(root, 'official');
  const img = encodePng(new Uint8Array(8 * 8).fill(100), 8, 8, 1);
  for (const [sp, cls] of [['train', ['a', 'b']], ['test', ['a', 'b', 'c']]] as const)
    for (const c of cls) {
      mkdirSync(join(dir, sp, c), { recursive: true });
      for (let k = 0; k < 2; k++) writeFileSync(join(dir, sp, c, `${k}.png`), img);
    }
  await rejectsMatching(loadImageFolder({ root: dir, size: 8, cacheDir: false }), /official: test split, image test\/c\/0\.png: label 2 \(c\) does not occur in the train split/);
});

// ---------------------------------------------------------------- decoded-image cache

function grayPng(v: number): Uint8Array {
  return encodePng(Uint8Array.from({ length: 8 * 8 }, (_, i) => (v + i) % 256), 8, 8, 1);
}

test('cache: replacing an image (same name, new content and mtime) gives the new pixels; a repaired image is no longer skipped', async () => {
  const dir = join(root, 'cached');
  const cacheDir = join(root, 'cache');
  for (const c of ['a', 'b']) {
    mkdirSync(join(dir, c), { recursive: true });
    for (let k = 0; k < 3; k++) writeFileSync(join(dir, c, `${k}.png`), grayPng(10 * k + (c === 'b' ? 100 : 0)));
  }
  const opts = { root: dir, size: 8, cacheDir, onBadImage: 'skip' as const, fractions: [1, 0, 0] as [number, number, number] };
  const pixelsOf = (ds: Awaited<ReturnType<typeof loadImageFolder>>, id: string) => {
    const i = ds.train.ids!.indexOf(id);
    assert.ok(i >= 0, `${id} not in train`);
    return Array.from(ds.train.images.subarray(i * 64, (i + 1) * 64));
  };
  const first = await loadImageFolder(opts);
  assert.is(first.load.fromCache, false);
  assert.equal(pixelsOf(first, 'a/1.png'), Array.from({ length: 64 }, (_, i) => (10 + i) % 256));
  assert.is((await loadImageFolder(opts)).load.fromCache, true);

  // Overwrite in place (the folder's own mtime and listing do not change).
  const target = join(dir, 'a', '1.png');
  writeFileSync(target, grayPng(200));
  const later = new Date(Date.now() + 5000);
  utimesSync(target, later, later);
  const second = await loadImageFolder(opts);
  assert.is(second.load.fromCache, false);
  assert.equal(pixelsOf(second, 'a/1.png'), Array.from({ length: 64 }, (_, i) => (200 + i) % 256));

  // A corrupt image is skipped (and cached as skipped) ...
  const bad = join(dir, 'b', '2.png');
  writeFileSync(bad, Buffer.from('not a png at all'));
  const third = await loadImageFolder(opts);
  assert.is(third.load.skipped.length, 1);
  assert.is((await loadImageFolder(opts)).load.skipped.length, 1);
  // ... until it is repaired in place.
  writeFileSync(bad, grayPng(77));
  const fixed = await loadImageFolder(opts);
  assert.is(fixed.load.skipped.length, 0);
  assert.equal(pixelsOf(fixed, 'b/2.png'), Array.from({ length: 64 }, (_, i) => (77 + i) % 256));
  // Different decoding options are a different cache entry.
  const rgb = await loadImageFolder({ ...opts, channels: 3 });
  assert.is(rgb.load.fromCache, false);
  assert.is(rgb.channels, 3);
});

// ---------------------------------------------------------------- symlinks

test('symlinked class folders are followed; link loops are walked once; a broken link is named', async () => {
  const store = join(root, 'store');
  const dir = join(root, 'linked');
  mkdirSync(join(store, 'b-images'), { recursive: true });
  mkdirSync(join(dir, 'a'), { recursive: true });
  for (let k = 0; k < 3; k++) {
    writeFileSync(join(dir, 'a', `${k}.png`), grayPng(k));
    writeFileSync(join(store, 'b-images', `${k}.png`), grayPng(150 + k));
  }
  symlinkSync(join(store, 'b-images'), join(dir, 'b'));
  const ds = await loadImageFolder({ root: dir, size: 8, cacheDir: false, fractions: [1, 0, 0] });
  assert.equal(ds.classes, ['a', 'b']);
  assert.equal([...ds.train.ids!].sort(), ['a/0.png', 'a/1.png', 'a/2.png', 'b/0.png', 'b/1.png', 'b/2.png']);
  const i = ds.train.ids!.indexOf('b/1.png');
  assert.is(ds.train.labels[i], 1);
  assert.is(ds.train.images[i * 64], 151);

  // Recursive image index: a linked folder is searched; a loop (link to an ancestor) terminates.
  const tree = join(root, 'tree');
  mkdirSync(join(tree, 'x'), { recursive: true });
  symlinkSync(join(store, 'b-images'), join(tree, 'x', 'more'));
  symlinkSync(tree, join(tree, 'x', 'loop'));
  const index = indexImages([tree]);
  assert.equal([...index.keys()].sort(), ['0', '0.png', '1', '1.png', '2', '2.png']);
  assert.is(index.get('1.png'), join(tree, 'x', 'more', '1.png'));

  // A broken class-folder link is an error naming it, not a silently missing class.
  symlinkSync(join(store, 'gone'), join(dir, 'c'));
  await rejectsMatching(loadImageFolder({ root: dir, size: 8, cacheDir: false }), /linked\/c: broken symbolic link/);
  rmSync(join(dir, 'c'));
});

// ---------------------------------------------------------------- JSON

test('bad JSON in a model\'s metadata or a run file names the file and the parse error', () => {
  throwsMatching(() => readModelMeta({ roskd: '{"format": "roskd-model", arch' }, '/runs/x/student-roskd.safetensors'), /\/runs\/x\/student-roskd\.safetensors: safetensors __metadata__ entry "roskd": not valid JSON \(.+\)/);
  const p = join(root, 'cell.json');
  writeFileSync(p, '{"cell": 1,');
  throwsMatching(() => readJsonFile(p), new RegExp(`${p.replace(/[.]/g, '\\.')}: not valid JSON \\(.+\\)`));
  writeFileSync(p, '{"cell": 1}');
  assert.equal(readJsonFile(p), { cell: 1 });
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
