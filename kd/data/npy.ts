// NumPy .npy arrays and .npz archives (a zip of .npy members), parsed from and encoded to bytes.
// No file access and no node:* import (files: kd/data/node-files.ts).
import { readZip, writeZip, type ZipCodec } from './zip.ts';
import { bytesOf, concatBytes, latin1, latin1Bytes, utf8, view } from './bytes.ts';

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
  const b = buf;
  const d = view(buf);
  if (b.length < 10 || b[0] !== 0x93 || latin1(b, 1, 6) !== 'NUMPY') throw new Error(`${where}: not a .npy array (bad magic)`);
  const major = b[6];
  let hlen: number;
  let hstart: number;
  if (major === 1) {
    hlen = d.getUint16(8, true);
    hstart = 10;
  } else if (major === 2 || major === 3) {
    hlen = d.getUint32(8, true);
    hstart = 12;
  } else throw new Error(`${where}: unsupported .npy format version ${major}.${b[7]}`);
  if (hstart + hlen > b.length) throw new Error(`${where}: header runs past the end of the data (truncated?)`);
  const header = major === 3 ? utf8(b.subarray(hstart, hstart + hlen)) : latin1(b, hstart, hstart + hlen);
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
export function encodeNpy(data: NpyData, shape: number[]): Uint8Array {
  const count = shape.reduce((a, v) => a * v, 1);
  if (count !== data.length) throw new Error(`encodeNpy: shape ${JSON.stringify(shape)} has ${count} elements, data has ${data.length}`);
  const shp = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${dtypeOf(data)}', 'fortran_order': False, 'shape': ${shp}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = new Uint8Array(10);
  pre.set([0x93, ...latin1Bytes('NUMPY'), 1, 0]);
  view(pre).setUint16(8, header.length, true);
  return concatBytes([pre, latin1Bytes(header), bytesOf(data)]);
}

/** All arrays of an .npz held in memory, keyed without the `.npy` suffix. Non-.npy members are ignored. */
export function readNpz(bytes: Uint8Array, file = '<npz>', codec?: ZipCodec): Map<string, NpyArray> {
  const out = new Map<string, NpyArray>();
  for (const [name, data] of readZip(bytes, file, codec)) {
    if (!name.endsWith('.npy')) continue;
    out.set(name.slice(0, -4), parseNpy(data, `${file}: member ${name}`));
  }
  return out;
}

/** Build .npz bytes. Extra raw members (e.g. meta.json) may be added via `extra`. */
export function encodeNpz(
  arrays: Record<string, { data: NpyData; shape: number[] }>,
  opts: { compress?: boolean; zip64?: boolean; extra?: Record<string, Uint8Array>; codec?: ZipCodec } = {},
): Uint8Array {
  const members = Object.entries(arrays).map(([k, a]) => ({ name: `${k}.npy`, data: encodeNpy(a.data, a.shape) }));
  for (const [k, v] of Object.entries(opts.extra ?? {})) members.push({ name: k, data: v });
  return writeZip(members, opts);
}
