// The single owner of the Dawn instance, adapter and device.
//
// The object returned by `create()` must stay referenced for the whole process: if V8
// collects it, Dawn crashes in InstanceBase::ProcessEvents (see ../shared/PLATFORM.md).
// It therefore lives in a module-level variable that is never cleared.
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);

// Dawn's Node binding polls for finished GPU work by rescheduling itself with the global
// `setImmediate` while any promise (mapAsync, onSubmittedWorkDone) is pending: a busy loop
// that, on a CPU adapter (lavapipe), takes a core from the driver's own worker threads
// (measured: 930 ms of main-thread CPU in a 2.1 s conv wait on 2 cores). While a wait started
// by `gpuWait` has lasted longer than SPIN_MS, those polls go through a 1 ms timer instead.
const SPIN_MS = Number(process.env.ROSKD_SPIN_MS ?? 2);
const nodeSetImmediate = globalThis.setImmediate;
const nodeClearImmediate = globalThis.clearImmediate;
let waits = 0;
let waitSince = 0;
function politeSetImmediate(fn: (...a: unknown[]) => void, ...args: unknown[]): NodeJS.Immediate {
  if (waits > 0 && performance.now() - waitSince > SPIN_MS) return setTimeout(fn, 1, ...args) as unknown as NodeJS.Immediate;
  return nodeSetImmediate(fn, ...args);
}
function politeClearImmediate(h: NodeJS.Immediate | undefined): void {
  if (h && typeof (h as unknown as NodeJS.Timeout).refresh === 'function') clearTimeout(h as unknown as NodeJS.Timeout);
  else nodeClearImmediate(h);
}
// keep util.promisify(setImmediate) working: it looks for Node's custom-promisify symbol
const promisifyKey = Symbol.for('nodejs.util.promisify.custom');
Object.assign(politeSetImmediate, { __promisify__: nodeSetImmediate.__promisify__, [promisifyKey]: (nodeSetImmediate as unknown as Record<symbol, unknown>)[promisifyKey] });
Object.assign(globalThis, { setImmediate: politeSetImmediate, clearImmediate: politeClearImmediate });

/** Awaits a GPU promise without spinning a CPU core (see above). */
export async function gpuWait<T>(p: Promise<T>): Promise<T> {
  if (waits++ === 0) waitSince = performance.now();
  try {
    return await p;
  } finally {
    waits--;
  }
}

export const SETUP_HINT = 'run `npm run setup` to install a WebGPU driver (Mesa lavapipe on CPU-only Linux)';

/**
 * Limits the engine reads. With `limits: 'adapter'` (the default) it asks for the adapter's real
 * maxima; with `limits: 'default'` it asks for nothing, so the device has WebGPU's spec defaults
 * (what a browser grants without asking): kernels must then pick variants that fit.
 */
const REQUESTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxBindGroups',
  'maxUniformBufferBindingSize',
] as const;

export class GpuError extends Error {
  override name = 'GpuError';
}

export interface Gpu {
  device: GPUDevice;
  adapter: GPUAdapter;
  info: { vendor: string; architecture: string; device: string; description: string; backend: string };
  features: string[];
  limits: Record<(typeof REQUESTED_LIMITS)[number], number>;
  /** 'adapter': the adapter's maxima were requested; 'default': WebGPU's defaults only */
  limitsMode: OpenOptions['limits'];
  hasTimestamps: boolean;
  /** Lanes per subgroup when the `subgroups` feature is enabled and the size is fixed, else 0. */
  subgroupSize: number;
}

export interface OpenOptions {
  /** 'adapter': the adapter's maxima; 'default': WebGPU's spec defaults only (portability check) */
  limits: 'default' | 'adapter';
}

/** The one place the environment chooses device options (ROSKD_LIMITS=default). */
export function envOpenOptions(env = process.env): OpenOptions {
  const v = env.ROSKD_LIMITS;
  if (v !== undefined && v !== '' && v !== 'default' && v !== 'adapter') throw new GpuError(`ROSKD_LIMITS="${v}": expected "default" or "adapter"`);
  return { limits: v === 'default' ? 'default' : 'adapter' };
}

let instance: GPU | null = null; // never released: see the header comment
let gpu: Gpu | null = null;
let pending: Promise<Gpu> | null = null;
/** Set when the device is lost or an uncaptured error occurs; the next GPU call throws it. */
let fatal: Error | null = null;

/** Dawn instance flags derived from ROSKD_BACKEND / ROSKD_ADAPTER. */
export function instanceFlags(env = process.env): string[] {
  const flags: string[] = [];
  if (env.ROSKD_BACKEND) flags.push(`backend=${env.ROSKD_BACKEND}`);
  if (env.ROSKD_ADAPTER) flags.push(`adapter=${env.ROSKD_ADAPTER}`);
  return flags;
}

/** Dawn's "no suitable backends found\nAvailable adapters:\n * ..." folded into one line. */
function adapterError(err: unknown): GpuError {
  const text = err instanceof Error ? err.message : String(err);
  const listed = [...text.matchAll(/\* backend: '([^']+)', name: '([^']+)'/g)].map((m) => `${m[2]} (${m[1]})`);
  const wanted = [process.env.ROSKD_ADAPTER && `ROSKD_ADAPTER="${process.env.ROSKD_ADAPTER}"`, process.env.ROSKD_BACKEND && `ROSKD_BACKEND="${process.env.ROSKD_BACKEND}"`]
    .filter(Boolean)
    .join(', ');
  if (listed.length > 0) return new GpuError(`no WebGPU adapter matches ${wanted || 'the request'}; available adapters: ${listed.join('; ')}`);
  return new GpuError(`no WebGPU adapter found (${text.split('\n')[0]}); ${SETUP_HINT}`);
}

async function open(opts: OpenOptions): Promise<Gpu> {
  instance ??= create(instanceFlags());
  let adapter: GPUAdapter | null;
  try {
    adapter = await instance.requestAdapter({ powerPreference: 'high-performance' });
  } catch (err) {
    throw adapterError(err);
  }
  if (!adapter) throw new GpuError(`no WebGPU adapter found; ${SETUP_HINT}`);
  const requiredLimits: Record<string, number> = {};
  if (opts.limits === 'adapter') for (const name of REQUESTED_LIMITS) requiredLimits[name] = (adapter.limits as unknown as Record<string, number>)[name];
  const wanted = ['timestamp-query', 'subgroups'] as GPUFeatureName[];
  const requiredFeatures = wanted.filter((f) => adapter!.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'roskd' });
  device.addEventListener('uncapturederror', (ev) => {
    fatal ??= new GpuError(`WebGPU error: ${(ev as GPUUncapturedErrorEvent).error.message}`);
  });
  void device.lost.then((info) => {
    if (info.reason !== 'destroyed') fatal = new GpuError(`WebGPU device lost (${info.reason}): ${info.message}`);
  });
  const i = adapter.info;
  const limits = Object.fromEntries(REQUESTED_LIMITS.map((n) => [n, (device.limits as unknown as Record<string, number>)[n]])) as Gpu['limits'];
  return {
    device,
    adapter,
    info: {
      vendor: i.vendor,
      architecture: i.architecture,
      device: i.device,
      description: i.description,
      backend: (i as unknown as { backend?: string }).backend ?? 'vulkan',
    },
    features: [...adapter.features].sort(),
    limits,
    limitsMode: opts.limits,
    hasTimestamps: requiredFeatures.includes('timestamp-query'),
    subgroupSize: subgroupSize(requiredFeatures, i),
  };
}

/**
 * Kernels that share loads across a subgroup are generated for one size: use them only when the
 * adapter reports a single size (lavapipe: 8) and ROSKD_SUBGROUPS is not 0.
 */
function subgroupSize(features: GPUFeatureName[], info: GPUAdapterInfo): number {
  if (!features.includes('subgroups' as GPUFeatureName) || process.env.ROSKD_SUBGROUPS === '0') return 0;
  const { subgroupMinSize: lo, subgroupMaxSize: hi } = info as unknown as { subgroupMinSize?: number; subgroupMaxSize?: number };
  return lo !== undefined && lo === hi ? lo : 0;
}

/** Opens the device once; every later call returns the same one. */
export function initGpu(): Promise<Gpu> {
  if (gpu) return Promise.resolve(gpu);
  pending ??= open(envOpenOptions()).then(
    (g) => (gpu = g),
    (err) => {
      pending = null;
      throw err;
    },
  );
  return pending;
}

/** The open device; throws if `init()` has not completed or the device has failed. */
export function getGpu(): Gpu {
  if (fatal) throw fatal;
  if (!gpu) throw new GpuError('roskd: the GPU is not initialised; `await init()` first');
  return gpu;
}

/** Rethrows an asynchronous device failure (uncaptured error, loss) as a JS error. */
export function checkFatal(): void {
  if (fatal) throw fatal;
}

/**
 * Runs `fn` inside validation + out-of-memory error scopes and throws a GpuError that names
 * `what` (the kernel) if either fires. Awaiting the scopes costs a round trip, so the dispatch
 * path uses it only in debug mode (ROSKD_DEBUG=1) and at pipeline creation.
 */
export async function withErrorScope<T>(what: string, fn: () => T): Promise<T> {
  const { device } = getGpu();
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let result: T;
  try {
    result = fn();
  } finally {
    const validation = await device.popErrorScope();
    const oom = await device.popErrorScope();
    const err = validation ?? oom;
    if (err) throw new GpuError(`${what}: ${err.message.trim()}`);
  }
  return result;
}

/** The Dawn instance (for tests that open extra devices); it stays alive for the process. */
export function getInstance(): GPU {
  instance ??= create(instanceFlags());
  return instance;
}
