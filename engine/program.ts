// Kernel programs and the command recorder.
//
// A Program is a small description beside its shader (ONNX Runtime WebGPU style): the WGSL
// file in shaders/ (reached through the generated shaders/index.gen.ts, so no file system is
// needed), textual defines, a cache key. Pipelines are cached by that key. Dispatches
// are recorded into one command encoder and submitted together on flush() (before a readback,
// an upload, or every MAX_PENDING dispatches), never one submit per op.
import { getGpu, checkFatal, GpuError, gpuWait, reclaimNativeMemory } from './device.ts';
import { WGSL } from '../shaders/index.gen.ts';
import { parseUniformLayout, packUniforms, checkExtraUniforms, UniformError, type UniformLayout, type Uniforms, type UniformViews } from './uniforms.ts';

export type { Uniforms, UniformValue, UniformLayout } from './uniforms.ts';

const UNIFORM_SLOT = 256; // minUniformBufferOffsetAlignment
const UNIFORM_CHUNK = 256 * UNIFORM_SLOT;
// Submitting every 64 dispatches lets a CPU adapter start on them while JS records the rest
// (ResNet-18 w1/16 b32 step: 86 -> 70 ms vs 512; no change for large steps).
const MAX_PENDING = 64;
export const MAX_GROUPS = 65535;
/**
 * Invocations per workgroup of the elementwise kernels (`@workgroup_size(256)` in their WGSL):
 * WebGPU's default maxComputeInvocationsPerWorkgroup, so they run on any adapter.
 */
export const WG = 256;

export interface Program {
  /** kernel name: appears in errors, labels and profiles */
  name: string;
  /** shaders/<shader>.wgsl */
  shader: string;
  /** `{{KEY}}` substitutions in the WGSL text (compile-time choices only, never batch shapes) */
  defines?: Record<string, string | number>;
}

/** A storage binding: a whole tensor buffer, or a byte range of one. */
export interface Binding {
  buffer: GPUBuffer;
  offset?: number;
  size?: number;
}

const sources = new Map<string, string>();
function loadShader(file: string): string {
  let src = sources.get(file);
  if (src === undefined) {
    const text = Object.hasOwn(WGSL, file) ? WGSL[file] : undefined;
    if (text === undefined) throw new GpuError(`shaders/${file}.wgsl: not in shaders/index.gen.ts (no such file, or \`npm run gen-shaders\` was not run after adding it)`);
    src = text.replace(/^\/\/#include "([\w.-]+)\.wgsl"$/gm, (_, inc: string) => loadShader(inc));
    sources.set(file, src);
  }
  return src;
}

export function shaderSource(p: Program): string {
  return loadShader(p.shader).replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const v = p.defines?.[key];
    if (v === undefined) throw new GpuError(`kernel ${p.name}: shaders/${p.shader}.wgsl needs define {{${key}}}`);
    return String(v);
  });
}

function cacheKey(p: Program): string {
  const d = p.defines ? Object.entries(p.defines).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join(';') : '';
  return `${p.shader}|${d}`;
}

interface Compiled {
  id: number;
  pipeline: GPUComputePipeline;
  /** fetched once: each getBindGroupLayout call costs a native round trip and a new wrapper */
  layout: GPUBindGroupLayout;
  /** the uniform struct at binding 0, parsed once per pipeline (null: the shader has none) */
  uniforms: UniformLayout | null;
}
const pipelines = new Map<string, Compiled>();
/** Pipelines by defines object (memoised defines: no multi-kilobyte key to build and hash). */
const byDefines = new WeakMap<object, Map<string, Compiled>>();
function compiledFor(p: Program): Compiled {
  const fast = p.defines ? byDefines.get(p.defines)?.get(p.shader) : undefined;
  if (fast) return fast;
  const key = cacheKey(p);
  let c = pipelines.get(key);
  if (p.defines && c) {
    let m = byDefines.get(p.defines);
    if (!m) byDefines.set(p.defines, (m = new Map()));
    m.set(p.shader, c);
  }
  if (!c) {
    const { device } = getGpu();
    const code = shaderSource(p);
    const uniforms = parseUniformLayout(code, kernelWhat(p));
    if (uniforms && uniforms.words * 4 > UNIFORM_SLOT) throw new UniformError(`${kernelWhat(p)}: uniform struct ${uniforms.struct} takes ${uniforms.words * 4} bytes, above the ${UNIFORM_SLOT}-byte slot`);
    const module = device.createShaderModule({ code, label: p.name });
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: p.name });
    c = { id: pipelines.size, pipeline, layout: pipeline.getBindGroupLayout(0), uniforms };
    pipelines.set(key, c);
  }
  return c;
}
export function pipelineFor(p: Program): GPUComputePipeline {
  return compiledFor(p).pipeline;
}

const kernelWhat = (p: Program): string => `kernel ${p.name} (shaders/${p.shader}.wgsl)`;

/** The parsed uniform block of a kernel (compiles its pipeline if needed); null when it has none. */
export function uniformLayout(p: Program): UniformLayout | null {
  return compiledFor(p).uniforms;
}

// Bind groups are cached by (pipeline, buffers, offsets, sizes): creating one costs ~20 us in
// Dawn (measured on lavapipe), as much as running a small kernel, and a training loop binds the
// same pooled buffers (pool.ts hands them out in a stable order) and uniform slots step after
// step. Buffers are only destroyed by trimPool and never reused, so a stale entry is never hit;
// the cache is simply emptied when full. A dropped bind group is freed only when V8 collects its
// wrapper, so emptying the cache also calls the reclaimer (engine/node/native-memory.ts under Node:
// a full collection, and a clear error near the process's memory-mapping limit).
const bufferIds = new WeakMap<GPUBuffer, number>();
let nextBufferId = 1;
function bufferId(b: GPUBuffer): number {
  let id = bufferIds.get(b);
  if (id === undefined) bufferIds.set(b, (id = nextBufferId++));
  return id;
}
const bindGroups = new Map<string, GPUBindGroup>();
export const MAX_BIND_GROUPS = 8192;
/** hits/misses of the cache; clears: times it was emptied; live: bind-group wrappers not yet collected by V8 */
export const bindGroupStats = { hits: 0, misses: 0, clears: 0, live: 0 };
const collected = new FinalizationRegistry<null>(() => void bindGroupStats.live--);

/** Workgroups for `n` items at `perGroup` items per workgroup (WG: one per invocation), folded by `grid`. */
export function groupsFor(n: number, perGroup: number = WG): [number, number] {
  return grid(Math.ceil(n / perGroup));
}

/** Folds a 1-D count of workgroups into a 2-D grid below the per-dimension limit. */
export function grid(groups: number): [number, number] {
  if (groups <= MAX_GROUPS) return [Math.max(1, groups), 1];
  const y = Math.ceil(groups / MAX_GROUPS);
  return [Math.ceil(groups / y), y];
}

interface Profile {
  querySet: GPUQuerySet;
  names: string[];
}

class Recorder {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pending = 0;
  private chunks: { buffer: GPUBuffer; data: Uint32Array; views: UniformViews }[] = [];
  private chunk = 0;
  private slot = 0;
  private afterSubmit: (() => void)[] = [];
  profile: Profile | null = null;
  profiling = false;
  readonly kernelTimes = new Map<string, { ms: number; calls: number }>();
  private profilePending: Promise<void>[] = [];
  dispatchCount = 0;
  submitCount = 0;

  private uniformSlot(p: Program, layout: UniformLayout, values: Uniforms): { buffer: GPUBuffer; offset: number; size: number } {
    if (this.slot * UNIFORM_SLOT >= UNIFORM_CHUNK) {
      this.chunk++;
      this.slot = 0;
    }
    if (this.chunk === this.chunks.length) {
      const { device } = getGpu();
      const buffer = device.createBuffer({ size: UNIFORM_CHUNK, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'uniforms' });
      const data = new Uint32Array(UNIFORM_CHUNK / 4);
      this.chunks.push({ buffer, data, views: { u32: data, i32: new Int32Array(data.buffer), f32: new Float32Array(data.buffer) } });
    }
    const c = this.chunks[this.chunk];
    const offset = this.slot * UNIFORM_SLOT;
    packUniforms(layout, values, c.views, offset / 4, kernelWhat(p)); // throws before the slot is taken
    checkExtraUniforms(layout, values, kernelWhat(p));
    this.slot++;
    return { buffer: c.buffer, offset, size: layout.words * 4 };
  }

  private ensurePass(): GPUComputePassEncoder {
    if (!this.encoder) this.encoder = getGpu().device.createCommandEncoder({ label: 'roskd' });
    if (this.profiling) return this.encoder.beginComputePass(); // one pass per dispatch when timing
    this.pass ??= this.encoder.beginComputePass();
    return this.pass;
  }

  dispatch(p: Program, uniforms: Uniforms, bindings: readonly Binding[], groups: number | [number, number]): void {
    checkFatal();
    const { device } = getGpu();
    const { id, pipeline, layout, uniforms: ul } = compiledFor(p);
    let u: { buffer: GPUBuffer; offset: number; size: number } | null = null;
    if (ul) u = this.uniformSlot(p, ul, uniforms);
    else for (const k in uniforms) throw new UniformError(`${kernelWhat(p)}: has no uniform block, but uniform ${k} was given`);
    let key = u ? `${id}|${bufferId(u.buffer)}:${u.offset}:${u.size}` : `${id}|`;
    for (const b of bindings) key += `|${bufferId(b.buffer)}:${b.offset ?? 0}:${b.size}`;
    let bindGroup = bindGroups.get(key);
    if (bindGroup) bindGroupStats.hits++;
    else {
      bindGroupStats.misses++;
      const entries: GPUBindGroupEntry[] = [];
      if (u) entries.push({ binding: 0, resource: u });
      // checked here, on a cache miss only: Dawn's own error would not say which tensor
      const maxBinding = getGpu().limits.maxStorageBufferBindingSize;
      bindings.forEach((b, i) => {
        const bytes = b.size ?? b.buffer.size - (b.offset ?? 0);
        if (bytes > maxBinding)
          throw new GpuError(`${kernelWhat(p)}: storage binding ${i + 1} is ${bytes} bytes, above this device's maxStorageBufferBindingSize ${maxBinding} (split the tensor, e.g. a smaller batch)`);
      });
      bindings.forEach((b, i) => entries.push({ binding: i + 1, resource: { buffer: b.buffer, offset: b.offset ?? 0, size: b.size } }));
      bindGroup = device.createBindGroup({ layout, entries, label: p.name });
      bindGroupStats.live++;
      collected.register(bindGroup, null);
      if (bindGroups.size >= MAX_BIND_GROUPS) {
        bindGroups.clear();
        bindGroupStats.clears++;
        reclaimNativeMemory();
      }
      bindGroups.set(key, bindGroup);
    }
    const [gx, gy] = typeof groups === 'number' ? grid(groups) : groups;
    let pass: GPUComputePassEncoder;
    if (this.profiling) {
      this.profileSlot(p.name);
      const prof = this.profile!;
      const at = prof.names.length - 1;
      this.pass?.end();
      this.pass = null;
      if (!this.encoder) this.encoder = device.createCommandEncoder({ label: 'roskd' });
      pass = this.encoder.beginComputePass({ timestampWrites: { querySet: prof.querySet, beginningOfPassWriteIndex: 2 * at, endOfPassWriteIndex: 2 * at + 1 } });
    } else pass = this.ensurePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(gx, gy);
    if (this.profiling) pass.end();
    this.pending++;
    this.dispatchCount++;
    if (this.pending >= MAX_PENDING || (this.profile && this.profile.names.length >= 2048)) this.flush();
  }

  /** Records a buffer-to-buffer copy (ends the current compute pass). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.pass?.end();
    this.pass = null;
    this.encoder ??= getGpu().device.createCommandEncoder({ label: 'roskd' });
    this.encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.pending++;
  }

  /** Runs `fn` once the work recorded so far has been submitted (e.g. to recycle its buffers). */
  onSubmit(fn: () => void): void {
    this.afterSubmit.push(fn);
  }

  /** Submits everything recorded so far. */
  flush(): void {
    checkFatal();
    const { device } = getGpu();
    if (this.encoder) {
      this.pass?.end();
      this.pass = null;
      const prof = this.profile;
      if (prof && prof.names.length > 0) this.resolveProfile(this.encoder, prof);
      for (let i = 0; i <= this.chunk && i < this.chunks.length; i++) {
        const used = i < this.chunk ? UNIFORM_CHUNK : this.slot * UNIFORM_SLOT;
        if (used > 0) device.queue.writeBuffer(this.chunks[i].buffer, 0, this.chunks[i].data as Uint32Array<ArrayBuffer>, 0, used / 4);
      }
      device.queue.submit([this.encoder.finish()]);
      this.encoder = null;
      this.submitCount++;
    }
    this.chunk = 0;
    this.slot = 0;
    this.pending = 0;
    const fns = this.afterSubmit;
    this.afterSubmit = [];
    for (const fn of fns) fn();
  }

  private profileSlot(name: string): void {
    if (!this.profile) {
      const querySet = getGpu().device.createQuerySet({ type: 'timestamp', count: 4096 });
      this.profile = { querySet, names: [] };
    }
    this.profile.names.push(name);
  }

  private resolveProfile(encoder: GPUCommandEncoder, prof: Profile): void {
    const { device } = getGpu();
    const n = prof.names.length * 2;
    const resolve = device.createBuffer({ size: n * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const read = device.createBuffer({ size: n * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.resolveQuerySet(prof.querySet, 0, n, resolve, 0);
    encoder.copyBufferToBuffer(resolve, 0, read, 0, n * 8);
    const names = prof.names;
    this.profile = { querySet: prof.querySet, names: [] };
    this.onSubmit(() => {
      this.profilePending.push(
        read.mapAsync(GPUMapMode.READ).then(() => {
          const t = new BigInt64Array(read.getMappedRange());
          names.forEach((name, i) => {
            const ms = Number(t[2 * i + 1] - t[2 * i]) / 1e6;
            const e = this.kernelTimes.get(name) ?? { ms: 0, calls: 0 };
            e.ms += ms;
            e.calls++;
            this.kernelTimes.set(name, e);
          });
          read.unmap();
          read.destroy();
          resolve.destroy();
        }),
      );
    });
  }

  async drainProfile(): Promise<void> {
    const p = this.profilePending;
    this.profilePending = [];
    await gpuWait(Promise.all(p));
  }
}

export const recorder = new Recorder();

/**
 * Records one kernel launch. `uniforms` fill the shader's uniform struct (binding 0) by field
 * name: every field once, integers for u32/i32 fields (booleans become 0/1), any number for f32,
 * arrays for vector/array fields. Storage bindings follow from binding 1, in order.
 */
export function dispatch(p: Program, uniforms: Uniforms, bindings: readonly Binding[], groups: number | [number, number]): void {
  recorder.dispatch(p, uniforms, bindings, groups);
}

export function flush(): void {
  recorder.flush();
}

/** Submits pending work and waits for the GPU to finish it; rethrows device errors. */
export async function sync(): Promise<void> {
  recorder.flush();
  await gpuWait(getGpu().device.queue.onSubmittedWorkDone());
  checkFatal();
}

/**
 * Per-kernel GPU time: while enabled every dispatch gets its own timestamped pass
 * (slower; for benchmarks). Requires the adapter's timestamp-query feature.
 */
export function setProfiling(on: boolean): void {
  if (on && !getGpu().hasTimestamps) throw new GpuError('kernel profiling needs the timestamp-query feature, which this adapter lacks');
  recorder.flush();
  recorder.profiling = on;
}

export async function kernelProfile(reset = true): Promise<Map<string, { ms: number; calls: number }>> {
  await sync();
  await recorder.drainProfile();
  const out = new Map(recorder.kernelTimes);
  if (reset) recorder.kernelTimes.clear();
  return out;
}
