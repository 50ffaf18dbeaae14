// TensorBoard event files (events.out.tfevents.*), written by hand: no small, maintained npm
// writer exists (the only one, @tensorflow/tfjs-node, downloads libtensorflow at install). The
// format is small: a file is a sequence of records
//   uint64 length | uint32 masked CRC32C(length) | data | uint32 masked CRC32C(data)   (little-endian)
// and each record's data is an `Event` protocol buffer (tensorflow/core/util/event.proto):
//   Event { double wall_time = 1; int64 step = 2; oneof { string file_version = 3; Summary summary = 5; } }
//   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
// The first event of a file carries file_version "brain.Event:2". Pure bytes: no node:* imports.

// ---------------------------------------------------------------- CRC32C (Castagnoli)

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export function crc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** TensorFlow's masked CRC (rotate right by 15, add a constant), as stored in records. */
export function maskedCrc32c(data: Uint8Array): number {
  const c = crc32c(data);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

// ---------------------------------------------------------------- protobuf encoding

class ProtoWriter {
  private parts: number[] = [];
  varint(v: number): this {
    // non-negative integers below 2^53 (steps, lengths)
    while (v >= 0x80) {
      this.parts.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.parts.push(v);
    return this;
  }
  tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }
  bytes(field: number, b: Uint8Array): this {
    this.tag(field, 2).varint(b.length);
    for (const x of b) this.parts.push(x);
    return this;
  }
  double(field: number, v: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.tag(field, 1);
    for (const x of b) this.parts.push(x);
    return this;
  }
  float(field: number, v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.tag(field, 5);
    for (const x of b) this.parts.push(x);
    return this;
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

const utf8 = new TextEncoder();

export interface ScalarEvent {
  /** seconds since the epoch */
  wallTime: number;
  step: number;
  /** tag -> value, e.g. { 'train/loss': 0.41, 'val/acc': 0.87 }; non-finite values are left out */
  scalars: Record<string, number>;
}

/** The Event proto bytes: a scalar summary, or (fileVersion) the header event. */
export function encodeEvent(e: ScalarEvent | { wallTime: number; fileVersion: string }): Uint8Array {
  const w = new ProtoWriter().double(1, e.wallTime);
  if ('fileVersion' in e) return w.bytes(3, utf8.encode(e.fileVersion)).finish();
  if (!Number.isInteger(e.step) || e.step < 0) throw new Error(`tfevents: step must be a non-negative integer, got ${e.step}`);
  w.tag(2, 0).varint(e.step);
  const summary = new ProtoWriter();
  for (const [tag, v] of Object.entries(e.scalars)) {
    if (!Number.isFinite(v)) continue;
    summary.bytes(1, new ProtoWriter().bytes(1, utf8.encode(tag)).float(2, v).finish());
  }
  return w.bytes(5, summary.finish()).finish();
}

/** One framed record. */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length + 4);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length >>> 0, true);
  dv.setUint32(4, Math.floor(data.length / 2 ** 32), true);
  dv.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  dv.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

/** The bytes that open a new event file. */
export function eventFileHeader(wallTime: number): Uint8Array {
  return frameRecord(encodeEvent({ wallTime, fileVersion: 'brain.Event:2' }));
}

/** The bytes of one scalar event record, to append to an event file. */
export function scalarRecord(e: ScalarEvent): Uint8Array {
  return frameRecord(encodeEvent(e));
}

/** File name TensorBoard recognises: events.out.tfevents.<seconds>.<host>[.<suffix>]. */
export function eventFileName(wallTime: number, host: string, suffix = ''): string {
  return `events.out.tfevents.${Math.floor(wallTime)}.${host.replace(/[^A-Za-z0-9._-]/g, '_')}${suffix ? `.${suffix}` : ''}`;
}

// ---------------------------------------------------------------- reading (tests, tools)

export interface DecodedEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars: Record<string, number>;
}

/** Reads every record, checking both CRCs; throws on a corrupt or truncated record. */
export function readEventFile(bytes: Uint8Array): DecodedEvent[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: DecodedEvent[] = [];
  let p = 0;
  while (p < bytes.length) {
    if (p + 12 > bytes.length) throw new Error(`tfevents: truncated record header at byte ${p}`);
    const len = dv.getUint32(p, true) + dv.getUint32(p + 4, true) * 2 ** 32;
    if (dv.getUint32(p + 8, true) !== maskedCrc32c(bytes.subarray(p, p + 8))) throw new Error(`tfevents: bad length CRC at byte ${p}`);
    if (p + 12 + len + 4 > bytes.length) throw new Error(`tfevents: truncated record at byte ${p}`);
    const data = bytes.subarray(p + 12, p + 12 + len);
    if (dv.getUint32(p + 12 + len, true) !== maskedCrc32c(data)) throw new Error(`tfevents: bad data CRC at byte ${p}`);
    out.push(decodeEvent(data));
    p += 16 + len;
  }
  return out;
}

type Field = { field: number; wire: number; value: number | Uint8Array; view?: DataView };

function* fields(b: Uint8Array): Generator<Field> {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let p = 0;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const x = b[p++];
      v += (x & 0x7f) * mul;
      mul *= 128;
      if (!(x & 0x80)) return v;
    }
  };
  while (p < b.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) yield { field, wire, value: varint() };
    else if (wire === 1) {
      yield { field, wire, value: dv.getFloat64(p, true) };
      p += 8;
    } else if (wire === 5) {
      yield { field, wire, value: dv.getFloat32(p, true) };
      p += 4;
    } else if (wire === 2) {
      const n = varint();
      yield { field, wire, value: b.subarray(p, p + n) };
      p += n;
    } else throw new Error(`tfevents: unsupported wire type ${wire}`);
  }
}

const utf8d = new TextDecoder();

function decodeEvent(b: Uint8Array): DecodedEvent {
  const e: DecodedEvent = { wallTime: NaN, step: 0, scalars: {} };
  for (const f of fields(b)) {
    if (f.field === 1 && f.wire === 1) e.wallTime = f.value as number;
    else if (f.field === 2 && f.wire === 0) e.step = f.value as number;
    else if (f.field === 3 && f.wire === 2) e.fileVersion = utf8d.decode(f.value as Uint8Array);
    else if (f.field === 5 && f.wire === 2)
      for (const v of fields(f.value as Uint8Array)) {
        if (v.field !== 1 || v.wire !== 2) continue;
        let tag = '';
        let val = NaN;
        for (const x of fields(v.value as Uint8Array)) {
          if (x.field === 1 && x.wire === 2) tag = utf8d.decode(x.value as Uint8Array);
          else if (x.field === 2 && x.wire === 5) val = x.value as number;
        }
        e.scalars[tag] = val;
      }
  }
  return e;
}
