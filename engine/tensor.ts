// Tensor handles over pooled GPU storage, and the scopes that release them.
//
// Memory contract (documented in the README):
//  - A Tensor is a handle; several handles (views, saved copies) may share one Storage, which
//    is returned to the pool when its last handle is disposed.
//  - Every handle created inside `tidy(fn)` is disposed when fn returns, except what fn
//    returns (moved to the enclosing scope) and what `keep()` marks.
//  - The autograd graph holds its own handles on what backward needs, so disposing an
//    intermediate inside a scope is safe; the graph frees them as backward consumes them.
import { acquireBuffer, releaseBuffer } from './pool.ts';
import { getGpu, gpuWait } from './device.ts';
import { recorder, dispatch, groupsFor } from './program.ts';
import { Node, runBackward, nodeRef, nodeUnref } from './autograd.ts';
import { Rng } from './rng.ts';

export type DType = 'f32' | 'i32';
export type Shape = readonly number[];

export class ShapeError extends Error {
  override name = 'ShapeError';
}

export const fmt = (s: Shape): string => `[${s.join(', ')}]`;
export const numel = (s: Shape): number => s.reduce((a, b) => a * b, 1);

export class Storage {
  refs = 1;
  constructor(
    public buffer: GPUBuffer,
    public readonly bytes: number,
  ) {}
  retain(): this {
    this.refs++;
    return this;
  }
  release(): void {
    if (--this.refs === 0) releaseBuffer(this.buffer);
  }
}

let poison = false;
/** Test mode: every new tensor's buffer is filled with NaN bits so an unwritten element shows. */
export function setPoison(on: boolean): void {
  poison = on;
}

export class Tensor {
  readonly shape: Shape;
  readonly size: number;
  private storageRef: Storage | null;
  /** the op that produced this tensor, or the AccumulateGrad node of a leaf that requires grad */
  node: Node | null = null;
  /** set on leaves whose gradient is wanted (parameters, adversarial inputs) */
  requiresGrad = false;
  grad: Tensor | null = null;
  /** optional name, used in error messages (parameters get their dotted name) */
  name?: string;

  constructor(shape: Shape, readonly dtype: DType, storage?: Storage) {
    for (const d of shape) if (!Number.isInteger(d) || d < 0) throw new ShapeError(`invalid tensor shape ${fmt(shape)}`);
    this.shape = Object.freeze([...shape]);
    this.size = numel(shape);
    this.storageRef = storage ? storage.retain() : new Storage(acquireBuffer(this.size * 4), this.size * 4);
    track(this); // before the poison fill: if that launch throws, the enclosing tidy still frees the buffer
    if (!storage && poison) fillTensor(this, this.dtype === 'i32' ? 0x7fc00000 : NaN);
  }

  get disposed(): boolean {
    return this.storageRef === null;
  }

  get storage(): Storage {
    if (!this.storageRef) throw new Error(`tensor ${this.describe()} was used after it was disposed`);
    return this.storageRef;
  }

  get buffer(): GPUBuffer {
    return this.storage.buffer;
  }

  /** Storage binding covering exactly this tensor's elements. */
  get binding(): { buffer: GPUBuffer; size: number } {
    return { buffer: this.buffer, size: Math.max(4, this.size * 4) };
  }

  describe(): string {
    return `${this.name ? `"${this.name}" ` : ''}${fmt(this.shape)} ${this.dtype}`;
  }

  /** A new handle on the same storage with another shape (free: no copy). No autograd history: use reshape() in differentiable code. */
  view(shape: Shape): Tensor {
    const t = new Tensor(shape, this.dtype, this.storage);
    if (t.size !== this.size) {
      t.dispose();
      throw new ShapeError(`view: cannot view ${this.describe()} as ${fmt(shape)}`);
    }
    return t;
  }

  /** A handle on the same storage without autograd history (what the graph saves). */
  detach(): Tensor {
    return new Tensor(this.shape, this.dtype, this.storage);
  }

  dispose(): void {
    if (!this.storageRef) return;
    this.storageRef.release();
    this.storageRef = null;
    untrack(this);
    if (this.node) {
      const n = this.node;
      this.node = null;
      nodeUnref(n);
    }
  }

  /** Reads the data back as float32 (i32 tensors are converted; see toInt32Array). Waits for the GPU. */
  async toArray(): Promise<Float32Array> {
    const raw = await this.readRaw();
    return this.dtype === 'i32' ? Float32Array.from(new Int32Array(raw)) : new Float32Array(raw);
  }

  /** Reads an i32 tensor back exactly. */
  async toInt32Array(): Promise<Int32Array> {
    if (this.dtype !== 'i32') throw new TypeError(`toInt32Array: ${this.describe()} is not i32`);
    return new Int32Array(await this.readRaw());
  }

  private async readRaw(): Promise<ArrayBuffer> {
    const bytes = this.size * 4;
    const { device } = getGpu();
    const staging = device.createBuffer({ size: Math.max(4, bytes), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    if (bytes > 0) recorder.copy(this.buffer, 0, staging, 0, bytes);
    recorder.flush();
    await gpuWait(staging.mapAsync(GPUMapMode.READ));
    const copy = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    staging.destroy();
    return copy;
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new ShapeError(`item(): tensor ${this.describe()} has ${this.size} elements, not 1`);
    return (await this.toArray())[0];
  }

  /** Reverse-mode autodiff from this tensor; a non-scalar needs an explicit seed gradient. */
  backward(seed?: Tensor): void {
    runBackward(this, seed);
  }

  /** Turns this leaf into one whose gradient accumulates into `.grad`. */
  requireGrad(on = true): this {
    if (this.node && !this.node.isLeaf) throw new Error(`requireGrad: ${this.describe()} is not a leaf (it was produced by ${this.node.name})`);
    this.requiresGrad = on;
    if (on && !this.node) this.setNode(new Node('AccumulateGrad', [], [], null, { params: null, inputShapes: [], inputDtypes: [] }, this));
    if (!on && this.node) {
      nodeUnref(this.node);
      this.node = null;
    }
    return this;
  }

  /** Attaches a graph node (used by the op framework). */
  setNode(n: Node): void {
    if (this.node) nodeUnref(this.node);
    this.node = n;
    nodeRef(n);
  }
}

// ---- scopes -------------------------------------------------------------------------------

const scopes: Set<Tensor>[] = [];

function track(t: Tensor): void {
  scopes[scopes.length - 1]?.add(t);
}
function untrack(t: Tensor): void {
  for (let i = scopes.length - 1; i >= 0; i--) if (scopes[i].delete(t)) return;
}

/** Removes tensors from scope tracking: they live until disposed explicitly. */
export function keep<T extends Tensor | null | undefined>(t: T): T {
  if (t) untrack(t);
  return t;
}

function collect(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (value instanceof Tensor) out.add(value);
  else if (depth < 3 && value && typeof value === 'object') for (const v of Object.values(value)) collect(v, out, depth + 1);
}

function endScope(scope: Set<Tensor>, result: unknown): void {
  const keepSet = new Set<Tensor>();
  collect(result, keepSet);
  if (scopes[scopes.length - 1] !== scope) throw new Error('tidy: scopes were closed out of order (an async tidy overlapped another scope)');
  scopes.pop();
  for (const t of scope) if (!keepSet.has(t)) t.dispose();
  for (const t of keepSet) if (scope.has(t)) track(t); // hand results to the enclosing scope
}

/** Runs fn; disposes every tensor it created except those in its return value. */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    endScope(scope, undefined);
    throw e;
  }
  endScope(scope, result);
  return result;
}

/** tidy for async functions; do not interleave two of these concurrently. */
export async function tidyAsync<T>(fn: () => Promise<T>): Promise<T> {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    endScope(scope, undefined);
    throw e;
  }
  endScope(scope, result);
  return result;
}

// ---- creation ------------------------------------------------------------------------------

const FILL = { f32: { T: 'f32' }, i32: { T: 'i32' } } as const;

/** Fills `t` with `value` on the GPU (i32 tensors take an integer). */
export function fillTensor(t: Tensor, value: number): void {
  if (t.size === 0) return;
  dispatch({ name: 'fill', shader: 'fill', defines: FILL[t.dtype] }, { n: t.size, value }, [t.binding], groupsFor(t.size));
}

export function full(shape: Shape, value: number, dtype: DType = 'f32'): Tensor {
  const t = new Tensor(shape, dtype);
  fillTensor(t, dtype === 'i32' ? value | 0 : value);
  return t;
}
export const zeros = (shape: Shape, dtype: DType = 'f32'): Tensor => full(shape, 0, dtype);
export const ones = (shape: Shape, dtype: DType = 'f32'): Tensor => full(shape, 1, dtype);

/** Uploads host data. Flushes pending work first: a queue write must not overtake recorded commands that still use a recycled buffer. */
export function tensor(data: ArrayLike<number>, shape?: Shape, dtype?: DType): Tensor {
  const dt: DType = dtype ?? (data instanceof Int32Array ? 'i32' : 'f32');
  const sh = shape ?? [data.length];
  if (numel(sh) !== data.length) throw new ShapeError(`tensor: ${data.length} values do not fill shape ${fmt(sh)}`);
  const arr = dt === 'i32' ? (data instanceof Int32Array ? data : Int32Array.from(data)) : data instanceof Float32Array ? data : Float32Array.from(data);
  const t = new Tensor(sh, dt);
  if (arr.length > 0) {
    recorder.flush();
    getGpu().device.queue.writeBuffer(t.buffer, 0, arr.buffer, arr.byteOffset, arr.byteLength);
  }
  return t;
}

/** Overwrites a tensor's contents from host data (same element count). */
export function writeTensor(t: Tensor, data: ArrayLike<number>): void {
  if (data.length !== t.size) throw new ShapeError(`writeTensor: ${data.length} values for ${t.describe()}`);
  const arr = t.dtype === 'i32' ? Int32Array.from(data) : data instanceof Float32Array ? data : Float32Array.from(data);
  recorder.flush();
  getGpu().device.queue.writeBuffer(t.buffer, 0, arr.buffer, arr.byteOffset, arr.byteLength);
}

export function arange(n: number, dtype: DType = 'f32'): Tensor {
  const a = dtype === 'i32' ? new Int32Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return tensor(a, [n], dtype);
}

// The seeded generator lives in rng.ts; re-exported here because initialisers import it from tensor.ts.
export { Rng };

let globalRng = new Rng(0);
export function manualSeed(seed: number): void {
  globalRng = new Rng(seed);
}

export function randn(shape: Shape, opts: { std?: number; mean?: number; rng?: Rng } = {}): Tensor {
  const rng = opts.rng ?? globalRng;
  const a = new Float32Array(numel(shape));
  const std = opts.std ?? 1;
  const mean = opts.mean ?? 0;
  for (let i = 0; i < a.length; i++) a[i] = mean + std * rng.normal();
  return tensor(a, shape);
}

export function rand(shape: Shape, opts: { low?: number; high?: number; rng?: Rng } = {}): Tensor {
  const rng = opts.rng ?? globalRng;
  const lo = opts.low ?? 0;
  const hi = opts.high ?? 1;
  const a = new Float32Array(numel(shape));
  for (let i = 0; i < a.length; i++) a[i] = lo + (hi - lo) * rng.uniform();
  return tensor(a, shape);
}
