// The single owner of the adapter and device, on any WebGPU implementation.
//
// This module imports nothing platform-specific: the `GPU` object comes from `init({ gpu })`,
// or else from `#platform` (package.json `imports`): engine/node/dawn.ts under Node (Dawn, the
// ROSKD_* environment variables, the polling fix), engine/browser/platform.ts elsewhere
// (`navigator.gpu`). A bundler for the browser picks the second by itself.
import { platform } from '#platform';

/** Options for `init()`. Under Node, unset ones come from ROSKD_* variables (engine/node/dawn.ts). */
export interface InitOptions {
  /** The WebGPU entry point: `navigator.gpu`, a Dawn instance, ... Default: the platform's own. */
  gpu?: GPU;
  /** Passed to `gpu.requestAdapter()`. Default `{ powerPreference: 'high-performance' }`. */
  adapter?: GPURequestAdapterOptions;
  /**
   * 'adapter' (default): ask the device for the adapter's real maxima (bigger bindings, more
   * storage buffers, larger workgroups). 'default': ask for nothing raised, i.e. WebGPU's
   * default limits, as a portable page would get (ROSKD_LIMITS=default).
   */
  limits?: 'adapter' | 'default';
  /** Use kernels that share loads across a subgroup when the adapter has one fixed size. Default true (ROSKD_SUBGROUPS=0). */
  subgroups?: boolean;
  /** Dawn only, ignored with `gpu`: force a backend (ROSKD_BACKEND: vulkan, opengles, null). */
  backend?: string;
  /** Dawn only, ignored with `gpu`: pick an adapter by name (ROSKD_ADAPTER). */
  adapterName?: string;
  /** Dawn under Node only: how long a GPU wait may busy-poll before polling on a 1 ms timer (ROSKD_SPIN_MS, default 2). */
  spinMs?: number;
}

/** What a platform module (engine/node/dawn.ts, engine/browser/platform.ts) provides. */
export interface Platform {
  /** Defaults for unset init options (Node: the ROSKD_* environment variables). */
  defaults(): InitOptions;
  /** The GPU object to use when `init()` is given none. */
  gpu(opts: InitOptions): GPU;
  /** Wraps every wait on the GPU (Node: keeps Dawn's polling from spinning a core). */
  wait<T>(p: Promise<T>): Promise<T>;
  /** A one-line explanation when requestAdapter throws or finds nothing. */
  adapterError(err: unknown, opts: InitOptions): string;
  /** Frees native memory behind dropped WebGPU objects (Node on lavapipe: see engine/node/native-memory.ts). */
  reclaim?(): void;
}

/** Asks the platform to free native memory held by dropped WebGPU objects (bind groups). */
export function reclaimNativeMemory(): void {
  platform.reclaim?.();
}

/** Awaits a GPU promise the way the platform wants (Node: without spinning a CPU core). */
export function gpuWait<T>(p: Promise<T>): Promise<T> {
  return platform.wait(p);
}

export const SETUP_HINT = 'run `npm run setup` to install a WebGPU driver (Mesa lavapipe on CPU-only Linux)';

/** Limits we ask for with limits: 'adapter' (the adapter's real maxima), and report in `Gpu.limits`. */
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
  /** The device's actual limits (the adapter's maxima, or WebGPU's defaults with limits: 'default'). */
  limits: Record<(typeof REQUESTED_LIMITS)[number], number>;
  /** Which limits were requested. */
  limitsMode: 'adapter' | 'default';
  hasTimestamps: boolean;
  /** Lanes per subgroup when the `subgroups` feature is enabled and the size is fixed, else 0. */
  subgroupSize: number;
}

let gpu: Gpu | null = null;
let pending: Promise<Gpu> | null = null;
/** Set when the device is lost or an uncaptured error occurs; the next GPU call throws it. */
let fatal: Error | null = null;

async function open(opts: InitOptions): Promise<Gpu> {
  let entry: GPU;
  try {
    entry = opts.gpu ?? platform.gpu(opts);
  } catch (err) {
    throw new GpuError(err instanceof Error ? err.message : String(err));
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await entry.requestAdapter(opts.adapter ?? { powerPreference: 'high-performance' });
  } catch (err) {
    throw new GpuError(platform.adapterError(err, opts));
  }
  if (!adapter) throw new GpuError(platform.adapterError(null, opts));
  const limitsMode = opts.limits ?? 'adapter';
  if (limitsMode !== 'adapter' && limitsMode !== 'default') throw new GpuError(`init: limits (ROSKD_LIMITS) must be 'adapter' or 'default', got ${JSON.stringify(limitsMode)}`);
  const requiredLimits: Record<string, number> = {};
  if (limitsMode === 'adapter') for (const name of REQUESTED_LIMITS) requiredLimits[name] = (adapter.limits as unknown as Record<string, number>)[name];
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
    limitsMode,
    hasTimestamps: requiredFeatures.includes('timestamp-query'),
    subgroupSize: opts.subgroups === false ? 0 : subgroupSize(requiredFeatures, i),
  };
}

/**
 * Kernels that share loads across a subgroup are generated for one size: use them only when the
 * adapter reports a single size (lavapipe: 8) and subgroups are not turned off.
 */
function subgroupSize(features: GPUFeatureName[], info: GPUAdapterInfo): number {
  if (!features.includes('subgroups' as GPUFeatureName)) return 0;
  const { subgroupMinSize: lo, subgroupMaxSize: hi } = info as unknown as { subgroupMinSize?: number; subgroupMaxSize?: number };
  return lo !== undefined && lo === hi ? lo : 0;
}

/**
 * Opens the device once; every later call returns the same one (its options are then ignored).
 * Unset options take the platform's defaults (Node: ROSKD_* variables).
 */
export function initGpu(options: InitOptions = {}): Promise<Gpu> {
  if (gpu) return Promise.resolve(gpu);
  const opts = { ...platform.defaults(), ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as InitOptions;
  pending ??= open(opts).then(
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
