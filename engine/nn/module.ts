// PyTorch-like modules: parameters, buffers and submodules registered in order, dotted names,
// state dicts, train/eval.
//
// Ownership: parameters and buffers are kept out of tidy scopes (they live until
// `module.dispose()`); `call(x)` runs `forward(x)` inside its own tidy so every intermediate a
// forward creates is released on return (the autograd graph keeps what backward needs).
import { Tensor, ShapeError, keep, tensor, tidy, fmt } from '../tensor.ts';
import { copyInto } from '../ops/inplace.ts';
import type { Node } from '../autograd.ts';

/** A non-tensor integer buffer (e.g. BatchNorm's num_batches_tracked): a JS number, exact to 2^53. */
export class IntBuffer {
  constructor(public value: number) {}
}

type BufferEntry = Tensor | IntBuffer;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyModule = Module<any, any>;

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/** What a state dict may hold per name: tensors, and plain numbers for integer buffers. */
export type StateValue = Tensor | number | bigint;

/**
 * Runs on a module's output right after its forward (see Module.registerForwardHook). Returning a
 * value replaces the output; returning undefined keeps it.
 */
export type ForwardHook<Out> = (output: Out, module: AnyModule) => Out | undefined | void;

/** A 32-bit seed from (seed, name): FNV-1a over the name, then a murmur3 finaliser. */
function seedFor(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ (seed >>> 0) ^ Math.floor(seed / 4294967296)) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const join = (prefix: string, name: string): string => (prefix ? `${prefix}.${name}` : name);
const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

export class Module<In = Tensor, Out = Tensor> {
  /** true in training mode (Dropout active, BatchNorm uses batch statistics) */
  training = true;
  private readonly _params = new Map<string, Tensor>();
  private readonly _buffers = new Map<string, BufferEntry>();
  private readonly _modules = new Map<string, AnyModule>();
  private _prefix = '';
  /** null (not an empty array) when there is none, so call() pays one comparison */
  private _forwardHooks: ForwardHook<Out>[] | null = null;

  // ---- registration --------------------------------------------------------------------

  private checkName(kind: string, name: string, replacing: Map<string, unknown>): void {
    if (!name || name.includes('.')) throw new Error(`${this.constructor.name}.${kind}: invalid name "${name}" (non-empty, no dots)`);
    for (const m of [this._params, this._buffers, this._modules] as Map<string, unknown>[])
      if (m !== replacing && m.has(name)) throw new Error(`${this.constructor.name}.${kind}: "${join(this._prefix, name)}" is already registered as another kind of attribute`);
  }

  /** Registers a trainable parameter: kept out of tidy scopes, requires grad, named by its dotted path. */
  param(name: string, t: Tensor): Tensor {
    this.checkName('param', name, this._params);
    if (t.dtype !== 'f32') throw new TypeError(`${this.constructor.name}.param: "${name}" must be f32, got ${t.describe()}`);
    if (t.node && !t.node.isLeaf) throw new Error(`${this.constructor.name}.param: "${name}" must be a leaf tensor, ${t.describe()} was produced by ${t.node.name}`);
    keep(t);
    t.requireGrad();
    t.name = join(this._prefix, name);
    this._params.set(name, t);
    return t;
  }

  /** Registers a buffer: a tensor (running statistics) or an integer kept as a number (num_batches_tracked). */
  buffer(name: string, t: Tensor): Tensor;
  buffer(name: string, value: number): IntBuffer;
  buffer(name: string, t: Tensor | number): Tensor | IntBuffer {
    this.checkName('buffer', name, this._buffers);
    if (typeof t === 'number') {
      if (!Number.isSafeInteger(t)) throw new RangeError(`${this.constructor.name}.buffer: "${name}" must be an integer, got ${t}`);
      const b = new IntBuffer(t);
      this._buffers.set(name, b);
      return b;
    }
    keep(t);
    t.name = join(this._prefix, name);
    this._buffers.set(name, t);
    return t;
  }

  /** Registers (or replaces, keeping its position) a submodule; its tensors are renamed under `name`. */
  module<M extends AnyModule>(name: string, m: M): M {
    this.checkName('module', name, this._modules);
    if (!(m instanceof Module)) throw new TypeError(`${this.constructor.name}.module: "${name}" is not a Module`);
    this._modules.set(name, m);
    m.rename(join(this._prefix, name));
    return m;
  }

  private rename(prefix: string): void {
    this._prefix = prefix;
    for (const [n, t] of this._params) t.name = join(prefix, n);
    for (const [n, b] of this._buffers) if (b instanceof Tensor) b.name = join(prefix, n);
    for (const [n, m] of this._modules) m.rename(join(prefix, n));
  }

  // ---- forward ---------------------------------------------------------------------------

  forward(_x: In): Out {
    throw new Error(`${this.constructor.name} does not implement forward()`);
  }

  /** forward(x) inside a tidy: intermediates are released, the result moves to the caller's scope. */
  call(x: In): Out {
    if (this.disposed) throw new Error(`${this.constructor.name}${this._prefix ? ` "${this._prefix}"` : ''} was used after dispose()`);
    const y = tidy(() => this.forward(x));
    return this._forwardHooks === null ? y : this.runForwardHooks(y);
  }

  /**
   * Registers fn to see this module's output after every call() (not after a bare forward()), in
   * the caller's tidy scope, in registration order. A hook that returns a replacement owns the
   * output it was given (dispose or keep it). Used by Grad-CAM to capture a layer's activation.
   * Returns the function that removes the hook.
   */
  /** true when a forward hook is registered on this module (fused paths that skip call() check it) */
  get hasForwardHooks(): boolean {
    return this._forwardHooks !== null;
  }

  registerForwardHook(fn: ForwardHook<Out>): () => void {
    (this._forwardHooks ??= []).push(fn);
    return () => {
      const hooks = this._forwardHooks;
      const i = hooks ? hooks.indexOf(fn) : -1;
      if (i < 0) return;
      hooks!.splice(i, 1);
      if (hooks!.length === 0) this._forwardHooks = null;
    };
  }

  private runForwardHooks(y: Out): Out {
    for (const h of [...this._forwardHooks!]) {
      const r = h(y, this);
      if (r !== undefined) y = r;
    }
    return y;
  }

  // ---- traversal -------------------------------------------------------------------------

  /** Direct children with their local names, in registration order. */
  namedChildren(): [string, AnyModule][] {
    return [...this._modules];
  }

  children(): AnyModule[] {
    return [...this._modules.values()];
  }

  /** This module ('') and every descendant, pre-order, each once (like PyTorch named_modules). */
  namedModules(prefix = ''): [string, AnyModule][] {
    const out: [string, AnyModule][] = [];
    const seen = new Set<AnyModule>();
    const walk = (m: AnyModule, p: string): void => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([p, m]);
      for (const [n, c] of m._modules) walk(c, join(p, n));
    };
    walk(this, prefix);
    return out;
  }

  // ---- randomness ------------------------------------------------------------------------

  /**
   * Restarts every random stream of this module and its descendants (Dropout masks) from
   * `seed`, each submodule from a stream of its own derived from (seed, its dotted name). A
   * training loop calls it before each step with a seed derived from (run seed, model, epoch,
   * step), so the masks of a step do not depend on how many steps this process ran before
   * (a resumed run draws the same masks as an uninterrupted one).
   */
  reseedDropout(seed: number): void {
    for (const [n, m] of this.namedModules()) m.reseed(seedFor(seed, n));
  }

  /** Restarts this module's own random stream (none here; Dropout overrides it). */
  protected reseed(_seed: number): void {}

  /** Parameters with dotted names in PyTorch order (module pre-order, registration order); shared tensors once. */
  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [p, m] of this.namedModules())
      for (const [n, t] of m._params)
        if (!seen.has(t)) {
          seen.add(t);
          out.push([join(p, n), t]);
        }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Tensor buffers (running_mean, running_var, ...) with dotted names. Integer buffers are in stateDict() and namedIntBuffers(). */
  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [p, m] of this.namedModules()) for (const [n, b] of m._buffers) if (b instanceof Tensor) out.push([join(p, n), b]);
    return out;
  }

  namedIntBuffers(): [string, IntBuffer][] {
    const out: [string, IntBuffer][] = [];
    for (const [p, m] of this.namedModules()) for (const [n, b] of m._buffers) if (b instanceof IntBuffer) out.push([join(p, n), b]);
    return out;
  }

  /** Calls fn on this module and every descendant (pre-order), e.g. for custom init. */
  apply(fn: (m: AnyModule, name: string) => void): this {
    for (const [n, m] of this.namedModules()) fn(m, n);
    return this;
  }

  /** Number of parameter elements (shared parameters counted once). */
  numParameters(): number {
    return this.parameters().reduce((a, t) => a + t.size, 0);
  }

  // ---- state -----------------------------------------------------------------------------

  /** Every state entry in PyTorch state_dict order: the slot and what it holds. */
  private stateEntries(): [string, Tensor | IntBuffer][] {
    const out: [string, Tensor | IntBuffer][] = [];
    const walk = (m: AnyModule, p: string): void => {
      for (const [n, t] of m._params) out.push([join(p, n), t]);
      for (const [n, b] of m._buffers) out.push([join(p, n), b]);
      for (const [n, c] of m._modules) walk(c, join(p, n));
    };
    walk(this, '');
    return out;
  }

  /**
   * name -> tensor for every parameter and buffer, in PyTorch state_dict order. Tensors are new
   * handles on the live storage (no copy: a later optimizer step shows through); integer buffers
   * come as new i32 tensors of shape [] (PyTorch: int64 []). The caller owns every handle in the
   * map (dispose them, or call it inside a tidy; tidy does not look inside Maps).
   */
  stateDict(): Map<string, Tensor> {
    const sd = new Map<string, Tensor>();
    for (const [name, v] of this.stateEntries()) {
      if (v instanceof IntBuffer && Math.abs(v.value) > 0x7fffffff) throw new RangeError(`stateDict: ${name} = ${v.value} does not fit the i32 tensor it is exported as`);
      sd.set(name, v instanceof Tensor ? v.detach() : tensor([v.value], [], 'i32'));
    }
    return sd;
  }

  /**
   * Copies values into the existing tensors (references held elsewhere, e.g. by an optimizer,
   * stay valid). Shape or dtype mismatches always throw; with `strict` (default) missing and
   * unexpected names do too, all listed in one error. Integer buffers accept a one-element tensor
   * (read back, hence async) or a number/bigint. Resolves to the missing/unexpected names.
   */
  async loadStateDict(sd: ReadonlyMap<string, StateValue>, opts: { strict?: boolean } = {}): Promise<LoadResult> {
    const strict = opts.strict ?? true;
    const entries = this.stateEntries();
    const expected = new Set(entries.map(([n]) => n));
    const missingKeys: string[] = [];
    const unexpectedKeys = [...sd.keys()].filter((k) => !expected.has(k));
    const mismatched: string[] = [];
    for (const [name, slot] of entries) {
      const v = sd.get(name);
      if (v === undefined) {
        missingKeys.push(name);
        continue;
      }
      if (slot instanceof Tensor) {
        if (!(v instanceof Tensor)) mismatched.push(`${name}: expected a tensor ${fmt(slot.shape)}, got a ${typeof v}`);
        else if (v.disposed) mismatched.push(`${name}: the given tensor was disposed`);
        else if (!sameShape(v.shape, slot.shape) || v.dtype !== slot.dtype) mismatched.push(`${name}: expected ${fmt(slot.shape)} ${slot.dtype}, got ${fmt(v.shape)} ${v.dtype}`);
      } else if (v instanceof Tensor) {
        if (v.size !== 1) mismatched.push(`${name}: expected a one-element integer tensor, got ${fmt(v.shape)} ${v.dtype}`);
      } else if (!Number.isInteger(Number(v))) mismatched.push(`${name}: expected an integer, got ${v}`);
    }
    const problems: string[] = [];
    if (strict && missingKeys.length) problems.push(`missing: ${missingKeys.join(', ')}`);
    if (strict && unexpectedKeys.length) problems.push(`unexpected: ${unexpectedKeys.join(', ')}`);
    if (mismatched.length) problems.push(`mismatched: ${mismatched.join('; ')}`);
    if (problems.length) throw new ShapeError(`loadStateDict(${this.constructor.name}): ${problems.join(' | ')}`);

    const reads: Promise<void>[] = [];
    for (const [name, slot] of entries) {
      const v = sd.get(name);
      if (v === undefined) continue;
      if (slot instanceof Tensor) {
        if ((v as Tensor).storage !== slot.storage) copyInto(slot, v as Tensor); // loading its own state dict: nothing to copy
      } else if (v instanceof Tensor) reads.push(v.toArray().then((a) => void (slot.value = Math.round(a[0]))));
      else slot.value = Number(v);
    }
    await Promise.all(reads);
    return { missingKeys, unexpectedKeys };
  }

  // ---- modes and lifetime ----------------------------------------------------------------

  /** Sets training mode on this module and every descendant. */
  train(on = true): this {
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Drops every parameter's gradient (disposing it). */
  zeroGrad(): void {
    for (const t of this.parameters()) {
      t.grad?.dispose();
      t.grad = null;
    }
  }

  private disposedFlag = false;
  get disposed(): boolean {
    return this.disposedFlag;
  }

  /** Frees every parameter (and its gradient) and buffer of this module and its descendants. */
  dispose(): void {
    for (const [, m] of this.namedModules()) {
      for (const t of m._params.values()) {
        t.grad?.dispose();
        t.grad = null;
        t.dispose();
      }
      for (const b of m._buffers.values()) if (b instanceof Tensor) b.dispose();
      m.disposedFlag = true;
    }
  }

  /** One line per module: name, class and its own parameter shapes. */
  toString(): string {
    return this.namedModules()
      .map(([n, m]) => {
        const own = [...m._params].map(([k, t]) => `${k} ${fmt(t.shape)}`).join(', ');
        return `${'  '.repeat(n ? n.split('.').length : 0)}${n || '(root)'}: ${m.constructor.name}${own ? ` (${own})` : ''}`;
      })
      .join('\n');
  }
}
