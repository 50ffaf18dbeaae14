// Uniforms by name: the layout of a kernel's uniform block (the struct bound at group 0,
// binding 0) is parsed once from its WGSL, and each launch's `{ field: value }` object is checked
// against it and packed in the struct's order with WGSL's uniform layout rules (vec3/vec4 and
// array elements 16-byte aligned), so call sites never line up positional words by hand.

/** A uniform value: a number (booleans become 0/1 for integer fields), or the components of a vector/array field. */
export type UniformValue = number | boolean | ArrayLike<number>;
export type Uniforms = Readonly<Record<string, UniformValue>>;

type Scalar = 'u32' | 'i32' | 'f32';

export interface UniformField {
  name: string;
  type: string;
  scalar: Scalar;
  /** word offset of the first component */
  offset: number;
  /** components per element (1 for scalars, 2-4 for vectors) */
  comps: number;
  /** array length (1 when not an array) */
  elems: number;
  /** words between array elements */
  stride: number;
}

export interface UniformLayout {
  /** the struct's name in the shader */
  struct: string;
  fields: UniformField[];
  /** size in 32-bit words, rounded up to 16 bytes */
  words: number;
}

export class UniformError extends TypeError {
  override name = 'UniformError';
}

const SCALAR: Record<string, Scalar> = { u32: 'u32', i32: 'i32', f32: 'f32', u: 'u32', i: 'i32', f: 'f32' };

/** { scalar, comps, align, size } in bytes for a scalar or vector type name. */
function vecInfo(t: string): { scalar: Scalar; comps: number; align: number; size: number } | null {
  const m = /^(?:(u32|i32|f32)|vec([234])([uif])|vec([234])<(u32|i32|f32)>)$/.exec(t);
  if (!m) return null;
  if (m[1]) return { scalar: SCALAR[m[1]], comps: 1, align: 4, size: 4 };
  const comps = Number(m[2] ?? m[4]);
  const scalar = SCALAR[m[3] ?? m[5]];
  return { scalar, comps, align: comps === 2 ? 8 : 16, size: 4 * comps };
}

const roundUp = (x: number, a: number): number => Math.ceil(x / a) * a;

/**
 * Parses the uniform block of `source` (after define substitution). Returns null when the shader
 * has no uniform at binding 0. `what` names the kernel in errors.
 */
export function parseUniformLayout(source: string, what: string): UniformLayout | null {
  const code = source.replace(/\/\/[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '');
  const decl = /@group\(0\)\s*@binding\(0\)\s*var<uniform>\s*\w+\s*:\s*(\w+)\s*;/.exec(code);
  if (!decl) return null;
  const struct = decl[1];
  const body = new RegExp(`struct\\s+${struct}\\s*\\{([^}]*)\\}`).exec(code);
  if (!body) throw new UniformError(`${what}: uniform struct ${struct} not found in the shader`);
  const fields: UniformField[] = [];
  let offset = 0;
  let maxAlign = 4;
  // split on commas outside <...> (array<vec4u, 2> holds one)
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of body[1]) {
    if (ch === '<') depth++;
    if (ch === '>') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  for (const raw of parts) {
    const part = raw.trim();
    if (!part) continue;
    const m = /^(\w+)\s*:\s*(.+)$/s.exec(part);
    if (!m) throw new UniformError(`${what}: cannot read uniform field "${part}" of struct ${struct}`);
    const name = m[1];
    const type = m[2].replace(/\s+/g, '');
    const arr = /^array<(.+),(\d+)u?>$/.exec(type);
    const el = vecInfo(arr ? arr[1] : type);
    if (!el) throw new UniformError(`${what}: uniform field ${name} has type ${type}; supported: u32 i32 f32, vecN of them, fixed arrays of those`);
    // uniform address space: array elements are 16-byte aligned and strided
    const align = arr ? Math.max(16, el.align) : el.align;
    const stride = arr ? roundUp(el.size, 16) : el.size;
    const elems = arr ? Number(arr[2]) : 1;
    offset = roundUp(offset, align);
    fields.push({ name, type, scalar: el.scalar, offset: offset / 4, comps: el.comps, elems, stride: stride / 4 });
    offset += arr ? stride * elems : el.size;
    maxAlign = Math.max(maxAlign, align);
  }
  const bytes = roundUp(roundUp(offset, maxAlign), 16);
  return { struct, fields, words: bytes / 4 };
}

/** Typed views over one uniform staging buffer. */
export interface UniformViews {
  u32: Uint32Array;
  i32: Int32Array;
  f32: Float32Array;
}

function badValue(what: string, f: UniformField, v: unknown, why: string): UniformError {
  return new UniformError(`${what}: uniform ${f.name} (${f.type}) ${why}, got ${typeof v === 'object' ? `[${Array.from(v as ArrayLike<number>).join(', ')}]` : String(v)}`);
}

function put(views: UniformViews, at: number, f: UniformField, v: unknown, what: string): void {
  if (typeof v === 'boolean' && f.scalar !== 'f32') v = v ? 1 : 0;
  if (typeof v !== 'number') throw badValue(what, f, v, 'needs a number');
  if (f.scalar === 'f32') views.f32[at] = v;
  else if (f.scalar === 'u32') {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw badValue(what, f, v, 'needs an integer in [0, 2^32)');
    views.u32[at] = v;
  } else {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw badValue(what, f, v, 'needs a 32-bit signed integer');
    views.i32[at] = v;
  }
}

/**
 * Writes `values` at word `base` of `views` in the layout's order. Throws a UniformError naming
 * the kernel and field when a field is missing or of the wrong kind. Array and vector fields
 * take up to elems * comps numbers; components left out are 0. Unknown extra fields are
 * checked by `checkExtraUniforms` (a key walk costs more than the packing itself).
 */
export function packUniforms(layout: UniformLayout, values: Uniforms, views: UniformViews, base: number, what: string): void {
  const fields = layout.fields;
  const { u32, i32, f32 } = views;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    const v = values[f.name];
    const at = base + f.offset;
    if (f.elems === 1 && f.comps === 1) {
      // fast paths: a number of the right kind
      if (f.scalar === 'u32') {
        if (typeof v === 'number' && v >>> 0 === v) {
          u32[at] = v;
          continue;
        }
      } else if (f.scalar === 'f32') {
        if (typeof v === 'number') {
          f32[at] = v;
          continue;
        }
      } else if (typeof v === 'number' && (v | 0) === v) {
        i32[at] = v;
        continue;
      }
      if (v === undefined) throw missing(layout, f, what);
      put(views, at, f, v, what);
      continue;
    }
    if (v === undefined) throw missing(layout, f, what);
    if (typeof v !== 'object' || v === null || typeof (v as ArrayLike<number>).length !== 'number') throw badValue(what, f, v, `needs up to ${f.elems * f.comps} numbers`);
    const arr = v as ArrayLike<number>;
    const cap = f.elems * f.comps;
    if (arr.length > cap) throw badValue(what, f, v, `takes at most ${cap} numbers`);
    for (let j = 0; j < cap; j++) {
      const k = at + Math.floor(j / f.comps) * f.stride + (j % f.comps);
      if (j < arr.length) put(views, k, f, arr[j], what);
      else u32[k] = 0;
    }
  }
}

const missing = (layout: UniformLayout, f: UniformField, what: string): UniformError =>
  new UniformError(`${what}: uniform ${f.name} (${f.type}) of struct ${layout.struct} is missing`);

/** Throws a UniformError naming the kernel when `values` has a field its uniform struct lacks. */
export function checkExtraUniforms(layout: UniformLayout, values: Uniforms, what: string): void {
  let n = 0;
  for (const _ in values) n++;
  if (n === layout.fields.length) return; // packUniforms found every field, so none is extra
  const known = new Set(layout.fields.map((f) => f.name));
  const extra = Object.keys(values).filter((k) => !known.has(k));
  throw new UniformError(`${what}: unknown uniform${extra.length > 1 ? 's' : ''} ${extra.join(', ')} (struct ${layout.struct} has ${layout.fields.map((f) => f.name).join(', ')})`);
}
