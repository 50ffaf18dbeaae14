// The page script of test/browser.test.ts (bundled by esbuild for the browser): opens WebGPU
// through navigator.gpu (engine/browser/platform.ts) and publishes the workload's results.
import * as rk from '../../engine/index.ts';
import { runWorkload, type Results } from './workload.ts';

export interface PageReport {
  adapter?: string;
  subgroupSize?: number;
  limits?: Record<string, number>;
  results?: Results;
  ms?: number;
  error?: string;
}

const report: PageReport = {};
(globalThis as { roskdReport?: Promise<PageReport> }).roskdReport = (async () => {
  try {
    // ?limits=default asks for WebGPU's default limits (to try kernels within them by hand)
    const limits = new URLSearchParams((globalThis as { location?: { search: string } }).location?.search ?? '').get('limits') === 'default' ? 'default' : 'adapter';
    const g = await rk.init({ limits });
    rk.setPoison(true); // as the Node side does (test/helpers.ts): unwritten outputs become NaN
    const i = g.info;
    report.adapter = [i.vendor, i.architecture, i.description || i.device].filter(Boolean).join(' ') + (g.adapter.info.isFallbackAdapter ? ' (fallback adapter)' : '');
    report.subgroupSize = g.subgroupSize;
    report.limits = g.limits;
    const t0 = performance.now();
    report.results = await runWorkload();
    report.ms = performance.now() - t0;
  } catch (e) {
    report.error = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e);
  }
  return report;
})();
