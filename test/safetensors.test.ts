// engine/io/safetensors.ts: the format byte for byte (against PyTorch-written fixtures), GPU
// round trips, clear errors for broken files, atomic writes, and loading into a model.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpuInit, rk } from './helpers.ts';
import {
  loadSafetensors,
  parseSafetensors,
  saveSafetensors,
  serializeSafetensors,
  loadModelWeights,
  SafetensorsError,
  type HostTensor,
} from '../engine/node/safetensors-file.ts';
import { createModel, resnet18, type BasicBlock } from '../models/index.ts';

await gpuInit();

const FIX = new URL('./fixtures/torch/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'roskd-st-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

/** Builds a file by hand from a header object and raw data (for malformed/foreign files). */
function rawFile(header: object | string, data: Uint8Array = new Uint8Array(0)): Buffer {
  const h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

async function throwsAsync(fn: () => Promise<unknown>, re: RegExp, what: string): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    assert.instance(e, Error);
    assert.match((e as Error).message, re, `${what}: ${(e as Error).message}`);
    return e as Error;
  }
  throw new Error(`${what}: did not throw`);
}

test('every PyTorch fixture parses and re-serialises to identical bytes (header order, padding, dtype sort)', async () => {
  const files = readdirSync(FIX).filter((f) => f.endsWith('.safetensors'));
  assert.ok(files.length >= 7, files.join());
  for (const f of files) {
    const st = await loadSafetensors(FIX + f);
    const again = serializeSafetensors(st.tensors, st.metadata);
    assert.ok(Buffer.compare(again, readFileSync(FIX + f)) === 0, `${f} differs after a round trip`);
  }
  const sd = await loadSafetensors(FIX + 'resnet18_w0.125_small.state_dict.safetensors');
  assert.is(sd.metadata, null);
  const nbt = sd.tensors.get('bn1.num_batches_tracked')!;
  assert.is(nbt.dtype, 'I64');
  assert.equal(nbt.shape, []);
  assert.instance(nbt.data, BigInt64Array);
  const w = sd.tensors.get('conv1.weight')!;
  assert.is(w.dtype, 'F32');
  assert.equal(w.shape, [8, 1, 3, 3]);
  assert.instance(w.data, Float32Array);
});

test('save from the GPU: F32, I32, num_batches_tracked as I64 []; safetensors ordering; load gives the values back', async () => {
  const a = rk.tensor([1.5, -2, 3.25, 4, 5, 6], [2, 3]);
  const b = rk.tensor(Int32Array.from([7, -8]), [2], 'i32');
  const n = rk.tensor(Int32Array.from([42]), [], 'i32');
  const s = rk.tensor([0.5], [1]);
  const path = join(dir, 'gpu.safetensors');
  // integer-like names must keep byte order (a JS object would put "10" before "b")
  await saveSafetensors(path, new Map<string, rk.Tensor>([['b', a], ['10', s], ['ints', b], ['bn.num_batches_tracked', n], ['2', s]]), { format: 'pt', note: 'héllo "q"' });
  const bytes = readFileSync(path);
  const hlen = Number(bytes.readBigUInt64LE(0));
  assert.is(hlen % 8, 0);
  const headerText = bytes.subarray(8, 8 + hlen).toString('utf8');
  assert.ok(headerText.startsWith('{"__metadata__":{"format":"pt","note":"héllo \\"q\\""},'), headerText);
  assert.ok(headerText.endsWith('}' + ' '.repeat(headerText.length - headerText.trimEnd().length)) && headerText.length - headerText.trimEnd().length < 8, 'padded with < 8 trailing spaces');
  assert.ok(JSON.parse(headerText));
  const keys = [...headerText.matchAll(/"([^"]+)":\{"dtype"/g)].map((m) => m[1]);
  assert.equal(keys, ['bn.num_batches_tracked', '10', '2', 'b', 'ints'], 'I64 first, then F32 by name, then I32');
  const st = await loadSafetensors(path);
  assert.equal(st.metadata, { format: 'pt', note: 'héllo "q"' });
  assert.equal([...st.tensors.get('b')!.data as Float32Array], [1.5, -2, 3.25, 4, 5, 6]);
  assert.equal(st.tensors.get('b')!.shape, [2, 3]);
  assert.equal(st.tensors.get('ints')!.dtype, 'I32');
  assert.equal([...(st.tensors.get('ints')!.data as Int32Array)], [7, -8]);
  const nb = st.tensors.get('bn.num_batches_tracked')!;
  assert.equal([nb.dtype, nb.shape, (nb.data as BigInt64Array)[0]], ['I64', [], 42n]);
  for (const t of [a, b, n, s]) t.dispose();
  // a plain record works too, and host tensors may be mixed in
  await saveSafetensors(path, { x: rk.tensor([1, 2]), h: { dtype: 'F64', shape: [1], data: Float64Array.of(Math.PI) } as HostTensor });
  const st2 = await loadSafetensors(path);
  assert.is((st2.tensors.get('h')!.data as Float64Array)[0], Math.PI);
  assert.is(st2.metadata, null);
});

test('F16 and BF16 are widened to F32 on load', () => {
  // 1.0, -2.5, 65504 (f16 max), 2^-24 (smallest subnormal); bf16: 1.0, -3.0
  const f16 = Uint16Array.of(0x3c00, 0xc100, 0x7bff, 0x0001);
  const bf16 = Uint16Array.of(0x3f80, 0xc040);
  const data = Buffer.concat([Buffer.from(f16.buffer), Buffer.from(bf16.buffer)]);
  const st = parseSafetensors(
    rawFile({ a: { dtype: 'F16', shape: [4], data_offsets: [0, 8] }, b: { dtype: 'BF16', shape: [2], data_offsets: [8, 12] } }, data),
    'half.safetensors',
  );
  assert.equal([...(st.tensors.get('a')!.data as Float32Array)], [1, -2.5, 65504, 2 ** -24]);
  assert.equal([...(st.tensors.get('b')!.data as Float32Array)], [1, -3]);
  assert.is(st.tensors.get('a')!.dtype, 'F16');
});

test('broken files give clear errors naming the file', async () => {
  const good = readFileSync(FIX + 'resnet18_w0.125_small.state_dict.safetensors');
  const cases: [string, Buffer, RegExp][] = [
    ['short.safetensors', good.subarray(0, 5), /short\.safetensors: truncated/],
    ['header-cut.safetensors', good.subarray(0, 100), /header-cut\.safetensors: truncated: header declares/],
    ['data-cut.safetensors', good.subarray(0, good.length - 10), /data-cut\.safetensors: truncated: the header needs \d+ bytes of tensor data but only \d+/],
    ['garbage.safetensors', rawFile('{"a": [1, 2'), /garbage\.safetensors: bad header: not valid UTF-8 JSON/],
    ['huge.safetensors', Buffer.from('\xff\xff\xff\xff\xff\xff\xff\x7fxxxxxxxx', 'latin1'), /huge\.safetensors: bad header: declared header length/],
    ['f8.safetensors', rawFile({ a: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, new Uint8Array(2)), /f8\.safetensors: unsupported dtype F8_E4M3 for tensor "a"/],
    ['c64.safetensors', rawFile({ a: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)), /c64\.safetensors: unsupported dtype C64/],
    ['size.safetensors', rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), /size\.safetensors: bad header: tensor "a" F32 \[3\] needs 12 bytes/],
    ['hole.safetensors', rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)), /hole\.safetensors: bad header: tensor "a" starts at byte 4/],
    ['tail.safetensors', rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(12)), /tail\.safetensors: bad file: 8 unexpected bytes/],
  ];
  for (const [name, bytes, re] of cases) {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    const e = await throwsAsync(() => loadSafetensors(p), re, name);
    assert.instance(e, SafetensorsError);
    assert.ok(e.message.includes(p), `${name}: the message names the full path`);
  }
  await throwsAsync(() => loadSafetensors(join(dir, 'nope.safetensors')), /nope\.safetensors: cannot read/, 'missing file');
});

test('atomic write: a failed save leaves the previous file intact and no temporary file behind', async () => {
  const path = join(dir, 'atomic.safetensors');
  const t = rk.tensor([1, 2, 3, 4]);
  await saveSafetensors(path, { w: t });
  const before = readFileSync(path);
  const listing = () => readdirSync(dir).filter((f) => f.includes('atomic')).sort();
  // 1) the write itself throws half way (simulated disk failure)
  const probe = await open(join(dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as { write: (...a: unknown[]) => Promise<unknown> };
  await probe.close();
  const realWrite = proto.write;
  let calls = 0;
  proto.write = async function (this: unknown, ...args: unknown[]) {
    if (++calls > 0) throw new Error('EIO: simulated disk failure');
    return realWrite.apply(this, args);
  };
  try {
    const big = rk.zeros([1000]);
    await throwsAsync(() => saveSafetensors(path, { w: big }), /could not write .*atomic\.safetensors \(EIO: simulated disk failure\); any previous file is unchanged/, 'failing write');
    big.dispose();
  } finally {
    proto.write = realWrite;
  }
  assert.ok(calls > 0, 'the simulated failure was hit');
  assert.ok(Buffer.compare(readFileSync(path), before) === 0, 'old file unchanged');
  assert.equal(listing(), ['atomic.safetensors'], 'temporary file removed');
  // 2) a disposed tensor is refused before anything is written
  const gone = rk.tensor([9]);
  gone.dispose();
  await throwsAsync(() => saveSafetensors(path, { w: gone }), /"w" was disposed/, 'disposed tensor');
  assert.ok(Buffer.compare(readFileSync(path), before) === 0);
  // 3) the target directory does not exist: clear error, nothing created
  await throwsAsync(() => saveSafetensors(join(dir, 'no-such-dir', 'x.safetensors'), { w: t }), /could not write/, 'missing directory');
  // a successful save replaces the file
  await saveSafetensors(path, { w: t, v: t });
  assert.equal([...(await loadSafetensors(path)).tensors.keys()].sort(), ['v', 'w']);
  assert.equal(listing(), ['atomic.safetensors']);
  t.dispose();
});

test('a PyTorch state_dict file loads into our resnet18 as is; strict errors list everything; non-strict skips', async () => {
  const src = FIX + 'resnet18_w0.125_small.state_dict.safetensors';
  const opts = { width: 0.125, smallInput: true, inChannels: 1, numClasses: 3, seed: 5 };
  const m = createModel('resnet18', opts);
  const rep = await loadModelWeights(m, src);
  assert.is(rep.loaded.length, 122);
  assert.equal([rep.missing, rep.unexpected, rep.mismatched], [[], [], []]);
  const file = await loadSafetensors(src);
  const sd = m.stateDict();
  for (const [name, t] of sd) {
    const want = file.tensors.get(name)!;
    const got = await t.toArray();
    if (want.dtype === 'I64') assert.is(got[0], Number((want.data as BigInt64Array)[0]), name);
    else assert.ok(Buffer.compare(Buffer.from(got.buffer), Buffer.from((want.data as Float32Array).buffer)) === 0, `${name} copied bit-exactly`);
    t.dispose();
  }
  // save -> identical bytes to what PyTorch wrote (same names, dtypes, order)
  const out = join(dir, 'resave.safetensors');
  const sd2 = m.stateDict();
  await saveSafetensors(out, sd2);
  for (const t of sd2.values()) t.dispose();
  assert.ok(Buffer.compare(readFileSync(out), readFileSync(src)) === 0, 'our save of the loaded model equals the PyTorch file byte for byte');

  // wrong model (4 classes, 3 input channels, one BN buffer dropped, one extra tensor): one strict error lists all
  const st = await loadSafetensors(src);
  st.tensors.delete('layer1.0.bn1.running_var');
  st.tensors.set('extra.weight', { dtype: 'F32', shape: [1], data: Float32Array.of(0) });
  const bad = join(dir, 'wrong.safetensors');
  writeFileSync(bad, serializeSafetensors(st.tensors));
  const other = resnet18({ ...opts, numClasses: 4, inChannels: 3 });
  const e = await throwsAsync(() => loadModelWeights(other, bad), /wrong\.safetensors: weights do not match the model \(strict mode\)/, 'strict');
  assert.match(e.message, /missing from the file \(1\): layer1\.0\.bn1\.running_var/);
  assert.match(e.message, /unexpected in the file \(1\): extra\.weight/);
  assert.match(e.message, /shape mismatch \(3\): conv1\.weight: file F32 \[8, 1, 3, 3\] vs model \[8, 3, 3, 3\], fc\.bias: file F32 \[3\] vs model \[4\], fc\.weight: file F32 \[3, 64\] vs model \[4, 64\]/);
  // non-strict: the mismatches are skipped and reported, the rest is loaded (new classifier head)
  const fcBefore = await other.fc.weight.toArray();
  const r2 = await loadModelWeights(other, bad, { strict: false });
  assert.equal(r2.missing, ['layer1.0.bn1.running_var']);
  assert.equal(r2.unexpected, ['extra.weight']);
  assert.equal(r2.mismatched.length, 3);
  assert.is(r2.loaded.length, 122 - 1 - 3);
  assert.equal([...(await other.fc.weight.toArray())], [...fcBefore], 'fc untouched');
  assert.equal([...(await other.layer4.at<BasicBlock>(1).conv2.weight.toArray())], [...(st.tensors.get('layer4.1.conv2.weight')!.data as Float32Array)]);
  m.dispose();
  other.dispose();
});

test.run();
