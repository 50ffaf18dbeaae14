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
  detail: { fma: { chains: number; gflops: number }[]; copy: { perThread: number; gbs: number }[]; timing: 'gpu' | 'wall' };
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
    // FMA: enough invocations to fill every core and SIMD lane many times over.
    const threads = 64 * (opts.quick ? 1024 : 2048);
    const out = new rk.Tensor([threads], 'f32');
    const fma: Ceilings['detail']['fma'] = [];
    for (const chains of [4, 8, 16]) {
      const iters = Math.round((opts.quick ? 2048 : 8192) / chains);
      const flops = threads * iters * chains * 4 * 2;
      const ms = await best(() => dispatch({ name: 'bench_fma', shader: 'bench_fma', defines: { CHAINS: chains } }, { iters, b: 0.999, c: 1e-3 }, [out.binding], groupsFor(threads, 64)), reps, profiling);
      fma.push({ chains, gflops: flops / (ms / 1e3) / 1e9 });
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
      gflops: Math.max(...fma.map((f) => f.gflops)),
      gbs: Math.max(...copy.map((c) => c.gbs)),
      detail: { fma, copy, timing: profiling ? 'gpu' : 'wall' },
    };
  } finally {
    rk.setProfiling(false);
  }
}
