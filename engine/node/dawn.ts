// The Node platform (package.json `imports` "#platform", condition "node"): Dawn's Node
// binding (npm `webgpu`), the ROSKD_* environment variables, and the polling fix. The only
// engine module that touches Node or Dawn; engine/device.ts works on any `GPU` object.
//
// The object returned by `create()` must stay referenced for the whole process: if V8
// collects it, Dawn crashes in InstanceBase::ProcessEvents. It therefore lives in a
// module-level variable that is never cleared.
import { create, globals } from 'webgpu';
import { SETUP_HINT, type InitOptions, type Platform } from '../device.ts';
import { reclaimNativeMemory } from './native-memory.ts';

Object.assign(globalThis, globals);

/** init() options from the environment; explicit options passed to init() win. */
function envOptions(env = process.env): InitOptions {
  const o: InitOptions = {};
  if (env.ROSKD_BACKEND) o.backend = env.ROSKD_BACKEND;
  if (env.ROSKD_ADAPTER) o.adapterName = env.ROSKD_ADAPTER;
  if (env.ROSKD_SUBGROUPS === '0') o.subgroups = false;
  if (env.ROSKD_SPIN_MS !== undefined && env.ROSKD_SPIN_MS !== '') o.spinMs = Number(env.ROSKD_SPIN_MS);
  if (env.ROSKD_LIMITS) o.limits = env.ROSKD_LIMITS as InitOptions['limits'];
  return o;
}

// Dawn's Node binding polls for finished GPU work by rescheduling itself with the global
// `setImmediate` while any promise (mapAsync, onSubmittedWorkDone) is pending: a busy loop
// that, on a CPU adapter (lavapipe), takes a core from the driver's own worker threads
// (measured: 930 ms of main-thread CPU in a 2.1 s conv wait on 2 cores). While a wait started
// by `gpuWait` has lasted longer than spinMs, those polls go through a timer instead: 1 ms at
// first, then 1/64 of the time waited so far, at most POLL_MAX_MS. A poll costs the main thread
// ~50 us, so a ResNet-18 width-1 step (a wait of seconds) polled every 1 ms spent ~400 ms of
// main-thread CPU on ~6000 polls, taken from lavapipe's workers; the ramp keeps ~1/6 of the polls
// and makes a wait end at most 1/64 of its length (and POLL_MAX_MS) late (bench/NOTES.md, round 5).
let spinMs = envOptions().spinMs ?? 2;
const POLL_MAX_MS = 8;
const pollDelay = (waited: number): number => Math.min(POLL_MAX_MS, Math.max(1, Math.floor(waited / 64)));
const nodeSetImmediate = globalThis.setImmediate;
const nodeClearImmediate = globalThis.clearImmediate;
let waits = 0;
let waitSince = 0;
function politeSetImmediate(fn: (...a: unknown[]) => void, ...args: unknown[]): NodeJS.Immediate {
  const waited = performance.now() - waitSince;
  if (waits > 0 && waited > spinMs) return setTimeout(fn, pollDelay(waited), ...args) as unknown as NodeJS.Immediate;
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

async function wait<T>(p: Promise<T>): Promise<T> {
  if (waits++ === 0) waitSince = performance.now();
  try {
    return await p;
  } finally {
    waits--;
  }
}

let instance: GPU | null = null; // never released: see the header comment

/** Dawn instance flags for a backend / adapter name. */
export function instanceFlags(opts: InitOptions = envOptions()): string[] {
  const flags: string[] = [];
  if (opts.backend) flags.push(`backend=${opts.backend}`);
  if (opts.adapterName) flags.push(`adapter=${opts.adapterName}`);
  return flags;
}

/** The Dawn instance (also for tests that open extra devices); created once, alive for the process. */
export function getInstance(opts: InitOptions = envOptions()): GPU {
  instance ??= create(instanceFlags(opts));
  return instance;
}

/** Dawn's "no suitable backends found\nAvailable adapters:\n * ..." folded into one line. */
function adapterError(err: unknown, opts: InitOptions): string {
  if (err === null) return `no WebGPU adapter found; ${SETUP_HINT}`;
  const text = err instanceof Error ? err.message : String(err);
  const listed = [...text.matchAll(/\* backend: '([^']+)', name: '([^']+)'/g)].map((m) => `${m[2]} (${m[1]})`);
  const wanted = [opts.adapterName && `ROSKD_ADAPTER="${opts.adapterName}"`, opts.backend && `ROSKD_BACKEND="${opts.backend}"`].filter(Boolean).join(', ');
  if (listed.length > 0) return `no WebGPU adapter matches ${wanted || 'the request'}; available adapters: ${listed.join('; ')}`;
  return `no WebGPU adapter found (${text.split('\n')[0]}); ${SETUP_HINT}`;
}

export const platform: Platform = {
  defaults: () => envOptions(),
  gpu(opts) {
    if (opts.spinMs !== undefined) spinMs = opts.spinMs;
    return getInstance(opts);
  },
  wait,
  adapterError,
  reclaim: reclaimNativeMemory,
};
