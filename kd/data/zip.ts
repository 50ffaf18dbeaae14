// Zip archives held in memory: central-directory reader (zip64 understood when present: numpy
// writes it for large members) and a writer. No file access and no node:* import; deflate and
// inflate come from a codec the caller passes (kd/data/node-files.ts has the node:zlib one), since
// stored members (the decoded-image cache) need none. Archives too big for one buffer are refused
// by the file reader.

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

/** A Buffer view of the bytes (no copy); the readers below use its little-endian accessors. */
function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
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

function u64(buf: Buffer, off: number, file: string): number {
  const v = buf.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${file}: zip64 value too large`);
  return Number(v);
}

/** Parse the central directory of a zip held in memory. */
export function readZipEntries(bytes: Uint8Array, file = '<zip>'): ZipEntry[] {
  const buf = asBuffer(bytes);
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
export function extractZipEntry(bytes: Uint8Array, entry: ZipEntry, file = '<zip>', codec?: ZipCodec): Buffer {
  const buf = asBuffer(bytes);
  const lh = entry.localHeaderOffset;
  if (lh + 30 > buf.length || buf.readUInt32LE(lh) !== SIG_LOCAL) throw new Error(`${file}: corrupt local header for member ${entry.name}`);
  const start = lh + 30 + buf.readUInt16LE(lh + 26) + buf.readUInt16LE(lh + 28);
  const end = start + entry.compressedSize;
  if (end > buf.length) throw new Error(`${file}: member ${entry.name} extends past end of file (truncated download?)`);
  const raw = buf.subarray(start, end);
  let out: Buffer;
  if (entry.method === 0) out = raw;
  else if (entry.method === 8) {
    if (!codec) throw new Error(`${file}: member ${entry.name} is deflate-compressed and no inflate codec was given (Node: nodeZipCodec in kd/data/node-files.ts)`);
    // Deflate expands at most 1032:1, so a larger declared size is a lie (refused before allocating).
    if (entry.size > entry.compressedSize * 1032 + 1024)
      throw new Error(`${file}: member ${entry.name} declares ${entry.size} bytes from ${entry.compressedSize} compressed, more than deflate can produce (corrupt file)`);
    // Inflate no further than the declared size (Buffer sizes start at 1 byte).
    try {
      out = asBuffer(codec.inflateRaw(raw, Math.max(1, entry.size)));
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
export function readZip(buf: Uint8Array, file = '<zip>', codec?: ZipCodec): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
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
export function writeZip(members: { name: string; data: Uint8Array }[], opts: { compress?: boolean; zip64?: boolean; codec?: ZipCodec } = {}): Buffer {
  const codec = opts.codec;
  if (opts.compress && !codec) throw new Error('writeZip: compress needs a deflate codec (Node: nodeZipCodec in kd/data/node-files.ts)');
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  const [time, date] = dosDateTime(new Date());
  const z64 = !!opts.zip64;
  for (const m of members) {
    const name = Buffer.from(m.name, 'utf8');
    const data = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
    const body = opts.compress ? asBuffer(codec!.deflateRaw(data)) : data;
    const method = opts.compress ? 8 : 0;
    const crc = (codec?.crc32 ?? crc32)(data);
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

