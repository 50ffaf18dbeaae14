// safetensors (https://github.com/huggingface/safetensors) on bytes in memory: parse, serialise,
// and copy into a model. Runs anywhere (no file system); reading and writing files, atomically,
// is engine/node/safetensors-file.ts. Byte-compatible with `safetensors.torch.save_file`:
//   u64 LE header length N | N bytes of compact JSON padded with spaces to a multiple of 8 |
//   tensor data, ordered by dtype alignment descending (the Rust Dtype enum order) then name.
// A PyTorch `state_dict()` saved that way loads as is (num_batches_tracked is I64 there).
import { Tensor, tensor as upload, writeTensor, fmt, numel, type Shape } from '../tensor.ts';

/** safetensors dtype names, in the Rust `Dtype` enum's declaration order (the sort key). */
export const DTYPES = ['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64'] as const;
export type StDtype = (typeof DTYPES)[number];
const ITEMSIZE: Record<StDtype, number> = { BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8 };

export type HostData = Float32Array | Float64Array | Int32Array | Uint32Array | Int16Array | Uint16Array | Int8Array | Uint8Array | BigInt64Array | BigUint64Array;

/** A tensor on the host as stored in a file. F16/BF16 are widened to F32 on load (dtype keeps the file's name). */
export interface HostTensor {
  dtype: StDtype;
  shape: number[];
  data: HostData;
}

export interface SafetensorsFile {
  tensors: Map<string, HostTensor>;
  /** the `__metadata__` string map, or null when the file has none */
  metadata: Record<string, string> | null;
}

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

const MAX_HEADER = 100_000_000; // what the reference implementation accepts

// ---- reading --------------------------------------------------------------------------------

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Copies `bytes` into a fresh, aligned typed array for `dtype` (F16/BF16 widened to F32). */
function decode(dtype: StDtype, bytes: Uint8Array): HostData {
  const buf = new Uint8Array(bytes).buffer; // an own, aligned copy (a subarray would share memory)
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf);
    case 'F64':
      return new Float64Array(buf);
    case 'I64':
      return new BigInt64Array(buf);
    case 'U64':
      return new BigUint64Array(buf);
    case 'I32':
      return new Int32Array(buf);
    case 'U32':
      return new Uint32Array(buf);
    case 'I16':
      return new Int16Array(buf);
    case 'U16':
      return new Uint16Array(buf);
    case 'I8':
      return new Int8Array(buf);
    case 'U8':
    case 'BOOL':
      return new Uint8Array(buf);
    case 'F16': {
      const h = new Uint16Array(buf);
      const out = new Float32Array(h.length);
      for (let i = 0; i < h.length; i++) out[i] = f16ToF32(h[i]);
      return out;
    }
    case 'BF16': {
      const h = new Uint16Array(buf);
      const bits = new Uint32Array(h.length);
      for (let i = 0; i < h.length; i++) bits[i] = h[i] << 16;
      return new Float32Array(bits.buffer);
    }
    default:
      throw new Error(`unsupported dtype ${dtype}`);
  }
}

/** Parses a whole safetensors file held in memory; `source` names it in errors. */
export function parseSafetensors(bytes: Uint8Array, source = '<buffer>'): SafetensorsFile {
  const fail = (msg: string): never => {
    throw new SafetensorsError(`${source}: ${msg}`);
  };
  if (bytes.length < 8) fail(`truncated: ${bytes.length} bytes, too short for the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER)) fail(`bad header: declared header length ${n} is implausible (not a safetensors file?)`);
  const hlen = Number(n);
  if (8 + hlen > bytes.length) fail(`truncated: header declares ${hlen} bytes but the file has only ${bytes.length - 8} after the length field`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + hlen)));
  } catch (e) {
    fail(`bad header: not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) fail('bad header: the JSON header is not an object');
  const data = bytes.subarray(8 + hlen);
  let metadata: Record<string, string> | null = null;
  const entries: { name: string; dtype: StDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (!info || typeof info !== 'object' || Array.isArray(info) || Object.values(info).some((v) => typeof v !== 'string'))
        fail('bad header: __metadata__ must map strings to strings');
      metadata = info as Record<string, string>;
      continue;
    }
    const t = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!t || typeof t !== 'object') fail(`bad header: entry "${name}" is not an object`);
    if (typeof t.dtype !== 'string') fail(`bad header: tensor "${name}" has no dtype`);
    const dtype = t.dtype as StDtype;
    if (!DTYPES.includes(dtype)) fail(`unsupported dtype ${t.dtype} for tensor "${name}"`);
    if (dtype === 'F8_E5M2' || dtype === 'F8_E4M3') fail(`unsupported dtype ${dtype} for tensor "${name}" (float8 is not supported)`);
    if (!Array.isArray(t.shape) || t.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) fail(`bad header: tensor "${name}" has an invalid shape ${JSON.stringify(t.shape)}`);
    const off = t.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || off.some((d) => !Number.isSafeInteger(d) || d < 0) || off[1] < off[0])
      fail(`bad header: tensor "${name}" has invalid data_offsets ${JSON.stringify(off)}`);
    const shape = t.shape as number[];
    const [begin, end] = off as number[];
    const want = numel(shape) * ITEMSIZE[dtype];
    if (end - begin !== want) fail(`bad header: tensor "${name}" ${dtype} ${fmt(shape)} needs ${want} bytes but data_offsets span ${end - begin}`);
    entries.push({ name, dtype, shape, begin, end });
  }
  // The data must be covered exactly, without holes or overlaps, as the reference reader requires.
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of byOffset) {
    if (e.begin !== pos) fail(`bad header: tensor "${e.name}" starts at byte ${e.begin} of the data, expected ${pos} (holes or overlapping tensors)`);
    pos = e.end;
  }
  if (pos > data.length) fail(`truncated: the header needs ${pos} bytes of tensor data but only ${data.length} follow it`);
  if (pos < data.length) fail(`bad file: ${data.length - pos} unexpected bytes after the last tensor`);
  const tensors = new Map<string, HostTensor>();
  for (const e of entries) tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: decode(e.dtype, data.subarray(e.begin, e.end)) });
  return { tensors, metadata };
}

// ---- writing --------------------------------------------------------------------------------

/** What can be saved: engine tensors (read back from the GPU) or host tensors. */
export type SaveInput = Map<string, Tensor | HostTensor> | Record<string, Tensor | HostTensor>;

const isBnCounter = (name: string): boolean => name === 'num_batches_tracked' || name.endsWith('.num_batches_tracked');

/** Host form of an engine tensor: f32 -> F32, i32 -> I32, and *.num_batches_tracked -> I64 of shape [] as PyTorch stores it. */
async function toHost(name: string, t: Tensor): Promise<HostTensor> {
  const data = t.dtype === 'i32' ? await t.toInt32Array() : await t.toArray(); // toArray() widens i32 to f32
  if (isBnCounter(name)) {
    if (t.size !== 1) throw new SafetensorsError(`saveSafetensors: "${name}" ${t.describe()} should hold one value`);
    return { dtype: 'I64', shape: [], data: BigInt64Array.of(BigInt(Math.round(data[0]))) };
  }
  return { dtype: t.dtype === 'i32' ? 'I32' : 'F32', shape: [...t.shape], data };
}

const utf8 = new TextEncoder();
/** Byte-wise order of the UTF-8 encodings (Rust's String order, which safetensors sorts names by). */
function utf8Compare(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** The complete file bytes for host tensors (safetensors' own ordering and padding). */
export function serializeSafetensors(tensors: Map<string, HostTensor>, metadata?: Record<string, string> | null): Uint8Array {
  const items = [...tensors.entries()].map(([name, t]) => {
    if (name === '__metadata__') throw new SafetensorsError('saveSafetensors: "__metadata__" is reserved and cannot name a tensor');
    if (!DTYPES.includes(t.dtype)) throw new SafetensorsError(`saveSafetensors: unsupported dtype ${t.dtype} for "${name}"`);
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const want = numel(t.shape) * ITEMSIZE[t.dtype];
    if (t.dtype === 'F16' || t.dtype === 'BF16') throw new SafetensorsError(`saveSafetensors: writing ${t.dtype} is not supported ("${name}"); save F32`);
    if (bytes.length !== want) throw new SafetensorsError(`saveSafetensors: "${name}" ${t.dtype} ${fmt(t.shape)} needs ${want} bytes, its data has ${bytes.length}`);
    return { name, t, bytes };
  });
  items.sort((a, b) => DTYPES.indexOf(b.t.dtype) - DTYPES.indexOf(a.t.dtype) || utf8Compare(a.name, b.name));
  // The header is built by hand: a JS object would reorder integer-like keys such as "0".
  const parts: string[] = [];
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') throw new SafetensorsError(`saveSafetensors: metadata "${k}" must be a string, got ${typeof v}`);
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  for (const { name, t, bytes } of items) {
    parts.push(`${JSON.stringify(name)}:{"dtype":"${t.dtype}","shape":${JSON.stringify(t.shape)},"data_offsets":[${offset},${offset + bytes.length}]}`);
    offset += bytes.length;
  }
  const json = utf8.encode(`{${parts.join(',')}}`);
  const hlen = Math.ceil(json.length / 8) * 8; // padded with spaces to a multiple of 8
  const out = new Uint8Array(8 + hlen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(hlen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + hlen);
  let p = 8 + hlen;
  for (const { bytes } of items) {
    out.set(bytes, p);
    p += bytes.length;
  }
  return out;
}

/**
 * The file bytes for engine tensors (read back from the GPU) and host tensors: what
 * saveSafetensors writes. Rejects duplicate names and disposed tensors.
 */
export async function encodeSafetensors(tensors: SaveInput, metadata?: Record<string, string> | null): Promise<Uint8Array> {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const seen = new Set<string>();
  for (const [name, t] of entries) {
    if (seen.has(name)) throw new SafetensorsError(`saveSafetensors: duplicate tensor name "${name}"`);
    seen.add(name);
    if (t instanceof Tensor && t.disposed) throw new SafetensorsError(`saveSafetensors: tensor "${name}" was disposed`);
  }
  // Read every GPU tensor back concurrently (one flush, many maps).
  const host = await Promise.all(entries.map(async ([name, t]): Promise<[string, HostTensor]> => [name, t instanceof Tensor ? await toHost(name, t) : t]));
  return serializeSafetensors(new Map(host), metadata);
}

/** `model.stateDict()` (PyTorch names; num_batches_tracked as I64) as safetensors bytes. */
export async function encodeModelWeights(model: { stateDict(): Map<string, Tensor> }, metadata?: Record<string, string> | null): Promise<Uint8Array> {
  const sd = model.stateDict();
  try {
    return await encodeSafetensors(sd, metadata);
  } finally {
    for (const t of sd.values()) t.dispose(); // stateDict() hands out new handles
  }
}

// ---- models ---------------------------------------------------------------------------------

/** What loadModelWeights needs from a model (an rk.nn.Module): its live parameters and buffers by dotted name. */
export interface WeightsTarget {
  namedParameters(): Iterable<[string, Tensor]>;
  namedBuffers(): Iterable<[string, Tensor]>;
  /** integer buffers kept as numbers (num_batches_tracked), scalar-shaped in files */
  namedIntBuffers?(): Iterable<[string, { value: number }]>;
}

export interface LoadReport {
  /** model tensors the file lacks */
  missing: string[];
  /** file tensors the model lacks */
  unexpected: string[];
  /** in both but with different shapes: "name: file [..] vs model [..]" */
  mismatched: string[];
  /** names copied into the model */
  loaded: string[];
}

export interface LoadOptions {
  /** throw (one error listing every problem) on missing/unexpected/mis-shaped names; default true */
  strict?: boolean;
  /** file tensors to ignore entirely (e.g. name => name.startsWith('__fixture__.')) */
  skip?: (name: string) => boolean;
}

/** Shapes match, treating a scalar [] and [1] as equal (num_batches_tracked). */
function sameShape(file: Shape, model: Shape): boolean {
  if (file.length === model.length) return file.every((d, i) => d === model[i]);
  return numel(file) === 1 && numel(model) === 1 && file.length + model.length <= 1;
}

function toNumbers(t: HostTensor): ArrayLike<number> {
  const d = t.data;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Float64Array.from(d, (v) => Number(v));
  return d;
}

/** Copies file tensors into a model's own parameters and buffers (by dotted name). */
export function copyIntoModel(model: WeightsTarget, file: SafetensorsFile, source: string, opts: LoadOptions = {}): LoadReport {
  const strict = opts.strict ?? true;
  type Slot = { shape: Shape; write(data: HostTensor): void };
  const target = new Map<string, Slot>();
  for (const [name, t] of [...model.namedParameters(), ...model.namedBuffers()]) target.set(name, { shape: t.shape, write: (d) => writeTensor(t, toNumbers(d)) });
  for (const [name, b] of model.namedIntBuffers?.() ?? []) target.set(name, { shape: [], write: (d) => void (b.value = Number(toNumbers(d)[0])) });
  const report: LoadReport = { missing: [], unexpected: [], mismatched: [], loaded: [] };
  const names = [...file.tensors.keys()].filter((n) => !opts.skip?.(n));
  const inFile = new Set(names);
  for (const name of target.keys()) if (!inFile.has(name)) report.missing.push(name);
  const bad = new Set<string>();
  for (const name of names) {
    const t = target.get(name);
    const f = file.tensors.get(name)!;
    if (!t) report.unexpected.push(name);
    else if (!sameShape(f.shape, t.shape)) {
      report.mismatched.push(`${name}: file ${f.dtype} ${fmt(f.shape)} vs model ${fmt(t.shape)}`);
      bad.add(name);
    }
  }
  if (strict && report.missing.length + report.unexpected.length + report.mismatched.length > 0) {
    const list = (what: string, xs: string[]) => (xs.length ? `\n  ${what} (${xs.length}): ${xs.join(', ')}` : '');
    throw new SafetensorsError(
      `${source}: weights do not match the model (strict mode)` +
        list('missing from the file', report.missing) +
        list('unexpected in the file', report.unexpected) +
        list('shape mismatch', report.mismatched),
    );
  }
  for (const name of names) {
    const t = target.get(name);
    if (!t || bad.has(name)) continue;
    t.write(file.tensors.get(name)!);
    report.loaded.push(name);
  }
  return report;
}

/** Uploads a host tensor as an engine tensor (F32-like -> f32, integers -> i32). */
export function toTensor(t: HostTensor): Tensor {
  const isInt = !['F32', 'F64', 'F16', 'BF16'].includes(t.dtype);
  return upload(Float64Array.from(toNumbers(t)), t.shape, isInt ? 'i32' : 'f32');
}
