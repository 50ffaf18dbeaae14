// The bench page: measures the adapter's FMA and copy ceilings and runs browserBenchCases() with
// the same harness as `npm run bench`; the result is globalThis.roskdBench (read by bench/browser.ts).
import * as rk from '../../engine/index.ts';
import { measureCeilings, type Ceilings } from '../ceilings.ts';
import { runCase, type Row } from '../harness.ts';
import { browserBenchCases } from './cases.ts';

export interface BenchPageResult {
  adapter?: string;
  ceilings?: Ceilings;
  rows?: Row[];
  log: string[];
  error?: string;
}

async function main(): Promise<BenchPageResult> {
  const log: string[] = [];
  try {
    const gpu = await rk.init();
    const adapter = gpu.info.description || [gpu.info.vendor, gpu.info.architecture].filter(Boolean).join(' ');
    const ceilings = await measureCeilings({ quick: true });
    const rows: Row[] = [];
    for (const c of browserBenchCases()) rows.push(await runCase(c, { repeat: 3, warmup: 1, tfjs: null, quick: true, profile: gpu.hasTimestamps, ceilings, log: (l) => log.push(l) }));
    return { adapter, ceilings, rows, log };
  } catch (e) {
    return { log, error: (e as Error).stack ?? String(e) };
  }
}

(globalThis as unknown as { roskdBench: Promise<BenchPageResult> }).roskdBench = main();
