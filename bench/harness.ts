// The benchmark harness: a registry of cases, each checked against a CPU reference before
// it is timed, timed interleaved with its tfjs peer, and summarised in rows.
import * as rk from '../engine/index.ts';
import { tfDrain, type TfPeer, type Tf } from './tfjs.ts';
import type { Check } from './check.ts';
import type { TorchSpec, TorchRow } from './torch.ts';

/**
 * Host figures for the rows (thread CPU time, load average: bench/thread-cpu.ts reads them from
 * Linux's /proc). The harness also runs inside the browser page, which has no such figures, so
 * Node's bench/run.ts installs them here instead of the harness importing node:fs.
 */
export const hostProbes: { threadCpuMs(): { main: number; others: number } | null; loadAverage(): number | null } = {
  threadCpuMs: () => null,
  loadAverage: () => null,
};

export type Kind = 'compute' | 'memory' | 'train' | 'run';

/** One engine's side of a case. `run` is what is timed; prepare/after are untimed. */
export interface Engine {
  prepare?(): void | Promise<void>;
  run(): void | Promise<void>;
  after?(): void | Promise<void>;
}

export interface Bench {
  roskd: Engine;
  /** tfjs on equivalent work (NHWC where roskd is NCHW); run() is wrapped in tf.tidy */
  tfjs?: Engine;
  /** runs roskd once on the bench shapes and compares with a float64 CPU reference */
  check(): Promise<Check>;
  /** untimed figures reported beside the time (train rows: peak bytes, kernel breakdown) */
  extra?(kernels: Map<string, { ms: number; calls: number }> | undefined): Promise<Record<string, number | string>>;
  /** report wall-clock time around rk.sync() (whole training steps); kernels are still profiled for the breakdown */
  wallOnly?: boolean;
  dispose(): void;
}

export interface CaseCtx {
  tf: Tf | null;
  quick: boolean;
}

export interface Case {
  name: string;
  /** compute: work is FLOPs; memory: bytes moved; train: images per step; run: a whole program (time only) */
  kind: Kind;
  work: number;
  /** part of the --quick subset */
  quick?: boolean;
  /** cap on timed repetitions (slow cases) */
  maxRepeat?: number;
  /** warm-up runs, when not the harness default */
  warmup?: number;
  /** repetitions and warm-up under --quick, when the defaults would be too slow */
  quickBudget?: { repeat: number; warmup: number };
  /** null when runnable, else why the case is skipped (an op not written yet) */
  needs(): string | null;
  setup(ctx: CaseCtx): Promise<Bench>;
  /** the same op for the optional PyTorch CPU column */
  torch?: TorchSpec;
  /** least bytes a memory-bound compute case must move (read + write): noted against the copy ceiling */
  bytes?: number;
}

export interface Timing {
  basis: 'gpu' | 'wall';
  medianMs: number;
  minMs: number;
  wallMedianMs: number;
  samples: number[];
}

export interface Row {
  name: string;
  kind: Kind;
  work: number;
  status: 'ok' | 'FAIL' | 'ERROR' | 'SKIP';
  reason?: string;
  check?: string;
  roskd?: Timing;
  tfjs?: Timing;
  /** tfjs time / roskd time on a common basis (> 1: roskd faster) */
  ratio?: number;
  ratioBasis?: 'gpu' | 'wall';
  /** GFLOP/s, GB/s or images/s from roskd's median */
  throughput?: number;
  unit?: string;
  pctCeiling?: number;
  torch?: TorchRow;
  extra?: Record<string, number | string>;
  /** roskd's kernels in the last timed run (wall-clock rows: one extra profiled run): what the time is made of */
  kernels?: { name: string; ms: number; calls: number }[];
}

export interface RunOptions {
  repeat: number;
  warmup: number;
  tfjs: TfPeer | null;
  quick: boolean;
  profile: boolean;
  ceilings: { gflops: number; gbs: number };
  log: (line: string) => void;
  /** true once --quick is running late: remaining cases get one timed run and no warm-up */
  hurry?: () => boolean;
}

const now = (): number => performance.now();

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function summarise(gpu: number[], wall: number[]): Timing {
  const useGpu = gpu.length === wall.length && gpu.every(Number.isFinite);
  const s = useGpu ? gpu : wall;
  return { basis: useGpu ? 'gpu' : 'wall', medianMs: median(s), minMs: Math.min(...s), wallMedianMs: median(wall), samples: s };
}

interface Sample {
  wall: number;
  gpu: number;
  /** CPU ms of the process's threads other than the main one during the run (the driver's workers on lavapipe) */
  workerCpu?: number;
  /** per-kernel GPU ms and calls of this run (profiled roskd runs only) */
  kernels?: Map<string, { ms: number; calls: number }>;
}

async function roskdSample(b: Bench, profiling: boolean): Promise<Sample> {
  await b.roskd.prepare?.();
  if (profiling) await rk.kernelProfile(); // drains and resets: only the timed run is counted
  else await rk.sync();
  const c0 = hostProbes.threadCpuMs();
  const t0 = now();
  await b.roskd.run();
  await rk.sync();
  const wall = now() - t0;
  const c1 = hostProbes.threadCpuMs();
  const workerCpu = c0 && c1 ? c1.others - c0.others : undefined;
  let gpu = NaN;
  let kernels: Sample['kernels'];
  if (profiling) {
    gpu = 0;
    kernels = await rk.kernelProfile();
    for (const e of kernels.values()) gpu += e.ms;
  }
  await b.roskd.after?.();
  return { wall, gpu, kernels, workerCpu };
}

async function tfjsSample(e: Engine, peer: TfPeer, wallOnly: boolean): Promise<Sample> {
  const { tf } = peer;
  await e.prepare?.();
  await tfDrain(tf);
  const t0 = now();
  let gpu = NaN;
  if (peer.timestamps && !wallOnly) {
    const info = await tf.time(() => tf.tidy(() => void e.run()));
    if (typeof info.kernelMs === 'number') gpu = info.kernelMs;
  } else tf.tidy(() => void e.run());
  await tfDrain(tf);
  const wall = now() - t0;
  await e.after?.();
  return { wall, gpu };
}

const fmtErr = (err: unknown): string => (err instanceof Error ? `${err.name}: ${err.message}` : String(err)).split('\n')[0];

/** Runs one case: skip check, setup, correctness check, warm-up, interleaved timed runs. */
export async function runCase(c: Case, o: RunOptions): Promise<Row> {
  const row: Row = { name: c.name, kind: c.kind, work: c.work, status: 'ok' };
  const why = c.needs();
  if (why) {
    o.log(`  SKIP  ${c.name}: ${why}`);
    return { ...row, status: 'SKIP', reason: why };
  }
  const live0 = rk.memoryStats().liveBytes;
  const load0 = hostProbes.loadAverage();
  let b: Bench | null = null;
  const t0 = now();
  try {
    b = await c.setup({ tf: o.tfjs?.tf ?? null, quick: o.quick });
    const chk = await b.check();
    row.check = chk.detail;
    if (!chk.ok) {
      o.log(`  FAIL  ${c.name}: ${chk.detail}`);
      return { ...row, status: 'FAIL', reason: chk.detail };
    }
    const profiling = o.profile;
    // Whole-step rows (wallOnly) are timed unprofiled: profiling gives every dispatch its own pass
    // and two timestamps, ~40 us more per dispatch on lavapipe (2-5% of a small training step,
    // bench/NOTES.md speed round 4); one extra profiled run afterwards gives a training step's kernel
    // breakdown (not a whole-program run's: that would run the program again).
    const profileTimed = profiling && !b.wallOnly;
    rk.setProfiling(profileTimed);
    const peer = b.tfjs && o.tfjs ? o.tfjs : null;
    const qb = o.quick ? c.quickBudget : undefined;
    const late = o.hurry?.() ?? false;
    let n = late ? 1 : Math.max(1, Math.min(o.repeat, c.maxRepeat ?? Infinity, qb?.repeat ?? Infinity));
    const warm = late ? 0 : Math.min(o.warmup, c.warmup ?? Infinity, qb?.warmup ?? Infinity);
    if (late) (row.extra ??= {}).note = 'one run, no warm-up (--quick time budget)';
    const rs: Sample[] = [];
    const ts: Sample[] = [];
    const tStart = now();
    for (let i = 0; i < warm + n; i++) {
      // --quick keeps its time budget: a case whose warm-up took over 2.5 s gets 2 timed runs.
      if (o.quick && i === warm && warm > 0 && now() - tStart > 2500 * warm) n = Math.min(n, 2);
      if (i >= warm + n) break;
      // Alternate which engine goes first so slow drifts of this shared CPU hit both alike.
      const order = i % 2 === 0 ? ['r', 't'] : ['t', 'r'];
      for (const who of order) {
        if (who === 'r') {
          const s = await roskdSample(b, profileTimed);
          if (i >= warm) rs.push(s);
        } else if (peer) {
          const s = await tfjsSample(b.tfjs!, peer, !!b.wallOnly);
          if (i >= warm) ts.push(s);
        }
      }
    }
    rk.setProfiling(false);
    let breakdown: Sample['kernels'];
    if (profiling && !profileTimed && c.kind === 'train') {
      rk.setProfiling(true);
      breakdown = (await roskdSample(b, true)).kernels;
      rk.setProfiling(false);
    }
    row.roskd = summarise(b.wallOnly ? [] : rs.map((s) => s.gpu), rs.map((s) => s.wall));
    if (ts.length) {
      row.tfjs = summarise(ts.map((s) => s.gpu), ts.map((s) => s.wall));
      const basis = row.roskd.basis === 'gpu' && row.tfjs.basis === 'gpu' ? 'gpu' : 'wall';
      const r = basis === 'gpu' ? row.roskd.medianMs : row.roskd.wallMedianMs;
      const t = basis === 'gpu' ? row.tfjs.medianMs : row.tfjs.wallMedianMs;
      row.ratio = t / r;
      row.ratioBasis = basis;
    }
    const sec = row.roskd.medianMs / 1e3;
    if (c.kind === 'compute') {
      row.throughput = c.work / sec / 1e9;
      row.unit = 'GFLOP/s';
      row.pctCeiling = (100 * row.throughput) / o.ceilings.gflops;
    } else if (c.kind === 'memory') {
      row.throughput = c.work / sec / 1e9;
      row.unit = 'GB/s';
      row.pctCeiling = (100 * row.throughput) / o.ceilings.gbs;
    } else if (c.kind === 'train') {
      row.throughput = c.work / sec;
      row.unit = 'img/s';
    }
    // Worker-thread CPU per run and the load average: a run slowed by other processes keeps its
    // CPU time while its wall and timestamp times grow (bench/NOTES.md, speed round 4, item 3).
    const cpus = rs.flatMap((s) => (s.workerCpu === undefined ? [] : [s.workerCpu]));
    const load1 = hostProbes.loadAverage();
    if (cpus.length) row.extra = { ...row.extra, workerCpuMs: Math.min(...cpus), workerCpuMedianMs: median(cpus) };
    if (load0 !== null && load1 !== null) row.extra = { ...row.extra, loadAvg: `${load0.toFixed(1)}-${load1.toFixed(1)}` };
    const last = breakdown ?? rs[rs.length - 1].kernels;
    if (last) row.kernels = [...last].sort((x, y) => y[1].ms - x[1].ms).map(([k, e]) => ({ name: k, ms: e.ms, calls: e.calls }));
    if (b.extra) row.extra = { ...row.extra, ...(await b.extra(last)) };
    if (c.bytes) {
      const gbs = c.bytes / sec / 1e9;
      const m = `${gbs.toFixed(1)} GB/s of its least traffic = ${((100 * gbs) / o.ceilings.gbs).toFixed(1)}% of the copy ceiling`;
      const prev = row.extra?.note;
      row.extra = { ...row.extra, note: typeof prev === 'string' ? `${prev}; ${m}` : m };
    }
    o.log(`  ok    ${c.name} (${((now() - t0) / 1e3).toFixed(0)} s): roskd ${row.roskd.medianMs.toFixed(2)} ms (${row.roskd.basis})${row.tfjs ? `, tfjs ${row.tfjs.medianMs.toFixed(2)} ms (${row.tfjs.basis})` : ''}  [${chk.detail}]`);
    return row;
  } catch (err) {
    const msg = fmtErr(err);
    o.log(`  ERROR ${c.name}: ${msg}`);
    if (process.env.ROSKD_BENCH_TRACE) console.error(err);
    return { ...row, status: 'ERROR', reason: msg };
  } finally {
    try {
      rk.setProfiling(false);
    } catch {
      /* the device may be gone; the row already says so */
    }
    try {
      b?.dispose();
      await rk.sync();
      const leaked = rk.memoryStats().liveBytes - live0;
      if (leaked > 0 && row.status === 'ok') (row.extra ??= {}).leakedBytes = leaked;
      rk.trimPool();
    } catch {
      /* as above */
    }
  }
}
