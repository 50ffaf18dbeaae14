// .npz (zip of .npy) reader/writer and the MedMNIST loader.
// We read the zip central directory ourselves (no dependency) and inflate
// members with node:zlib. Zip64 records are understood when present (numpy
// writes them for large members); archives too big for one Buffer are refused.
import { createHash } from 'node:crypto';
import { closeSync, createWriteStream, existsSync, openSync, readFileSync, readSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as bufferConstants } from 'node:buffer';
import * as zlib from 'node:zlib';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { type Dataset, type Split, type Task, makeDataset } from './dataset.ts';
import { resize } from './image.ts';
import { makeDirs, writeFileAtomic } from './util.ts';

export { writeFileAtomic };

// ---------------------------------------------------------------- CRC32

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

// node:zlib has a native crc32 from Node 20.15 / 22.2; the table version covers older releases.
const nativeCrc32 = (zlib as unknown as { crc32?: (d: Uint8Array, v?: number) => number }).crc32;

/** CRC-32 (zip/PNG polynomial). Pass a previous value to continue a running CRC. */
export function crc32(data: Uint8Array, prev = 0): number {
  if (nativeCrc32) return nativeCrc32(data, prev) >>> 0;
  let c = (prev ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------- zip

export interface ZipEntry {
  name: string;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOC = 0x07064b50;
const SIG_CD = 0x02014b50;
const SIG_LOCAL = 0x04034b50;

function u64(buf: Buffer, off: number, file: string): number {
  const v = buf.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${file}: zip64 value too large`);
  return Number(v);
}

/** Parse the central directory of a zip held in memory. */
export function readZipEntries(buf: Buffer, file = '<zip>'): ZipEntry[] {
  // End-of-central-directory record: last 22 bytes plus up to 64 KiB comment.
  let eocd = -1;
  const stop = Math.max(0, buf.length - 22 - 65535);
  for (let p = buf.length - 22; p >= stop; p--) {
    if (buf.readUInt32LE(p) === SIG_EOCD) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) {
    const head = buf.subarray(0, 6).toString('latin1');
    const hint = head.startsWith('\x93NUMPY') ? ' (this is a bare .npy file, not an .npz)' : buf.length === 0 ? ' (file is empty)' : '';
    throw new Error(`${file}: not a zip/npz archive (no end-of-central-directory record)${hint}; truncated download?`);
  }
  let count = buf.readUInt16LE(eocd + 10);
  let cdSize = buf.readUInt32LE(eocd + 12);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    // Zip64: the locator sits just before the classic EOCD.
    const loc = eocd - 20;
    if (loc < 0 || buf.readUInt32LE(loc) !== SIG_EOCD64_LOC)
      throw new Error(`${file}: zip64 archive without a zip64 end-of-central-directory locator (unsupported layout)`);
    const rec = u64(buf, loc + 8, file);
    if (rec + 56 > buf.length || buf.readUInt32LE(rec) !== SIG_EOCD64) throw new Error(`${file}: corrupt zip64 end-of-central-directory record`);
    count = u64(buf, rec + 32, file);
    cdSize = u64(buf, rec + 40, file);
    cdOffset = u64(buf, rec + 48, file);
  }
  if (cdOffset + cdSize > buf.length) throw new Error(`${file}: central directory lies outside the file (truncated download?)`);
  const entries: ZipEntry[] = [];
  let p = cdOffset;
  for (let k = 0; k < count; k++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== SIG_CD) throw new Error(`${file}: corrupt central directory entry ${k}`);
    const flags = buf.readUInt16LE(p + 8);
    const method = buf.readUInt16LE(p + 10);
    const crc = buf.readUInt32LE(p + 16);
    let compressedSize = buf.readUInt32LE(p + 20);
    let size = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    let localHeaderOffset = buf.readUInt32LE(p + 42);
    const name = buf.subarray(p + 46, p + 46 + nameLen).toString(flags & 0x800 ? 'utf8' : 'latin1');
    // Zip64 extra field (id 1) holds the 64-bit versions of the saturated fields, in this order.
    let e = p + 46 + nameLen;
    const eEnd = e + extraLen;
    while (e + 4 <= eEnd) {
      const id = buf.readUInt16LE(e);
      const len = buf.readUInt16LE(e + 2);
      if (id === 1) {
        let q = e + 4;
        if (size === 0xffffffff) (size = u64(buf, q, file)), (q += 8);
        if (compressedSize === 0xffffffff) (compressedSize = u64(buf, q, file)), (q += 8);
        if (localHeaderOffset === 0xffffffff) (localHeaderOffset = u64(buf, q, file)), (q += 8);
      }
      e += 4 + len;
    }
    if (flags & 1) throw new Error(`${file}: member ${name} is encrypted (unsupported)`);
    entries.push({ name, method, crc32: crc, compressedSize, size, localHeaderOffset });
    p = eEnd + commentLen;
  }
  return entries;
}

/** Decompress one member and check its CRC. */
export function extractZipEntry(buf: Buffer, entry: ZipEntry, file = '<zip>'): Buffer {
  const lh = entry.localHeaderOffset;
  if (lh + 30 > buf.length || buf.readUInt32LE(lh) !== SIG_LOCAL) throw new Error(`${file}: corrupt local header for member ${entry.name}`);
  const start = lh + 30 + buf.readUInt16LE(lh + 26) + buf.readUInt16LE(lh + 28);
  const end = start + entry.compressedSize;
  if (end > buf.length) throw new Error(`${file}: member ${entry.name} extends past end of file (truncated download?)`);
  const raw = buf.subarray(start, end);
  let out: Buffer;
  if (entry.method === 0) out = raw;
  else if (entry.method === 8) {
    try {
      out = inflateRawSync(raw);
    } catch (e) {
      throw new Error(`${file}: cannot inflate member ${entry.name}: ${(e as Error).message}`);
    }
  } else throw new Error(`${file}: member ${entry.name} uses compression method ${entry.method}; only stored (0) and deflate (8) are supported`);
  if (out.length !== entry.size) throw new Error(`${file}: member ${entry.name} has ${out.length} bytes, directory says ${entry.size}`);
  if (crc32(out) !== entry.crc32) throw new Error(`${file}: CRC mismatch in member ${entry.name} (corrupt file)`);
  return out;
}

function readWhole(path: string): Buffer {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    throw new Error(`cannot open ${path}: ${(e as Error).message}`);
  }
  if (size > bufferConstants.MAX_LENGTH) throw new Error(`${path}: ${size} bytes is larger than a Node Buffer can hold (${bufferConstants.MAX_LENGTH}); use a smaller image size`);
  return readFileSync(path);
}

/** All members of a zip file (path or buffer), decompressed, by name. */
export function readZip(src: string | Buffer, file = typeof src === 'string' ? src : '<zip>'): Map<string, Buffer> {
  const buf = typeof src === 'string' ? readWhole(src) : src;
  const out = new Map<string, Buffer>();
  for (const e of readZipEntries(buf, file)) {
    if (e.name.endsWith('/')) continue;
    out.set(e.name, extractZipEntry(buf, e, file));
  }
  return out;
}

function dosDateTime(d: Date): [number, number] {
  const time = (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1);
  const date = ((Math.max(1980, d.getFullYear()) - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate();
  return [time, date];
}

/**
 * Build a zip in memory. `compress` deflates members (level 6); `zip64` forces
 * zip64 extra fields and end records (used by tests to exercise that path).
 */
export function writeZip(members: { name: string; data: Uint8Array }[], opts: { compress?: boolean; zip64?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  const [time, date] = dosDateTime(new Date());
  const z64 = !!opts.zip64;
  for (const m of members) {
    const name = Buffer.from(m.name, 'utf8');
    const data = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
    const body = opts.compress ? deflateRawSync(data) : data;
    const method = opts.compress ? 8 : 0;
    const crc = crc32(data);
    const extraL = z64 ? Buffer.alloc(20) : Buffer.alloc(0);
    if (z64) {
      extraL.writeUInt16LE(1, 0);
      extraL.writeUInt16LE(16, 2);
      extraL.writeBigUInt64LE(BigInt(data.length), 4);
      extraL.writeBigUInt64LE(BigInt(body.length), 12);
    }
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(SIG_LOCAL, 0);
    lh.writeUInt16LE(z64 ? 45 : 20, 4);
    lh.writeUInt16LE(0x800, 6); // UTF-8 names
    lh.writeUInt16LE(method, 8);
    lh.writeUInt16LE(time, 10);
    lh.writeUInt16LE(date, 12);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(z64 ? 0xffffffff : body.length, 18);
    lh.writeUInt32LE(z64 ? 0xffffffff : data.length, 22);
    lh.writeUInt16LE(name.length, 26);
    lh.writeUInt16LE(extraL.length, 28);
    parts.push(lh, name, extraL, body);
    const extraC = z64 ? Buffer.alloc(28) : Buffer.alloc(0);
    if (z64) {
      extraC.writeUInt16LE(1, 0);
      extraC.writeUInt16LE(24, 2);
      extraC.writeBigUInt64LE(BigInt(data.length), 4);
      extraC.writeBigUInt64LE(BigInt(body.length), 12);
      extraC.writeBigUInt64LE(BigInt(offset), 20);
    }
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(SIG_CD, 0);
    ch.writeUInt16LE(z64 ? 45 : 20, 4);
    ch.writeUInt16LE(z64 ? 45 : 20, 6);
    ch.writeUInt16LE(0x800, 8);
    ch.writeUInt16LE(method, 10);
    ch.writeUInt16LE(time, 12);
    ch.writeUInt16LE(date, 14);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(z64 ? 0xffffffff : body.length, 20);
    ch.writeUInt32LE(z64 ? 0xffffffff : data.length, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt16LE(extraC.length, 30);
    ch.writeUInt32LE(z64 ? 0xffffffff : offset, 42);
    central.push(ch, name, extraC);
    offset += lh.length + name.length + extraL.length + body.length;
  }
  const cd = Buffer.concat(central);
  const tail: Buffer[] = [];
  if (z64) {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(SIG_EOCD64, 0);
    rec.writeBigUInt64LE(44n, 4);
    rec.writeUInt16LE(45, 12);
    rec.writeUInt16LE(45, 14);
    rec.writeBigUInt64LE(BigInt(members.length), 24);
    rec.writeBigUInt64LE(BigInt(members.length), 32);
    rec.writeBigUInt64LE(BigInt(cd.length), 40);
    rec.writeBigUInt64LE(BigInt(offset), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(SIG_EOCD64_LOC, 0);
    loc.writeBigUInt64LE(BigInt(offset + cd.length), 8);
    loc.writeUInt32LE(1, 16);
    tail.push(rec, loc);
  }
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(SIG_EOCD, 0);
  eocd.writeUInt16LE(z64 ? 0xffff : members.length, 8);
  eocd.writeUInt16LE(z64 ? 0xffff : members.length, 10);
  eocd.writeUInt32LE(z64 ? 0xffffffff : cd.length, 12);
  eocd.writeUInt32LE(z64 ? 0xffffffff : offset, 16);
  return Buffer.concat([...parts, cd, ...tail, eocd]);
}

// ---------------------------------------------------------------- npy

export type NpyDtype = '|u1' | '|i1' | '|b1' | '<u2' | '<i2' | '<i4' | '<u4' | '<i8' | '<f4' | '<f8';
export type NpyData = Uint8Array | Int8Array | Uint16Array | Int16Array | Int32Array | Uint32Array | BigInt64Array | Float32Array | Float64Array;

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  data: NpyData;
}

const DTYPES: Record<NpyDtype, { bytes: number; make: (b: ArrayBuffer, n: number) => NpyData }> = {
  '|u1': { bytes: 1, make: (b, n) => new Uint8Array(b, 0, n) },
  '|b1': { bytes: 1, make: (b, n) => new Uint8Array(b, 0, n) },
  '|i1': { bytes: 1, make: (b, n) => new Int8Array(b, 0, n) },
  '<u2': { bytes: 2, make: (b, n) => new Uint16Array(b, 0, n) },
  '<i2': { bytes: 2, make: (b, n) => new Int16Array(b, 0, n) },
  '<i4': { bytes: 4, make: (b, n) => new Int32Array(b, 0, n) },
  '<u4': { bytes: 4, make: (b, n) => new Uint32Array(b, 0, n) },
  '<i8': { bytes: 8, make: (b, n) => new BigInt64Array(b, 0, n) },
  '<f4': { bytes: 4, make: (b, n) => new Float32Array(b, 0, n) },
  '<f8': { bytes: 8, make: (b, n) => new Float64Array(b, 0, n) },
};
// numpy writes single-byte types with '|' but some writers use '<'/'='.
const DTYPE_ALIASES: Record<string, NpyDtype> = { '<u1': '|u1', '=u1': '|u1', '<i1': '|i1', '<b1': '|b1', '|bool': '|b1' };

/** Parse a .npy buffer. `where` names the file/member in errors. */
export function parseNpy(buf: Uint8Array, where = '<npy>'): NpyArray {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 10 || b[0] !== 0x93 || b.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${where}: not a .npy array (bad magic)`);
  const major = b[6];
  let hlen: number;
  let hstart: number;
  if (major === 1) {
    hlen = b.readUInt16LE(8);
    hstart = 10;
  } else if (major === 2 || major === 3) {
    hlen = b.readUInt32LE(8);
    hstart = 12;
  } else throw new Error(`${where}: unsupported .npy format version ${major}.${b[7]}`);
  if (hstart + hlen > b.length) throw new Error(`${where}: header runs past the end of the data (truncated?)`);
  const header = b.toString(major === 3 ? 'utf8' : 'latin1', hstart, hstart + hlen);
  const descrM = /['"]descr['"]\s*:\s*['"]([^'"]+)['"]/.exec(header);
  const fortranM = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header);
  const shapeM = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descrM || !fortranM || !shapeM) throw new Error(`${where}: cannot parse .npy header ${JSON.stringify(header.trim())}`);
  const raw = descrM[1];
  const dtype = (DTYPE_ALIASES[raw] ?? raw) as NpyDtype;
  const info = DTYPES[dtype];
  if (!info)
    throw new Error(`${where}: unsupported dtype '${raw}' (supported: |u1 |i1 |b1 <u2 <i2 <i4 <u4 <i8 <f4 <f8, little-endian, not object/structured)`);
  if (fortranM[1] === 'True') throw new Error(`${where}: Fortran-ordered arrays are not supported (save with np.ascontiguousarray)`);
  const shape = shapeM[1]
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const v = Number(s.replace(/L$/, ''));
      if (!Number.isInteger(v) || v < 0) throw new Error(`${where}: bad shape entry '${s}'`);
      return v;
    });
  const count = shape.reduce((a, v) => a * v, 1);
  const dataStart = hstart + hlen;
  const need = count * info.bytes;
  if (b.length - dataStart < need) throw new Error(`${where}: data has ${b.length - dataStart} bytes, shape ${JSON.stringify(shape)} ${raw} needs ${need} (truncated?)`);
  // Byte arrays need no alignment: return a view (no copy of possibly large image arrays).
  if (info.bytes === 1) {
    const view = b.subarray(dataStart, dataStart + need);
    return { dtype, shape, data: dtype === '|i1' ? new Int8Array(view.buffer, view.byteOffset, need) : new Uint8Array(view.buffer, view.byteOffset, need) };
  }
  // Copy into a fresh, aligned ArrayBuffer (members may sit at odd offsets).
  const ab = new ArrayBuffer(need);
  new Uint8Array(ab).set(b.subarray(dataStart, dataStart + need));
  return { dtype, shape, data: info.make(ab, count) };
}

function dtypeOf(data: NpyData): NpyDtype {
  if (data instanceof Uint8Array) return '|u1';
  if (data instanceof Int8Array) return '|i1';
  if (data instanceof Uint16Array) return '<u2';
  if (data instanceof Int16Array) return '<i2';
  if (data instanceof Int32Array) return '<i4';
  if (data instanceof Uint32Array) return '<u4';
  if (data instanceof BigInt64Array) return '<i8';
  if (data instanceof Float32Array) return '<f4';
  return '<f8';
}

/** Serialise a typed array as .npy v1.0 (header padded to 64 bytes, like numpy). */
export function encodeNpy(data: NpyData, shape: number[]): Buffer {
  const count = shape.reduce((a, v) => a * v, 1);
  if (count !== data.length) throw new Error(`encodeNpy: shape ${JSON.stringify(shape)} has ${count} elements, data has ${data.length}`);
  const shp = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${dtypeOf(data)}', 'fortran_order': False, 'shape': ${shp}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre[0] = 0x93;
  pre.write('NUMPY', 1, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

/** All arrays of an .npz, keyed without the `.npy` suffix. Non-.npy members are ignored. */
export function readNpz(src: string | Buffer, file = typeof src === 'string' ? src : '<npz>'): Map<string, NpyArray> {
  const out = new Map<string, NpyArray>();
  for (const [name, data] of readZip(src, file)) {
    if (!name.endsWith('.npy')) continue;
    out.set(name.slice(0, -4), parseNpy(data, `${file}: member ${name}`));
  }
  return out;
}

/** Build .npz bytes. Extra raw members (e.g. meta.json) may be added via `extra`. */
export function encodeNpz(
  arrays: Record<string, { data: NpyData; shape: number[] }>,
  opts: { compress?: boolean; zip64?: boolean; extra?: Record<string, Uint8Array> } = {},
): Buffer {
  const members = Object.entries(arrays).map(([k, a]) => ({ name: `${k}.npy`, data: encodeNpy(a.data, a.shape) as Uint8Array }));
  for (const [k, v] of Object.entries(opts.extra ?? {})) members.push({ name: k, data: v });
  return writeZip(members, opts);
}

export function writeNpz(path: string, arrays: Record<string, { data: NpyData; shape: number[] }>, opts: { compress?: boolean; extra?: Record<string, Uint8Array> } = {}): void {
  writeFileAtomic(path, encodeNpz(arrays, opts));
}

// ---------------------------------------------------------------- MedMNIST

export interface MedMNISTInfo {
  classes: string[];
  /** As MedMNIST's info.py says; ordinal regression (retinamnist) is treated as multiclass. */
  task: Task;
  channels: number;
  /** MD5 of the official v3 (Zenodo record 10519652) files by image size. */
  md5: Record<number, string>;
}

const ORGAN = ['bladder', 'femur-left', 'femur-right', 'heart', 'kidney-left', 'kidney-right', 'liver', 'lung-left', 'lung-right', 'pancreas', 'spleen'];

/** The 2D MedMNIST sets (class names and checksums copied from MedMNIST's info.py). */
export const MEDMNIST_INFO: Record<string, MedMNISTInfo> = {
  pathmnist: {
    classes: ['adipose', 'background', 'debris', 'lymphocytes', 'mucus', 'smooth muscle', 'normal colon mucosa', 'cancer-associated stroma', 'colorectal adenocarcinoma epithelium'],
    task: 'multiclass', channels: 3,
    md5: { 28: 'a8b06965200029087d5bd730944a56c1', 64: '55aa9c1e0525abe5a6b9d8343a507616', 128: 'ac42d08fb904d92c244187169d1fd1d9', 224: '2c51a510bcdc9cf8ddb2af93af1eadec' },
  },
  chestmnist: {
    classes: ['atelectasis', 'cardiomegaly', 'effusion', 'infiltration', 'mass', 'nodule', 'pneumonia', 'pneumothorax', 'consolidation', 'edema', 'emphysema', 'fibrosis', 'pleural', 'hernia'],
    task: 'multilabel', channels: 1,
    md5: { 28: '02c8a6516a18b556561a56cbdd36c4a8', 64: '9de6cd0b934ebb5b7426cfba5efbae16', 128: 'db107e5590b27930b62dbaf558aebee3', 224: '45bd33e6f06c3e8cdb481c74a89152aa' },
  },
  dermamnist: {
    classes: ['actinic keratoses and intraepithelial carcinoma', 'basal cell carcinoma', 'benign keratosis-like lesions', 'dermatofibroma', 'melanoma', 'melanocytic nevi', 'vascular lesions'],
    task: 'multiclass', channels: 3,
    md5: { 28: '0744692d530f8e62ec473284d019b0c7', 64: 'b70a2f5635c6199aeaa28c31d7202e1f', 128: '2defd784463fa5243564e855ed717de1', 224: '8974907d8e169bef5f5b96bc506ae45d' },
  },
  octmnist: {
    classes: ['choroidal neovascularization', 'diabetic macular edema', 'drusen', 'normal'],
    task: 'multiclass', channels: 1,
    md5: { 28: 'c68d92d5b585d8d81f7112f81e2d0842', 64: 'e229e9440236b774d9f0dfef9d07bdaf', 128: '0a97e76651ace45c5d943ee3f65b63ae', 224: 'abc493b6d529d5de7569faaef2773ba3' },
  },
  pneumoniamnist: {
    classes: ['normal', 'pneumonia'],
    task: 'binary', channels: 1,
    md5: { 28: '28209eda62fecd6e6a2d98b1501bb15f', 64: '8f4eceb4ccffa70c672198ea285246c6', 128: '05b46931834c231683c68f40c47b2971', 224: 'd6a3c71de1b945ea11211b03746c1fe1' },
  },
  retinamnist: {
    classes: ['0', '1', '2', '3', '4'],
    task: 'multiclass', channels: 3,
    md5: { 28: 'bd4c0672f1bba3e3a89f0e4e876791e4', 64: 'afda852cc34dcda56f86ad2b2457dbcc', 128: 'e48e916a24454daf90583d4e6efb1a18', 224: 'eae7e3b6f3fcbda4ae613ebdcbe35348' },
  },
  breastmnist: {
    classes: ['malignant', 'normal, benign'],
    task: 'binary', channels: 1,
    md5: { 28: '750601b1f35ba3300ea97c75c52ff8f6', 64: '742edef2a1fd1524b2efff4bd7ba9364', 128: '363e4b3f8d712e9b5de15470a2aaadf1', 224: 'b56378a6eefa9fed602bb16d192d4c8b' },
  },
  bloodmnist: {
    classes: ['basophil', 'eosinophil', 'erythroblast', 'immature granulocytes(myelocytes, metamyelocytes and promyelocytes)', 'lymphocyte', 'monocyte', 'neutrophil', 'platelet'],
    task: 'multiclass', channels: 3,
    md5: { 28: '7053d0359d879ad8a5505303e11de1dc', 64: '2b94928a2ae4916078ca51e05b6b800b', 128: 'adace1e0ed228fccda1f39692059dd4c', 224: 'b718ff6835fcbdb22ba9eacccd7b2601' },
  },
  tissuemnist: {
    classes: ['Collecting Duct, Connecting Tubule', 'Distal Convoluted Tubule', 'Glomerular endothelial cells', 'Interstitial endothelial cells', 'Leukocytes', 'Podocytes', 'Proximal Tubule Segments', 'Thick Ascending Limb'],
    task: 'multiclass', channels: 1,
    md5: { 28: 'ebe78ee8b05294063de985d821c1c34b', 64: '123ece2eba09d0aa5d698fda57103344', 128: '61b955355d7425a89687b06cca3ce0c2', 224: 'b077128c4a949f0a4eb01517f9037b9c' },
  },
  organamnist: {
    classes: ORGAN, task: 'multiclass', channels: 1,
    md5: { 28: '68e3f8846a6bd62f0c9bf841c0d9eacc', 64: '2dcccc29b88e6da5a01161ef20cda288', 128: 'eeae80d0a227a8d099027e1b3cfd3b60', 224: '50747347e05c87dd3aaf92c49f9f3170' },
  },
  organcmnist: {
    classes: ORGAN, task: 'multiclass', channels: 1,
    md5: { 28: 'b9ceb9546e10131b32923c5bbeaea2b1', 64: '3ce34a8724ea6f548e6db4744d03b6a9', 128: '773c1f009daa3fe5d9a2a201b2a7ed94', 224: '050f5e875dc056f6768abf94ec9995d1' },
  },
  organsmnist: {
    classes: ORGAN, task: 'multiclass', channels: 1,
    md5: { 28: '9ab87b696fb54e2a387ebe992d6ed5f1', 64: '53a6d115339d874c25e309a994ff46d3', 128: 'ded0c5fa01a95dc4978b956f613e9b8e', 224: 'b354719e553fbbb2513d5533f52a4cb1' },
  },
};

/** Image sizes published for the 2D sets. */
export const MEDMNIST_SIZES = [28, 64, 128, 224] as const;

export const MEDMNIST_DEFAULT_URL = 'https://zenodo.org/records/10519652/files';

/** Repository root (kd/data/ -> ../..), used to find ../shared/data. */
export function repoRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

export function defaultCacheDir(): string {
  return process.env.ROSKD_CACHE || join(homedir(), '.cache', 'roskd');
}

function defaultSearchDirs(): string[] {
  return [resolve(repoRoot(), '..', 'shared', 'data')];
}

/** Paths checked, in order: each search dir, the cache dir itself, then <cache>/medmnist. */
function localCandidates(name: string, size: number, opts: Pick<ResolveOptions, 'searchDirs' | 'cacheDir'>): string[] {
  const file = `${medmnistStem(name, size)}.npz`;
  const cache = opts.cacheDir ?? defaultCacheDir();
  return [...(opts.searchDirs ?? defaultSearchDirs()), cache, join(cache, 'medmnist')].map((d) => join(d, file));
}

/** An existing local copy of NAME(_SIZE).npz, or undefined. */
export function findLocalMedMNIST(name: string, size: number, opts: Pick<ResolveOptions, 'searchDirs' | 'cacheDir'> = {}): string | undefined {
  return localCandidates(name, size, opts).find((p) => existsSync(p));
}

/** File stem for a name at a size: pneumoniamnist / pneumoniamnist_64. */
function medmnistStem(name: string, size: number): string {
  return size === 28 ? name : `${name}_${size}`;
}

/** Smallest official size >= wanted (shrinking later beats enlarging), else the largest. */
export function medmnistSourceSize(wanted: number | undefined): number {
  if (wanted === undefined) return 28;
  for (const s of MEDMNIST_SIZES) if (s >= wanted) return s;
  return 224;
}

export interface ResolveOptions {
  /** Official image size of the file to find (28, 64, 128, 224). Default 28. */
  size?: number;
  /** Defaults to $ROSKD_CACHE or ~/.cache/roskd. Files go to <cacheDir>/medmnist/. */
  cacheDir?: string;
  /** Default true, unless $ROSKD_OFFLINE=1. */
  allowDownload?: boolean;
  /** Base URL (files are <base>/<stem>.npz?download=1). Default $ROSKD_MEDMNIST_URL or the Zenodo record. */
  baseUrl?: string;
  /** Directories searched before the cache. Default [<repo>/../shared/data]. */
  searchDirs?: string[];
  /** Check the MD5 of downloads against MedMNIST's published value when known. Default true. */
  verify?: boolean;
  /** Progress / info messages (default: silent). */
  log?: (msg: string) => void;
}

/** True if the last 64 KiB of a file hold a zip end-of-central-directory record. */
function hasZipTail(path: string): boolean {
  const size = statSync(path).size;
  const len = Math.min(size, 22 + 65535);
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    for (let p = len - 22; p >= 0; p--) if (buf.readUInt32LE(p) === SIG_EOCD) return true;
    return false;
  } finally {
    closeSync(fd);
  }
}

/**
 * Find NAME.npz (or NAME_SIZE.npz): ../shared/data, then the cache dir, else
 * download it into the cache (temp file, verified, then renamed).
 */
export async function resolveMedMNIST(name: string, opts: ResolveOptions = {}): Promise<string> {
  const size = opts.size ?? 28;
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`resolveMedMNIST: bad dataset name ${JSON.stringify(name)} (expected e.g. pneumoniamnist)`);
  const stem = medmnistStem(name, size);
  const file = `${stem}.npz`;
  const searchDirs = opts.searchDirs ?? defaultSearchDirs();
  const cacheDir = join(opts.cacheDir ?? defaultCacheDir(), 'medmnist');
  const local = findLocalMedMNIST(name, size, opts);
  if (local) return local;
  const tried = localCandidates(name, size, opts);
  const allow = opts.allowDownload ?? process.env.ROSKD_OFFLINE !== '1';
  const base = (opts.baseUrl ?? process.env.ROSKD_MEDMNIST_URL ?? MEDMNIST_DEFAULT_URL).replace(/\/+$/, '');
  const url = `${base}/${file}?download=1`;
  if (!allow) throw new Error(`${file} not found (looked in ${tried.join(', ')}) and downloading is disabled; fetch it from ${url}`);
  const dest = join(cacheDir, file);
  makeDirs(cacheDir, 'the data cache (ROSKD_CACHE)');
  const tmp = `${dest}.part-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const log = opts.log ?? (() => {});
  log(`downloading ${url} -> ${dest}`);
  const hint = `Offline? Copy ${file} into ${searchDirs[0] ?? cacheDir} or ${cacheDir}, or set ROSKD_MEDMNIST_URL to a mirror.`;
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow' });
  } catch (e) {
    const cause = (e as { cause?: { message?: string; code?: string } }).cause;
    throw new Error(`could not download ${url}: ${cause?.code ?? cause?.message ?? (e as Error).message}. ${hint}`);
  }
  if (!res.ok || !res.body) throw new Error(`could not download ${url}: HTTP ${res.status} ${res.statusText}. ${hint}`);
  const md5 = createHash('md5');
  try {
    // Hash while streaming so multi-GB files are never held in memory.
    await pipeline(
      Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
      async function* (src: AsyncIterable<Buffer>) {
        for await (const chunk of src) {
          md5.update(chunk);
          yield chunk;
        }
      },
      createWriteStream(tmp),
    );
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {}
    throw new Error(`could not download ${url}: ${(e as Error).message}. ${hint}`);
  }
  const expected = MEDMNIST_INFO[name]?.md5[size];
  const got = md5.digest('hex');
  let problem = '';
  if (expected && opts.verify !== false && got !== expected) problem = `MD5 ${got}, expected ${expected} (corrupt or changed upstream; pass verify: false to accept)`;
  else if (!hasZipTail(tmp)) problem = 'not a zip/npz archive (an HTML error page or a truncated transfer?)';
  if (problem) {
    unlinkSync(tmp);
    throw new Error(`downloaded ${url}: ${problem}`);
  }
  renameSync(tmp, dest);
  log(`saved ${dest}`);
  return dest;
}

function toUint8Images(a: NpyArray, where: string): Uint8Array {
  if (a.data instanceof Uint8Array) return a.data;
  // Rare non-uint8 exports: floats in [0,1] are scaled, everything is clamped to 0..255.
  let max = 0;
  for (let i = 0; i < a.data.length; i++) max = Math.max(max, Number(a.data[i]));
  const scale = (a.dtype === '<f4' || a.dtype === '<f8') && max <= 1 ? 255 : 1;
  const out = new Uint8Array(a.data.length);
  for (let i = 0; i < a.data.length; i++) out[i] = Math.max(0, Math.min(255, Math.round(Number(a.data[i]) * scale)));
  if (!Number.isFinite(max)) throw new Error(`${where}: non-finite pixel values`);
  return out;
}

function toNumberArray(a: NpyArray): Float64Array {
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < a.data.length; i++) out[i] = Number(a.data[i]);
  return out;
}

export interface MedMNISTOptions extends ResolveOptions {
  /** Image size wanted; for a name picks the official file, and resizes when it differs. */
  size?: number;
}

/**
 * Build a Dataset from the arrays of a MedMNIST-style npz: {train,val,test}_{images,labels}.
 * Images (N,H,W) or (N,H,W,C) -> NCHW uint8. Labels (N,1) -> single-label; (N,L>1) -> multilabel.
 */
export function medmnistFromArrays(arrays: Map<string, NpyArray>, name: string, file = name, opts: { size?: number } = {}): Dataset {
  const info = MEDMNIST_INFO[name.toLowerCase()];
  const get = (k: string) => {
    const a = arrays.get(k);
    if (!a) throw new Error(`${file}: missing member ${k}.npy (have: ${[...arrays.keys()].join(', ') || 'none'})`);
    return a;
  };
  let channels = 0;
  let height = 0;
  let width = 0;
  let labelWidth = 0;
  const raw: Record<string, { images: Uint8Array; labels: Float64Array; n: number }> = {};
  for (const sp of ['train', 'val', 'test']) {
    const im = get(`${sp}_images`);
    const lb = get(`${sp}_labels`);
    const where = `${file}: member ${sp}_images.npy`;
    let n: number, h: number, w: number, c: number;
    if (im.shape.length === 3) [n, h, w, c] = [im.shape[0], im.shape[1], im.shape[2], 1];
    else if (im.shape.length === 4 && (im.shape[3] === 1 || im.shape[3] === 3)) [n, h, w, c] = im.shape as [number, number, number, number];
    else throw new Error(`${where}: shape ${JSON.stringify(im.shape)} is not (N,H,W) or (N,H,W,1|3) (3D volumes are not supported)`);
    if (sp === 'train') [channels, height, width] = [c, h, w];
    else if (c !== channels || h !== height || w !== width)
      throw new Error(`${where}: image shape ${c}x${h}x${w} differs from train ${channels}x${height}x${width}`);
    const lw = lb.shape.length === 1 ? 1 : lb.shape.length === 2 ? lb.shape[1] : -1;
    if (lw < 1 || lb.shape[0] !== n)
      throw new Error(`${file}: member ${sp}_labels.npy has shape ${JSON.stringify(lb.shape)}, expected (${n},) or (${n}, L)`);
    if (sp === 'train') labelWidth = lw;
    else if (lw !== labelWidth) throw new Error(`${file}: ${sp}_labels has ${lw} columns, train has ${labelWidth}`);
    let px = toUint8Images(im, where);
    if (c > 1) {
      // HWC -> CHW per image.
      const hw = h * w;
      const out = new Uint8Array(px.length);
      for (let i = 0; i < n; i++) {
        const base = i * hw * c;
        for (let p = 0; p < hw; p++) for (let k = 0; k < c; k++) out[base + k * hw + p] = px[base + p * c + k];
      }
      px = out;
    }
    raw[sp] = { images: px, labels: toNumberArray(lb), n };
  }
  // Task and classes from label shape / distinct values, the table when the name is known.
  let task: Task;
  let classes: string[];
  if (labelWidth > 1) {
    task = 'multilabel';
    classes = info && info.classes.length === labelWidth ? info.classes : Array.from({ length: labelWidth }, (_, k) => `label_${k}`);
    for (const sp of Object.values(raw))
      for (const v of sp.labels) if (v !== 0 && v !== 1) throw new Error(`${file}: multilabel labels must be 0/1, found ${v}`);
  } else {
    let max = 0;
    const distinct = new Set<number>();
    for (const sp of Object.values(raw))
      for (const v of sp.labels) {
        if (!Number.isInteger(v) || v < 0) throw new Error(`${file}: class labels must be non-negative integers, found ${v}`);
        distinct.add(v);
        max = Math.max(max, v);
      }
    let C = max + 1;
    if (info && !(info.task === 'multilabel') && info.classes.length >= C) C = info.classes.length;
    classes = info && info.classes.length === C ? info.classes : Array.from({ length: C }, (_, k) => `class_${k}`);
    task = C <= 2 && distinct.size <= 2 ? 'binary' : 'multiclass';
    if (C === 1) classes = ['class_0', 'class_1']; // degenerate file: keep a binary head
  }
  const target = opts.size;
  const outH = target ?? height;
  const outW = target ?? width;
  const mk = (sp: { images: Uint8Array; labels: Float64Array; n: number }): Split => {
    let images = sp.images;
    if (outH !== height || outW !== width) {
      const src = channels * height * width;
      const dst = channels * outH * outW;
      const out = new Uint8Array(sp.n * dst);
      for (let i = 0; i < sp.n; i++) out.set(resize(images.subarray(i * src, (i + 1) * src), channels, height, width, outH, outW), i * dst);
      images = out;
    }
    const labels = task === 'multilabel' ? Uint8Array.from(sp.labels) : Int32Array.from(sp.labels);
    return { images, labels, n: sp.n };
  };
  return makeDataset(
    { name: name.toLowerCase(), task, classes, channels, height: outH, width: outW },
    { train: mk(raw.train), val: mk(raw.val), test: mk(raw.test) },
  );
}

/** Load a MedMNIST npz from a path (synchronous). The dataset name is taken from the file name. */
export function loadMedMNISTFile(path: string, opts: { size?: number; name?: string } = {}): Dataset {
  const name = opts.name ?? basename(path).replace(/\.npz$/i, '').replace(/_(28|64|128|224)$/, '');
  return medmnistFromArrays(readNpz(path), name, path, { size: opts.size });
}

/**
 * Load a MedMNIST 2D set by path (anything ending in .npz or containing a slash)
 * or by name (`pneumoniamnist`), resolving/downloading it (see resolveMedMNIST).
 */
export async function loadMedMNIST(pathOrName: string, opts: MedMNISTOptions = {}): Promise<Dataset> {
  const isPath = /\.npz$/i.test(pathOrName) || pathOrName.includes('/') || pathOrName.includes('\\');
  if (isPath) return loadMedMNISTFile(pathOrName, { size: opts.size });
  const name = pathOrName.toLowerCase();
  const preferred = medmnistSourceSize(opts.size);
  let path: string | undefined;
  if (opts.size === undefined || !(MEDMNIST_SIZES as readonly number[]).includes(opts.size)) {
    // A size MedMNIST does not publish is resampled anyway, so a copy already on disk beats a
    // download (e.g. size 32 offline with only the 28 px file): preferred, larger, then smaller.
    const order = [preferred, ...MEDMNIST_SIZES.filter((s) => s > preferred), ...MEDMNIST_SIZES.filter((s) => s < preferred).reverse()];
    for (const s of order) if ((path = findLocalMedMNIST(name, s, opts))) break;
  }
  path ??= await resolveMedMNIST(name, { ...opts, size: preferred });
  opts.log?.(`loading ${path}${opts.size !== undefined ? ` at ${opts.size} px` : ''}`);
  return loadMedMNISTFile(path, { size: opts.size, name });
}
