// Ceilings of the adapter in use, measured with the engine's own dispatch path:
//  - FMA throughput: shaders/bench_fma.wgsl, register-only vec4 fma chains;
//  - memory bandwidth: shaders/bench_copy.wgsl, a large vec4 buffer copy (read + write bytes).
// Each is the best of several configurations and repetitions: a ceiling is what the adapter
// can do, so the fastest run is the honest estimate (noise only ever slows a run down).
import * as rk from '../engine/index.ts';
import { dispatch, groupsFor } from '../engine/program.ts';

export interface Ceilings {
  /** best FMA throughput, GFLOP/s (an FMA counts 2 flops) */
  gflops: number;
  /** best copy bandwidth, GB/s (bytes read + bytes written) */
  gbs: number;
  /** wall-clock microseconds per trivial dispatch, recorded back to back, one sync at the end */
  dispatchUs?: number;
  detail: { fma: FmaVariant[]; copy: { perThread: number; gbs: number }[]; timing: 'gpu' | 'wall' };
}

/** One FMA kernel configuration and what it measured. `loop`: bench_fma.wgsl (an accumulator
 * array in a loop); `unrolled`: bench_fma_unrolled.wgsl (named accumulators, straight-line body). */
export interface FmaVariant {
  kernel: 'loop' | 'unrolled';
  chains: number;
  /** f32 or vec4f accumulators */
  width: 1 | 4;
  /** copies of the chain step per loop iteration (1 for `loop`) */
  unroll: number;
  workgroup: number;
  /** the chain step: `fma(a, b, c)` or `a * b + c` (some JITs lower one better than the other) */
  op?: 'fma' | 'muladd';
  gflops: number;
}

export const fmaLabel = (v: FmaVariant): string => (v.kernel === 'loop' ? `loop ${v.chains} chains` : `unrolled ${v.op === 'muladd' ? 'mul+add ' : ''}${v.width === 4 ? 'vec4' : 'f32'} ${v.chains}x${v.unroll} wg${v.workgroup}`);

/** The defines of bench_fma_unrolled.wgsl for `chains` accumulators of `width` lanes, `unroll` steps. */
export function unrolledFmaDefines(chains: number, width: 1 | 4, unroll: number, workgroup: number, op: 'fma' | 'muladd' = 'fma'): Record<string, string | number> {
  const T = width === 4 ? 'vec4f' : 'f32';
  const ks = Array.from({ length: chains }, (_, k) => k);
  const step = ks.map((k) => (op === 'fma' ? `a${k} = fma(a${k}, b, c);` : `a${k} = a${k} * b + c;`)).join(' ');
  return {
    T,
    WG: workgroup,
    DECL: ks.map((k) => `var a${k} = ${T}(x + ${k}.0);`).join(' '),
    BODY: Array.from({ length: unroll }, () => step).join('\n    '),
    SUM: ks.map((k) => `a${k}`).join(' + '),
    REDUCE: width === 4 ? 'dot(s, vec4f(1.0))' : 's',
  };
}

/** Times `record` (which records one dispatch) `reps` times; returns the fastest ms. */
async function best(record: () => void, reps: number, profiling: boolean): Promise<number> {
  let bestMs = Infinity;
  for (let r = 0; r < reps + 1; r++) {
    if (profiling) await rk.kernelProfile();
    else await rk.sync();
    const t0 = performance.now();
    record();
    await rk.sync();
    let ms = performance.now() - t0;
    if (profiling) ms = [...(await rk.kernelProfile()).values()].reduce((a, e) => a + e.ms, 0);
    if (r > 0) bestMs = Math.min(bestMs, ms); // r = 0 compiles the pipeline
  }
  return bestMs;
}

export async function measureCeilings(opts: { quick: boolean }): Promise<Ceilings> {
  const profiling = rk.getGpu().hasTimestamps;
  rk.setProfiling(profiling);
  const reps = opts.quick ? 2 : 5;
  try {
    // FMA: enough invocations to fill every core and SIMD lane many times over, each doing
    // about `perThread` FMA lanes, so one dispatch is long enough to hide its own overhead.
    const threads = 64 * (opts.quick ? 1024 : 2048);
    const perThread = opts.quick ? 8192 : 32768; // lane-FMAs per invocation
    const out = new rk.Tensor([threads], 'f32');
    const fma: FmaVariant[] = [];
    for (const chains of [4, 8, 16]) {
      const iters = Math.round((opts.quick ? 2048 : 8192) / chains);
      const flops = threads * iters * chains * 4 * 2;
      const ms = await best(() => dispatch({ name: 'bench_fma', shader: 'bench_fma', defines: { CHAINS: chains } }, { iters, b: 0.999, c: 1e-3 }, [out.binding], groupsFor(threads, 64)), reps, profiling);
      fma.push({ kernel: 'loop', chains, width: 4, unroll: 1, workgroup: 64, gflops: flops / (ms / 1e3) / 1e9 });
    }
    // Straight-line variants: a ceiling is the best kernel the adapter runs, and drivers differ in
    // what they unroll and keep in registers (see shaders/bench_fma_unrolled.wgsl).
    const unrolled: [number, 1 | 4, number, number, 'fma' | 'muladd'][] = [
      [8, 4, 4, 64, 'fma'],
      [8, 4, 4, 64, 'muladd'],
      [16, 1, 4, 64, 'fma'],
      [16, 1, 4, 64, 'muladd'],
      [8, 1, 8, 64, 'fma'],
      [8, 1, 8, 64, 'muladd'],
      [12, 1, 4, 128, 'fma'],
      [4, 1, 16, 64, 'muladd'],
      [4, 4, 8, 64, 'muladd'],
    ];
    for (const [chains, width, unroll, wg, op] of unrolled) {
      const iters = Math.max(1, Math.round(perThread / (chains * width * unroll)));
      const flops = threads * iters * chains * width * unroll * 2;
      const defines = unrolledFmaDefines(chains, width, unroll, wg, op);
      const ms = await best(() => dispatch({ name: 'bench_fma_unrolled', shader: 'bench_fma_unrolled', defines }, { iters, b: 0.999, c: 1e-3 }, [out.binding], groupsFor(threads, wg)), reps + 1, profiling);
      fma.push({ kernel: 'unrolled', chains, width, unroll, workgroup: wg, op, gflops: flops / (ms / 1e3) / 1e9 });
    }
    out.dispose();

    // Copy: 64 MiB each way, well past any cache.
    const n4 = (64 << 20) / 16;
    const src = new rk.Tensor([n4 * 4], 'f32');
    const dst = new rk.Tensor([n4 * 4], 'f32');
    const copy: Ceilings['detail']['copy'] = [];
    for (const per of [1, 4]) {
      const threadsC = Math.ceil(n4 / per);
      const ms = await best(() => dispatch({ name: 'bench_copy', shader: 'bench_copy', defines: { PER: per } }, { n4, threads: threadsC }, [src.binding, dst.binding], groupsFor(threadsC)), reps + 2, profiling);
      copy.push({ perThread: per, gbs: (2 * n4 * 16) / (ms / 1e3) / 1e9 });
    }
    src.dispose();
    dst.dispose();
    return {
      dispatchUs: await dispatchCost(),
      gflops: Math.max(...fma.map((f) => f.gflops)),
      gbs: Math.max(...copy.map((c) => c.gbs)),
      detail: { fma, copy, timing: profiling ? 'gpu' : 'wall' },
    };
  } finally {
    rk.setProfiling(false);
  }
}

/** Wall-clock cost of one trivial dispatch (64 invocations, one loop trip) when many are recorded
 * back to back: what every small kernel of a training step pays on top of its work. Best of 3. */
async function dispatchCost(): Promise<number> {
  const out = new rk.Tensor([64], 'f32');
  const n = 200;
  let bestUs = Infinity;
  rk.setProfiling(false);
  try {
    for (let r = 0; r < 4; r++) {
      await rk.sync();
      const t0 = performance.now();
      for (let k = 0; k < n; k++) dispatch({ name: 'bench_fma', shader: 'bench_fma', defines: { CHAINS: 4 } }, { iters: 1, b: 0.999, c: 1e-3 }, [out.binding], [1, 1]);
      await rk.sync();
      if (r > 0) bestUs = Math.min(bestUs, ((performance.now() - t0) * 1e3) / n);
    }
  } finally {
    out.dispose();
  }
  return bestUs;
}
