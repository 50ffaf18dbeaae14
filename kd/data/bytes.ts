// Byte helpers for the environment-free readers and writers (zip, npy, image): plain
// Uint8Array/DataView/TextDecoder, no Node `Buffer`, so the same files run in a page.

/** A little-endian-capable view of the bytes (no copy). */
export const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** ISO-8859-1 text, one character per byte (TextDecoder's 'latin1' is windows-1252: not the same for 0x80-0x9f). */
export function latin1(b: Uint8Array, start = 0, end = b.length): string {
  let s = '';
  for (let i = start; i < end; i += 8192) s += String.fromCharCode(...b.subarray(i, Math.min(end, i + 8192)));
  return s;
}

/** Bytes of ISO-8859-1 text (characters above 0xff keep their low byte, as Node's Buffer does). */
export const latin1Bytes = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);

const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();
/** UTF-8 text (invalid sequences become U+FFFD). */
export const utf8 = (b: Uint8Array): string => utf8Decoder.decode(b);
export const utf8Bytes = (s: string): Uint8Array => utf8Encoder.encode(s);

/** The parts one after another in one new array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The bytes of a typed array's elements (a view, no copy). */
export const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
