// Data layer: CSV, zip/npy/npz, MedMNIST (local, cached, downloaded from a local
// HTTP server), image decode/resize, synthetic phantoms. CPU only; fixtures are
// generated into a temp dir.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { parseCsv, requireColumn, getColumn, formatCsv } from '../kd/data/csv.ts';
import { crc32, writeZip, readZip, readZipEntries } from '../kd/data/zip.ts';
import { parseNpy, encodeNpy, encodeNpz, type NpyData } from '../kd/data/npy.ts';
import { nodeZipCodec, readCsv, readNpzFile as readNpz, writeNpz } from '../kd/data/node-files.ts';
import { medmnistFromArrays } from '../kd/data/medmnist.ts';
import { loadMedMNIST, loadMedMNISTFile, resolveMedMNIST } from '../kd/data/medmnist-files.ts';
import { decodeImage, encodePng, encodeJpeg, toChannels, resize, centerCrop, prepareImage, chwToHwc, contactSheet } from '../kd/data/image.ts';
import { makeSynthetic, SYNTHETIC_CLASSES } from '../kd/data/synthetic.ts';
import { classCounts, subsetSplit, labelOf, numClasses, computeMeanStd, validateDataset, imageOf, type Split } from '../kd/data/dataset.ts';

const root = mkdtempSync(join(tmpdir(), 'roskd-data-'));

function throwsMatching(fn: () => unknown, re: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`expected an error matching ${re}`);
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

// ---------------------------------------------------------------- CSV

test('csv: quotes, embedded commas/newlines, CRLF, BOM, blank lines', () => {
  const text = '\ufeffid,name,note\r\n1,"Smith, J","line1\r\nline2"\r\n\r\n2,plain,"say ""hi"""\r\n3,,\r\n';
  const csv = parseCsv(text, 'x.csv');
  assert.equal(csv.header, ['id', 'name', 'note']);
  assert.equal(csv.rows, [
    ['1', 'Smith, J', 'line1\r\nline2'],
    ['2', 'plain', 'say "hi"'],
    ['3', '', ''],
  ]);
  assert.equal(csv.lines, [2, 5, 6]);
  // No trailing newline, LF only, quoted empty field.
  const b = parseCsv('a,b\n"",x', 'y.csv');
  assert.equal(b.rows, [['', 'x']]);
  // Round trip through the writer.
  const rows = [['a,b', 'c"d', 'e\nf'], ['1', '2', '3']];
  assert.equal(parseCsv(formatCsv(['h1', 'h2', 'h3'], rows)).rows, rows);
});

test('csv: ragged rows (NIH header with unquoted commas) and column errors name file and column', () => {
  const nih = 'Image Index,Finding Labels,Follow-up #,Patient ID,OriginalImage[Width,Height],\n00000001_000.png,Cardiomegaly,0,1,2682,2749,\n';
  const csv = parseCsv(nih, 'Data_Entry_2017.csv');
  assert.is(getColumn(csv, 'Patient ID')[0], '1');
  assert.is(requireColumn(csv, ' image index '), 0); // case/space-insensitive fallback
  throwsMatching(() => requireColumn(csv, 'lesion_id'), /Data_Entry_2017\.csv: missing column "lesion_id" \(columns: "Image Index"/);
  throwsMatching(() => parseCsv('a,b\n1,"open\n2,3\n', 'bad.csv'), /bad\.csv:2: unterminated quoted field/);
  throwsMatching(() => parseCsv('', 'empty.csv'), /empty\.csv: empty CSV/);
  throwsMatching(() => readCsv(join(root, 'nope.csv')), /cannot read CSV .*nope\.csv/);
});

// ---------------------------------------------------------------- zip / npy / npz

test('crc32 matches the standard check value', () => {
  assert.is(crc32(Buffer.from('123456789')), 0xcbf43926);
});

test('zip: stored, deflate and zip64 archives round-trip; corruption is reported', () => {
  const members = [
    { name: 'a.txt', data: Buffer.from('hello hello hello hello') },
    { name: 'dir/b.bin', data: new Uint8Array(1000).map((_, i) => i % 7) },
    { name: 'empty', data: new Uint8Array(0) },
  ];
  for (const opts of [{}, { compress: true }, { zip64: true }, { compress: true, zip64: true }]) {
    const z = writeZip(members, { ...opts, codec: nodeZipCodec });
    const out = readZip(z, 'mem.zip', nodeZipCodec);
    assert.equal([...out.keys()], ['a.txt', 'dir/b.bin', 'empty']);
    for (const m of members) assert.equal(new Uint8Array(out.get(m.name)!), new Uint8Array(m.data));
    assert.is(readZipEntries(z)[1].method, opts.compress ? 8 : 0);
  }
  const z = writeZip(members, { compress: false });
  const bad = Buffer.from(z);
  bad[35] ^= 0xff; // inside a.txt's data
  throwsMatching(() => readZip(bad, 'bad.zip'), /bad\.zip: CRC mismatch in member a\.txt/);
  throwsMatching(() => readZip(z.subarray(0, z.length - 30), 'cut.zip'), /cut\.zip: not a zip\/npz archive.*truncated/);
  throwsMatching(() => readZip(encodeNpy(new Uint8Array(3), [3]), 'x.npy'), /bare \.npy file/);
  // Without a codec, stored members still read and a deflated one is named.
  assert.is(readZip(z, 'stored.zip').size, 3);
  throwsMatching(() => readZip(writeZip(members, { compress: true, codec: nodeZipCodec }), 'c.zip'), /c\.zip: member a\.txt is deflate-compressed and no inflate codec/);
  throwsMatching(() => writeZip(members, { compress: true }), /compress needs a deflate codec/);
});

test('npy: v1/v2/v3 headers, all supported dtypes, shapes', () => {
  const cases: [NpyData, number[]][] = [
    [Uint8Array.from([1, 2, 3, 255]), [2, 2]],
    [Uint16Array.from([0, 65535, 7]), [3]],
    [Int32Array.from([-5, 0, 2147483647]), [3, 1]],
    [BigInt64Array.from([-1n, 9007199254740991n]), [2]],
    [Float32Array.from([0.5, -1.25]), [1, 2]],
    [Float64Array.from([Math.PI]), [1]],
    [Uint8Array.from([9]), []],
  ];
  for (const [data, shape] of cases) {
    const a = parseNpy(encodeNpy(data, shape), 'm.npy');
    assert.equal(a.shape, shape);
    assert.equal(Array.from(a.data as ArrayLike<number | bigint>), Array.from(data as ArrayLike<number | bigint>));
    assert.is(a.data.constructor, data.constructor);
  }
  // numpy pads v1 headers so data starts at a multiple of 64.
  assert.is(encodeNpy(new Uint8Array(5), [5]).length % 64, 5);
  // Hand-made v2 and v3 headers (uint32 length at offset 8; v3 is UTF-8).
  for (const ver of [2, 3]) {
    const header = `{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }`.padEnd(52, ' ') + '\n';
    const pre = Buffer.alloc(12);
    pre[0] = 0x93;
    pre.write('NUMPY', 1, 'latin1');
    pre[6] = ver;
    pre.writeUInt32LE(header.length, 8);
    const body = Buffer.from(Float32Array.from([1.5, -2]).buffer);
    const a = parseNpy(Buffer.concat([pre, Buffer.from(header), body]), `v${ver}.npy`);
    assert.equal(Array.from(a.data as Float32Array), [1.5, -2]);
  }
});

test('npy: unsupported content gives errors naming the file and member', () => {
  const mk = (descr: string, fortran = 'False') => {
    const header = `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': (1,), }`.padEnd(117, ' ') + '\n';
    const pre = Buffer.alloc(10);
    pre[0] = 0x93;
    pre.write('NUMPY', 1, 'latin1');
    pre[6] = 1;
    pre.writeUInt16LE(header.length, 8);
    return Buffer.concat([pre, Buffer.from(header), Buffer.alloc(16)]);
  };
  const z = writeZip([{ name: 'x.npy', data: mk('>f4') }, { name: 'ok.npy', data: encodeNpy(new Uint8Array(2), [2]) }]);
  writeFileSync(join(root, 'bad-dtype.npz'), z);
  throwsMatching(() => readNpz(join(root, 'bad-dtype.npz')), /bad-dtype\.npz: member x\.npy: unsupported dtype '>f4'/);
  throwsMatching(() => parseNpy(mk('<c8'), 'c.npy'), /c\.npy: unsupported dtype '<c8'/);
  throwsMatching(() => parseNpy(mk('|O')), /unsupported dtype '\|O'/);
  throwsMatching(() => parseNpy(mk('<f4', 'True'), 'f.npy'), /f\.npy: Fortran-ordered/);
  throwsMatching(() => parseNpy(Buffer.from('not numpy at all'), 'j.npy'), /j\.npy: not a \.npy array/);
  throwsMatching(() => parseNpy(encodeNpy(new Float64Array(4), [4]).subarray(0, 140), 't.npy'), /t\.npy: data has 12 bytes.*needs 32 \(truncated/);
  throwsMatching(() => parseNpy(encodeNpy(new Float64Array(4), [4]).subarray(0, 60), 'h.npy'), /h\.npy: header runs past the end/);
});

// ---------------------------------------------------------------- MedMNIST

function fakeMedmnist(opts: { n: [number, number, number]; h: number; rgb?: boolean; multilabel?: number; classes?: number; seed?: number }) {
  const arrays: Record<string, { data: NpyData; shape: number[] }> = {};
  let s = opts.seed ?? 1;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 8) / 16777216;
  (['train', 'val', 'test'] as const).forEach((sp, k) => {
    const n = opts.n[k];
    const c = opts.rgb ? 3 : 1;
    const img = new Uint8Array(n * opts.h * opts.h * c).map(() => Math.floor(rnd() * 256));
    arrays[`${sp}_images`] = { data: img, shape: opts.rgb ? [n, opts.h, opts.h, 3] : [n, opts.h, opts.h] };
    if (opts.multilabel) {
      arrays[`${sp}_labels`] = { data: new Uint8Array(n * opts.multilabel).map(() => (rnd() < 0.2 ? 1 : 0)), shape: [n, opts.multilabel] };
    } else {
      const C = opts.classes ?? 2;
      arrays[`${sp}_labels`] = { data: new Uint8Array(n).map((_, i) => i % C), shape: [n, 1] };
    }
  });
  return arrays;
}

test('medmnist: gray binary, RGB multiclass (HWC -> CHW), multilabel; mean/std on train', () => {
  const gray = fakeMedmnist({ n: [10, 4, 6], h: 8 });
  writeNpz(join(root, 'toymnist.npz'), gray, { compress: true });
  const ds = loadMedMNISTFile(join(root, 'toymnist.npz'));
  assert.is(ds.name, 'toymnist');
  assert.is(ds.task, 'binary');
  assert.equal(ds.classes, ['class_0', 'class_1']);
  assert.equal([ds.channels, ds.height, ds.width, ds.train.n, ds.val.n, ds.test.n], [1, 8, 8, 10, 4, 6]);
  assert.ok(ds.train.labels instanceof Int32Array);
  assert.equal(Array.from(ds.train.images.subarray(0, 64)), Array.from((gray.train_images.data as Uint8Array).subarray(0, 64)));
  const ms = computeMeanStd(ds.train.images, 10, 1);
  assert.ok(Math.abs(ds.mean[0] - ms.mean[0]) < 1e-12 && ds.mean[0] > 0.4 && ds.mean[0] < 0.6);
  validateDataset(ds);

  const rgb = fakeMedmnist({ n: [9, 3, 3], h: 4, rgb: true, classes: 9 });
  const dsr = medmnistFromArrays(new Map(Object.entries(rgb).map(([k, v]) => [k, { dtype: '|u1' as const, ...v }])), 'pathmnist');
  assert.is(dsr.task, 'multiclass');
  assert.is(dsr.classes[8], 'colorectal adenocarcinoma epithelium');
  assert.is(dsr.channels, 3);
  // Pixel (y=1,x=2) of image 2, channel 1: HWC index ((2*4+1)*4+2)*3+1; CHW index 2*48 + 1*16 + 1*4 + 2.
  const hwc = rgb.train_images.data as Uint8Array;
  assert.is(dsr.train.images[2 * 48 + 16 + 4 + 2], hwc[((2 * 4 + 1) * 4 + 2) * 3 + 1]);

  const ml = fakeMedmnist({ n: [5, 2, 2], h: 4, multilabel: 14 });
  const dsm = medmnistFromArrays(new Map(Object.entries(ml).map(([k, v]) => [k, { dtype: '|u1' as const, ...v }])), 'chestmnist');
  assert.is(dsm.task, 'multilabel');
  assert.is(dsm.classes.length, 14);
  assert.is(dsm.classes[13], 'hernia');
  assert.ok(dsm.train.labels instanceof Uint8Array && dsm.train.labels.length === 5 * 14);
  assert.equal(Array.from(labelOf(dsm.train as Split & { labels: Uint8Array }, 1)), Array.from((ml.train_labels.data as Uint8Array).subarray(14, 28)));

  // Resize on load.
  const small = loadMedMNISTFile(join(root, 'toymnist.npz'), { size: 4 });
  assert.equal([small.height, small.width, small.train.images.length], [4, 4, 10 * 16]);
});

test('medmnist: malformed files give errors naming file and member', () => {
  const a = fakeMedmnist({ n: [2, 2, 2], h: 4 });
  const { val_labels: _drop, ...missing } = a;
  writeNpz(join(root, 'missing.npz'), missing);
  throwsMatching(() => loadMedMNISTFile(join(root, 'missing.npz')), /missing\.npz: missing member val_labels\.npy/);
  writeNpz(join(root, 'badshape.npz'), { ...a, test_images: { data: new Uint8Array(2 * 4 * 4 * 4), shape: [2, 4, 4, 4] } });
  throwsMatching(() => loadMedMNISTFile(join(root, 'badshape.npz')), /badshape\.npz: member test_images\.npy: shape \[2,4,4,4\]/);
  writeNpz(join(root, 'badn.npz'), { ...a, train_labels: { data: new Uint8Array(3), shape: [3, 1] } });
  throwsMatching(() => loadMedMNISTFile(join(root, 'badn.npz')), /badn\.npz: member train_labels\.npy has shape \[3,1\], expected \(2,\)/);
  throwsMatching(() => loadMedMNISTFile(join(root, 'nothere.npz')), /cannot open .*nothere\.npz/);
});

test('medmnist: real pneumoniamnist from ../shared/data (when present)', async () => {
  const shared = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared', 'data');
  const p = join(shared, 'pneumoniamnist.npz');
  if (!existsSync(p)) {
    console.log(`  skipped: ${p} not present`);
    return;
  }
  const ds = await loadMedMNIST('pneumoniamnist', { allowDownload: false, cacheDir: join(root, 'nocache'), searchDirs: [shared] });
  assert.is(ds.task, 'binary');
  assert.equal(ds.classes, ['normal', 'pneumonia']);
  assert.equal([ds.train.n, ds.val.n, ds.test.n], [4708, 524, 624]);
  assert.equal(classCounts(ds.train, 2), [1214, 3494]);
  assert.equal(classCounts(ds.val, 2), [135, 389]);
  assert.equal(classCounts(ds.test, 2), [234, 390]);
  assert.equal([ds.channels, ds.height, ds.width], [1, 28, 28]);
  assert.ok(ds.mean[0] > 0.3 && ds.mean[0] < 0.8 && ds.std[0] > 0.05);
});

// A tiny HTTP server standing in for Zenodo.
async function serve(handler: (url: string) => { status: number; body?: Uint8Array }): Promise<{ server: Server; base: string; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const r = handler(req.url ?? '');
    res.writeHead(r.status, { 'content-type': 'application/octet-stream' });
    res.end(r.body ?? '');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}/files`, hits };
}

test('resolveMedMNIST: search dirs, cache, download to cache via a local server, bad downloads', async () => {
  const npz = encodeNpz(fakeMedmnist({ n: [6, 2, 2], h: 4 }), { compress: true, codec: nodeZipCodec });
  const { server, base, hits } = await serve((url) => (url.startsWith('/files/tinymnist.npz') ? { status: 200, body: npz } : url.startsWith('/files/pneumoniamnist') ? { status: 200, body: npz } : { status: 404 }));
  try {
    const cacheDir = join(root, 'cache1');
    // Download (env var names the mirror), then the cached copy is used without a request.
    process.env.ROSKD_MEDMNIST_URL = base;
    const p1 = await resolveMedMNIST('tinymnist', { cacheDir, searchDirs: [] });
    delete process.env.ROSKD_MEDMNIST_URL;
    assert.is(p1, join(cacheDir, 'medmnist', 'tinymnist.npz'));
    assert.equal(hits, ['/files/tinymnist.npz?download=1']);
    assert.equal(readdirSync(join(cacheDir, 'medmnist')), ['tinymnist.npz']); // no temp files left
    const p2 = await resolveMedMNIST('tinymnist', { cacheDir, searchDirs: [], baseUrl: 'http://127.0.0.1:1/none' });
    assert.is(p2, p1);
    assert.is(hits.length, 1);
    const ds = await loadMedMNIST('tinymnist', { cacheDir, searchDirs: [] });
    assert.is(ds.train.n, 6);
    // A search dir wins over the cache.
    const shared = join(root, 'shared');
    mkdirSync(shared, { recursive: true });
    writeFileSync(join(shared, 'tinymnist.npz'), npz);
    assert.is(await resolveMedMNIST('tinymnist', { cacheDir, searchDirs: [shared] }), join(shared, 'tinymnist.npz'));
    // Size variants use NAME_SIZE.npz.
    await rejectsMatching(resolveMedMNIST('tinymnist', { size: 64, cacheDir, searchDirs: [], baseUrl: base }), /tinymnist_64\.npz\?download=1: HTTP 404/);
    // Known name with a checksum: content that does not match is rejected and not cached.
    await rejectsMatching(resolveMedMNIST('pneumoniamnist', { cacheDir, searchDirs: [], baseUrl: base }), /MD5 [0-9a-f]{32}, expected 28209eda62fecd6e6a2d98b1501bb15f/);
    assert.not.ok(existsSync(join(cacheDir, 'medmnist', 'pneumoniamnist.npz')));
    assert.equal(readdirSync(join(cacheDir, 'medmnist')), ['tinymnist.npz']);
    // Download disabled.
    await rejectsMatching(resolveMedMNIST('othermnist', { cacheDir, searchDirs: [], allowDownload: false }), /othermnist\.npz not found .*downloading is disabled/);
    await rejectsMatching(resolveMedMNIST('../etc', { cacheDir }), /bad dataset name/);
  } finally {
    await new Promise((ok) => server.close(ok));
  }
  // Offline: connection refused gives a clear message.
  await rejectsMatching(
    resolveMedMNIST('tinymnist', { cacheDir: join(root, 'cache2'), searchDirs: [], baseUrl: base }),
    /could not download http:\/\/127\.0\.0\.1:\d+\/files\/tinymnist\.npz\?download=1: .*Offline\?/,
  );
  assert.equal(readdirSync(join(root, 'cache2', 'medmnist')), []);
});

test('loadMedMNIST: unpublished sizes resample a local copy; published sizes need their own file', async () => {
  const dir = join(root, 'sizes');
  mkdirSync(dir, { recursive: true });
  writeNpz(join(dir, 'sizemnist.npz'), fakeMedmnist({ n: [4, 2, 2], h: 28 }));
  const opts = { searchDirs: [dir], cacheDir: join(root, 'cache-sizes'), allowDownload: false };
  const ds = await loadMedMNIST('sizemnist', { ...opts, size: 32 });
  assert.equal([ds.height, ds.width, ds.train.n], [32, 32, 4]);
  await rejectsMatching(loadMedMNIST('sizemnist', { ...opts, size: 64 }), /sizemnist_64\.npz not found/);
  // A file dropped directly into the cache dir is found too.
  mkdirSync(join(root, 'cache-flat'), { recursive: true });
  writeNpz(join(root, 'cache-flat', 'flatmnist.npz'), fakeMedmnist({ n: [2, 2, 2], h: 28 }));
  assert.is(await resolveMedMNIST('flatmnist', { searchDirs: [], cacheDir: join(root, 'cache-flat'), allowDownload: false }), join(root, 'cache-flat', 'flatmnist.npz'));
});

test('resolveMedMNIST: an HTML page instead of a zip is not cached', async () => {
  const { server, base } = await serve(() => ({ status: 200, body: Buffer.from('<html>rate limited</html>') }));
  try {
    await rejectsMatching(resolveMedMNIST('htmlmnist', { cacheDir: join(root, 'cache3'), searchDirs: [], baseUrl: base }), /not a zip\/npz archive/);
    assert.equal(readdirSync(join(root, 'cache3', 'medmnist')), []);
  } finally {
    await new Promise((ok) => server.close(ok));
  }
});

// ---------------------------------------------------------------- images

/** Minimal PNG writer for formats pngjs cannot write (palette, 1-bit). */
function rawPng(w: number, h: number, depth: number, colorType: number, rows: Uint8Array[], plte?: number[][]): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = depth;
  ihdr[9] = colorType;
  const raw = Buffer.concat(rows.map((r) => Buffer.concat([Buffer.from([0]), Buffer.from(r)])));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...(plte ? [chunk('PLTE', Buffer.from(plte.flat()))] : []),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

test('image: PNG 8/16-bit gray, gray+alpha, RGB, RGBA, palette, 1-bit decode to RGBA8', () => {
  const W = 3;
  const H = 2;
  const gray = Uint8Array.from([0, 50, 100, 150, 200, 255]);
  let img = decodeImage(encodePng(gray, W, H, 1), 'g8.png');
  assert.equal([img.width, img.height], [W, H]);
  assert.equal(Array.from(toChannels(img, 1)), Array.from(gray));
  const ga = Uint8Array.from([10, 255, 20, 128, 30, 0, 40, 255, 50, 255, 60, 255]);
  img = decodeImage(encodePng(ga, W, H, 2), 'ga.png');
  assert.equal(Array.from(toChannels(img, 1)), [10, 20, 30, 40, 50, 60]);
  const rgb = Uint8Array.from({ length: W * H * 3 }, (_, i) => (i * 37) % 256);
  img = decodeImage(encodePng(rgb, W, H, 3), 'rgb.png');
  const planar = toChannels(img, 3);
  assert.equal(Array.from(chwToHwc(planar, 3, H, W)), Array.from(rgb));
  const rgba = Uint8Array.from({ length: W * H * 4 }, (_, i) => (i * 11) % 256);
  img = decodeImage(encodePng(rgba, W, H, 4), 'rgba.png');
  assert.equal(Array.from(img.data), Array.from(rgba));
  // 16-bit: full range maps v -> round(v/257); minmax stretches the image's own range.
  const g16 = Uint16Array.from([0, 1000, 4095, 30000, 65535, 257 * 7]);
  img = decodeImage(encodePng(g16, W, H, 1, 16), 'g16.png');
  assert.equal(Array.from(toChannels(img, 1)), Array.from(g16, (v) => Math.round(v / 257)));
  const low12 = Uint16Array.from([0, 1024, 2048, 3072, 4095, 4095]);
  img = decodeImage(encodePng(low12, W, H, 1, 16), 'g12.png', { depth16: 'minmax' });
  assert.equal(Array.from(toChannels(img, 1)), [0, 64, 128, 191, 255, 255]);
  const rgb16 = Uint16Array.from({ length: W * H * 3 }, (_, i) => i * 3000);
  img = decodeImage(encodePng(rgb16, W, H, 3, 16), 'rgb16.png');
  assert.equal(Array.from(chwToHwc(toChannels(img, 3), 3, H, W)), Array.from(rgb16, (v) => Math.round(v / 257)));
  // Palette and 1-bit gray (hand-made: pngjs cannot write them).
  const pal = rawPng(2, 2, 8, 3, [Uint8Array.from([0, 1]), Uint8Array.from([2, 0])], [[255, 0, 0], [0, 255, 0], [0, 0, 255]]);
  img = decodeImage(pal, 'pal.png');
  assert.equal(Array.from(img.data), [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 0, 0, 255]);
  const bits = rawPng(3, 1, 1, 0, [Uint8Array.from([0b10100000])]);
  assert.equal(Array.from(toChannels(decodeImage(bits, '1bit.png'), 1)), [255, 0, 255]);
});

test('image: JPEG gray and RGB decode (lossy, close), luma weights', () => {
  const W = 16;
  const H = 16;
  const gray = Uint8Array.from({ length: W * H }, (_, i) => 60 + (i % W) * 8);
  const g = toChannels(decodeImage(encodeJpeg(gray, W, H, 1, 95), 'g.jpg'), 1);
  let maxErr = 0;
  for (let i = 0; i < g.length; i++) maxErr = Math.max(maxErr, Math.abs(g[i] - gray[i]));
  assert.ok(maxErr <= 6, `jpeg gray error ${maxErr}`);
  const rgb = new Uint8Array(W * H * 3);
  for (let p = 0; p < W * H; p++) rgb.set([200, 100, 50], p * 3);
  const img = decodeImage(encodeJpeg(rgb, W, H, 3, 95), 'c.jpg');
  const px = toChannels(img, 3);
  assert.ok(Math.abs(px[0] - 200) <= 4 && Math.abs(px[W * H] - 100) <= 4 && Math.abs(px[2 * W * H] - 50) <= 4);
  // Luma 0.299/0.587/0.114.
  const l = toChannels({ width: 1, height: 1, data: Uint8Array.from([200, 100, 50, 255]) }, 1);
  assert.is(l[0], Math.round(0.299 * 200 + 0.587 * 100 + 0.114 * 50));
});

test('image: bad and unsupported images name the file', () => {
  throwsMatching(() => decodeImage(Buffer.from('GIF89a....'), 'x/anim.gif'), /x\/anim\.gif: unsupported image format/);
  throwsMatching(() => decodeImage(new Uint8Array(0), 'empty.png'), /empty\.png: empty file/);
  const png = encodePng(new Uint8Array(64), 8, 8, 1);
  throwsMatching(() => decodeImage(png.subarray(0, 40), 'cut.png'), /cut\.png: cannot decode PNG/);
  const jpg = encodeJpeg(new Uint8Array(64), 8, 8, 1);
  throwsMatching(() => decodeImage(jpg.subarray(0, 20), 'cut.jpg'), /cut\.jpg: cannot decode JPEG/);
});

test('resize: area averaging when shrinking, bilinear when enlarging, identity', () => {
  // 4x4 -> 2x2: exact block means.
  const src = Uint8Array.from([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150]);
  assert.equal(Array.from(resize(src, 1, 4, 4, 2, 2)), [25, 45, 105, 125]);
  // Non-integer ratio 3 -> 2: weights 2/3,1/3 and 1/3,2/3.
  assert.equal(Array.from(resize(Uint8Array.from([0, 90, 180]), 1, 1, 3, 1, 2)), [30, 150]);
  // Enlarge 2 -> 4 (half-pixel centres, edge clamped).
  assert.equal(Array.from(resize(Uint8Array.from([0, 100]), 1, 1, 2, 1, 4)), [0, 25, 75, 100]);
  // Channels are independent; identity returns a copy.
  const two = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  const id = resize(two, 2, 2, 2, 2, 2);
  assert.equal(Array.from(id), Array.from(two));
  assert.is.not(id, two);
  const big = resize(Uint8Array.from([7, 7, 7, 7, 9, 9, 9, 9]), 2, 2, 2, 5, 3);
  assert.ok(big.subarray(0, 15).every((v) => v === 7) && big.subarray(15).every((v) => v === 9));
  // Crop and prepare (cover = centre square crop, then resize).
  assert.equal(Array.from(centerCrop(Uint8Array.from([1, 2, 3, 4, 5, 6]), 1, 2, 3, 2, 1)), [2, 5]);
  const wide = new Uint8Array(8 * 4 * 3);
  for (let y = 0; y < 4; y++) for (let x = 0; x < 8; x++) wide.set(x < 2 || x >= 6 ? [255, 255, 255] : [0, 0, 0], (y * 8 + x) * 3);
  const covered = prepareImage(encodePng(wide, 8, 4, 3), 'wide.png', { size: 2, channels: 1, fit: 'cover' });
  assert.equal(Array.from(covered), [0, 0, 0, 0]); // the white side bands are cropped away
  const stretched = prepareImage(encodePng(wide, 8, 4, 3), 'wide.png', { size: 2, channels: 1, fit: 'stretch' });
  assert.equal(Array.from(stretched), [128, 128, 128, 128]);
  const sheet = contactSheet(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 2, 1, 2, 2, { cols: 2, pad: 1, scale: 1 });
  assert.equal([sheet.width, sheet.height], [7, 4]);
});

// ---------------------------------------------------------------- dataset helpers

test('dataset helpers: subsetSplit, labelOf, classCounts', () => {
  const sp: Split = { images: Uint8Array.from([1, 1, 2, 2, 3, 3]), labels: Int32Array.from([0, 1, 1]), n: 3, ids: ['a', 'b', 'c'], groups: ['p', 'q', 'q'] };
  const sub = subsetSplit(sp, [2, 0]);
  assert.equal(Array.from(sub.images), [3, 3, 1, 1]);
  assert.equal(Array.from(sub.labels), [1, 0]);
  assert.equal(sub.ids, ['c', 'a']);
  assert.equal(sub.groups, ['q', 'p']);
  assert.is(labelOf(sp as Split & { labels: Int32Array }, 1), 1);
  assert.equal(Array.from(imageOf(sp, 1)), [2, 2]);
  assert.equal(classCounts(sp, 3), [1, 2, 0]);
  assert.is(numClasses({ classes: ['x', 'y'] }), 2);
  throwsMatching(() => subsetSplit(sp, [3]), /out of range/);
  const ml: Split = { images: new Uint8Array(2), labels: Uint8Array.from([1, 0, 1, 1, 1, 0]), n: 2 };
  assert.equal(classCounts(ml, 3), [2, 1, 1]);
  assert.equal(Array.from(subsetSplit(ml, [1]).labels), [1, 1, 0]);
});

// ---------------------------------------------------------------- synthetic

test('synthetic: deterministic, balanced, fast, right shapes', () => {
  const t0 = performance.now();
  const ds = makeSynthetic({ train: 2000, val: 200, test: 200, seed: 3 });
  const ms = performance.now() - t0;
  assert.ok(ms < 3000, `synthetic generation took ${ms.toFixed(0)} ms`);
  assert.equal(ds.classes, [...SYNTHETIC_CLASSES]);
  assert.equal([ds.channels, ds.height, ds.width, ds.train.n, ds.val.n, ds.test.n], [1, 28, 28, 2000, 200, 200]);
  assert.equal(classCounts(ds.train, 4), [500, 500, 500, 500]);
  validateDataset(ds);
  const again = makeSynthetic({ train: 2000, val: 200, test: 200, seed: 3 });
  assert.ok(Buffer.from(again.train.images).equals(Buffer.from(ds.train.images)));
  assert.equal(Array.from(again.test.labels), Array.from(ds.test.labels));
  // Another seed gives other images; changing one split's size leaves the others alone.
  assert.not.ok(Buffer.from(makeSynthetic({ train: 40, val: 4, test: 4, seed: 4 }).train.images).equals(Buffer.from(ds.train.images.subarray(0, 40 * 784))));
  const other = makeSynthetic({ train: 100, val: 200, test: 200, seed: 3 });
  assert.ok(Buffer.from(other.test.images).equals(Buffer.from(ds.test.images)));
  // 3 channels replicate gray; other sizes work.
  const rgb = makeSynthetic({ train: 4, val: 4, test: 4, size: 16, channels: 3 });
  assert.equal([rgb.channels, rgb.train.images.length], [3, 4 * 3 * 256]);
  assert.ok(Buffer.from(rgb.train.images.subarray(0, 256)).equals(Buffer.from(rgb.train.images.subarray(256, 512))));
});

test('synthetic: classes carry visible evidence (nearest-centroid beats chance, but is far from perfect)', () => {
  const ds = makeSynthetic({ train: 2000, val: 4, test: 800, seed: 11 });
  const P = 784;
  const cent = Array.from({ length: 4 }, () => new Float64Array(P));
  const cnt = [0, 0, 0, 0];
  for (let i = 0; i < ds.train.n; i++) {
    const y = ds.train.labels[i];
    cnt[y]++;
    for (let p = 0; p < P; p++) cent[y][p] += ds.train.images[i * P + p];
  }
  cent.forEach((c, k) => c.forEach((_, p) => (c[p] /= cnt[k])));
  let ok = 0;
  for (let i = 0; i < ds.test.n; i++) {
    let best = -1;
    let bd = Infinity;
    for (let k = 0; k < 4; k++) {
      let d = 0;
      for (let p = 0; p < P; p++) {
        const e = ds.test.images[i * P + p] - cent[k][p];
        d += e * e;
      }
      if (d < bd) (bd = d), (best = k);
    }
    ok += best === ds.test.labels[i] ? 1 : 0;
  }
  const acc = ok / ds.test.n;
  assert.ok(acc > 0.3 && acc < 0.9, `nearest-centroid accuracy ${acc}`);
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
