// Zip archives held in memory: central-directory reader (zip64 understood when present: numpy
// writes it for large members) and a writer. No file access and no node:* import; deflate and
// inflate come from a codec the caller passes (kd/data/node-files.ts has the node:zlib one), since
// stored members (the decoded-image cache) need none. Archives too big for one buffer are refused
// by the file reader. Plain Uint8Array/DataView (no Node Buffer): the page reads .npz files too.
import { concatBytes, latin1, utf8, utf8Bytes, view } from './bytes.ts';

/**
 * Deflate/inflate of raw (headerless) streams, and optionally a faster CRC-32. inflateRaw must
 * stop once its output would pass maxOutput bytes and throw InflateLimitError (never holding much
 * more than maxOutput in memory): members are checked against their declared size while they
 * inflate, so a deflate bomb with a lying header fails fast.
 */
export interface ZipCodec {
  inflateRaw(data: Uint8Array, maxOutput: number): Uint8Array;
  deflateRaw(data: Uint8Array): Uint8Array;
  crc32?(data: Uint8Array, prev?: number): number;
}

/** Thrown by ZipCodec.inflateRaw when the output would pass maxOutput. */
export class InflateLimitError extends Error {
  constructor(readonly limit: number) {
    super(`inflated data exceeds ${limit} bytes`);
  }
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (zip/PNG polynomial). Pass a previous value to continue a running CRC. */
export function crc32(data: Uint8Array, prev = 0): number {
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

function u64(d: DataView, off: number, file: string): number {
  const v = d.getBigUint64(off, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${file}: zip64 value too large`);
  return Number(v);
}

/** Parse the central directory of a zip held in memory. */
export function readZipEntries(bytes: Uint8Array, file = '<zip>'): ZipEntry[] {
  const buf = bytes;
  const d = view(bytes);
  const u16 = (o: number) => d.getUint16(o, true);
  const u32 = (o: number) => d.getUint32(o, true);
  // End-of-central-directory record: last 22 bytes plus up to 64 KiB comment.
  let eocd = -1;
  const stop = Math.max(0, buf.length - 22 - 65535);
  for (let p = buf.length - 22; p >= stop; p--) {
    if (u32(p) === SIG_EOCD) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) {
    const head = latin1(buf, 0, Math.min(6, buf.length));
    const hint = head.startsWith('\x93NUMPY') ? ' (this is a bare .npy file, not an .npz)' : buf.length === 0 ? ' (file is empty)' : '';
    throw new Error(`${file}: not a zip/npz archive (no end-of-central-directory record)${hint}; truncated download?`);
  }
  let count = u16(eocd + 10);
  let cdSize = u32(eocd + 12);
  let cdOffset = u32(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    // Zip64: the locator sits just before the classic EOCD.
    const loc = eocd - 20;
    if (loc < 0 || u32(loc) !== SIG_EOCD64_LOC)
      throw new Error(`${file}: zip64 archive without a zip64 end-of-central-directory locator (unsupported layout)`);
    const rec = u64(d, loc + 8, file);
    if (rec + 56 > buf.length || u32(rec) !== SIG_EOCD64) throw new Error(`${file}: corrupt zip64 end-of-central-directory record`);
    count = u64(d, rec + 32, file);
    cdSize = u64(d, rec + 40, file);
    cdOffset = u64(d, rec + 48, file);
  }
  if (cdOffset + cdSize > buf.length) throw new Error(`${file}: central directory lies outside the file (truncated download?)`);
  const entries: ZipEntry[] = [];
  let p = cdOffset;
  for (let k = 0; k < count; k++) {
    if (p + 46 > buf.length || u32(p) !== SIG_CD) throw new Error(`${file}: corrupt central directory entry ${k}`);
    const flags = u16(p + 8);
    const method = u16(p + 10);
    const crc = u32(p + 16);
    let compressedSize = u32(p + 20);
    let size = u32(p + 24);
    const nameLen = u16(p + 28);
    const extraLen = u16(p + 30);
    const commentLen = u16(p + 32);
    let localHeaderOffset = u32(p + 42);
    const name = flags & 0x800 ? utf8(buf.subarray(p + 46, p + 46 + nameLen)) : latin1(buf, p + 46, p + 46 + nameLen);
    // Zip64 extra field (id 1) holds the 64-bit versions of the saturated fields, in this order.
    let e = p + 46 + nameLen;
    const eEnd = e + extraLen;
    while (e + 4 <= eEnd) {
      const id = u16(e);
      const len = u16(e + 2);
      if (id === 1) {
        let q = e + 4;
        if (size === 0xffffffff) (size = u64(d, q, file)), (q += 8);
        if (compressedSize === 0xffffffff) (compressedSize = u64(d, q, file)), (q += 8);
        if (localHeaderOffset === 0xffffffff) (localHeaderOffset = u64(d, q, file)), (q += 8);
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
export function extractZipEntry(bytes: Uint8Array, entry: ZipEntry, file = '<zip>', codec?: ZipCodec): Uint8Array {
  const buf = bytes;
  const d = view(bytes);
  const lh = entry.localHeaderOffset;
  if (lh + 30 > buf.length || d.getUint32(lh, true) !== SIG_LOCAL) throw new Error(`${file}: corrupt local header for member ${entry.name}`);
  const start = lh + 30 + d.getUint16(lh + 26, true) + d.getUint16(lh + 28, true);
  const end = start + entry.compressedSize;
  if (end > buf.length) throw new Error(`${file}: member ${entry.name} extends past end of file (truncated download?)`);
  const raw = buf.subarray(start, end);
  let out: Uint8Array;
  if (entry.method === 0) out = raw;
  else if (entry.method === 8) {
    if (!codec) throw new Error(`${file}: member ${entry.name} is deflate-compressed and no inflate codec was given (Node: nodeZipCodec in kd/data/node-files.ts)`);
    // Deflate expands at most 1032:1, so a larger declared size is a lie (refused before allocating).
    if (entry.size > entry.compressedSize * 1032 + 1024)
      throw new Error(`${file}: member ${entry.name} declares ${entry.size} bytes from ${entry.compressedSize} compressed, more than deflate can produce (corrupt file)`);
    // Inflate no further than the declared size (at least 1 byte: Node's zlib limit starts there).
    try {
      out = codec.inflateRaw(raw, Math.max(1, entry.size));
    } catch (e) {
      if (e instanceof InflateLimitError)
        throw new Error(`${file}: member ${entry.name} inflates to more than the ${entry.size} bytes its directory entry declares (corrupt file or a zip bomb); stopped at ${e.limit} bytes`);
      throw new Error(`${file}: cannot inflate member ${entry.name}: ${(e as Error).message}`);
    }
  } else throw new Error(`${file}: member ${entry.name} uses compression method ${entry.method}; only stored (0) and deflate (8) are supported`);
  if (out.length !== entry.size) throw new Error(`${file}: member ${entry.name} has ${out.length} bytes, directory says ${entry.size}`);
  if ((codec?.crc32 ?? crc32)(out) !== entry.crc32) throw new Error(`${file}: CRC mismatch in member ${entry.name} (corrupt file)`);
  return out;
}

/** All members of a zip held in memory, decompressed, by name. `file` names the archive in errors. */
export function readZip(buf: Uint8Array, file = '<zip>', codec?: ZipCodec): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const e of readZipEntries(buf, file)) {
    if (e.name.endsWith('/')) continue;
    out.set(e.name, extractZipEntry(buf, e, file, codec));
  }
  return out;
}

function dosDateTime(d: Date): [number, number] {
  const time = (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1);
  const date = ((Math.max(1980, d.getFullYear()) - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate();
  return [time, date];
}

/**
 * Build a zip in memory. `compress` deflates members with the codec; `zip64` forces
 * zip64 extra fields and end records (used by tests to exercise that path).
 */
export function writeZip(members: { name: string; data: Uint8Array }[], opts: { compress?: boolean; zip64?: boolean; codec?: ZipCodec } = {}): Uint8Array {
  const codec = opts.codec;
  if (opts.compress && !codec) throw new Error('writeZip: compress needs a deflate codec (Node: nodeZipCodec in kd/data/node-files.ts)');
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  const [time, date] = dosDateTime(new Date());
  const z64 = !!opts.zip64;
  for (const m of members) {
    const name = utf8Bytes(m.name);
    const data = m.data;
    const body = opts.compress ? codec!.deflateRaw(data) : data;
    const method = opts.compress ? 8 : 0;
    const crc = (codec?.crc32 ?? crc32)(data);
    const extraL = record(z64 ? 20 : 0);
    if (z64) extraL.u16(1, 0).u16(16, 2).u64(data.length, 4).u64(body.length, 12);
    const lh = record(30)
      .u32(SIG_LOCAL, 0)
      .u16(z64 ? 45 : 20, 4)
      .u16(0x800, 6) // UTF-8 names
      .u16(method, 8)
      .u16(time, 10)
      .u16(date, 12)
      .u32(crc, 14)
      .u32(z64 ? 0xffffffff : body.length, 18)
      .u32(z64 ? 0xffffffff : data.length, 22)
      .u16(name.length, 26)
      .u16(extraL.bytes.length, 28);
    parts.push(lh.bytes, name, extraL.bytes, body);
    const extraC = record(z64 ? 28 : 0);
    if (z64) extraC.u16(1, 0).u16(24, 2).u64(data.length, 4).u64(body.length, 12).u64(offset, 20);
    const ch = record(46)
      .u32(SIG_CD, 0)
      .u16(z64 ? 45 : 20, 4)
      .u16(z64 ? 45 : 20, 6)
      .u16(0x800, 8)
      .u16(method, 10)
      .u16(time, 12)
      .u16(date, 14)
      .u32(crc, 16)
      .u32(z64 ? 0xffffffff : body.length, 20)
      .u32(z64 ? 0xffffffff : data.length, 24)
      .u16(name.length, 28)
      .u16(extraC.bytes.length, 30)
      .u32(z64 ? 0xffffffff : offset, 42);
    central.push(ch.bytes, name, extraC.bytes);
    offset += lh.bytes.length + name.length + extraL.bytes.length + body.length;
  }
  const cd = concatBytes(central);
  const tail: Uint8Array[] = [];
  if (z64) {
    const rec = record(56).u32(SIG_EOCD64, 0).u64(44, 4).u16(45, 12).u16(45, 14).u64(members.length, 24).u64(members.length, 32).u64(cd.length, 40).u64(offset, 48);
    const loc = record(20).u32(SIG_EOCD64_LOC, 0).u64(offset + cd.length, 8).u32(1, 16);
    tail.push(rec.bytes, loc.bytes);
  }
  const eocd = record(22)
    .u32(SIG_EOCD, 0)
    .u16(z64 ? 0xffff : members.length, 8)
    .u16(z64 ? 0xffff : members.length, 10)
    .u32(z64 ? 0xffffffff : cd.length, 12)
    .u32(z64 ? 0xffffffff : offset, 16);
  return concatBytes([...parts, cd, ...tail, eocd.bytes]);
}

/** A zeroed record of n bytes with chained little-endian writers (value, offset). */
function record(n: number) {
  const bytes = new Uint8Array(n);
  const d = view(bytes);
  const r = {
    bytes,
    u16: (v: number, o: number) => (d.setUint16(o, v, true), r),
    u32: (v: number, o: number) => (d.setUint32(o, v, true), r),
    u64: (v: number, o: number) => (d.setBigUint64(o, BigInt(v), true), r),
  };
  return r;
}
