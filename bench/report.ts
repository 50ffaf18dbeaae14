// The Markdown table (printed, written to bench/latest.md, embedded by the README) and JSON.
import type { Row, Timing } from './harness.ts';
import type { Ceilings } from './ceilings.ts';

export interface Report {
  date: string;
  adapter: { vendor: string; architecture: string; device: string; description: string; backend: string; features: string[]; subgroupSize?: number };
  peer: string | null;
  torch: { version: string; threads: number } | null;
  options: { quick: boolean; repeat: number; warmup: number; filter: string | null; tfjs: boolean };
  ceilings: Ceilings;
  rows: Row[];
}

const f = (x: number | undefined, digits = 1): string => (x === undefined || !Number.isFinite(x) ? '' : x >= 100 ? x.toFixed(0) : x.toFixed(digits));
const ms = (t: Timing | undefined): string => (t ? `${f(t.medianMs, 2)} / ${f(t.minMs, 2)}${t.basis === 'wall' ? ' †' : ''}` : '');

/** A table cell: no pipes, at most 70 characters. */
function cell(s: string): string {
  const t = s.replace(/\|/g, '/');
  return t.length > 70 ? `${t.slice(0, 67)}...` : t;
}

function status(r: Row): string {
  return r.status === 'ok' ? 'ok' : `${r.status}: ${cell(r.reason ?? '')}`;
}

function notes(r: Row): string {
  const e = r.extra ?? {};
  const out: string[] = [];
  if (typeof e.peakBytes === 'number') out.push(`peak ${(e.peakBytes / 2 ** 20).toFixed(0)} MiB`);
  if (typeof e.outsideFraction === 'number' && Number.isFinite(e.outsideFraction)) out.push(`${(100 * e.outsideFraction).toFixed(0)}% of kernel time outside conv/BN/matmul`);
  if (typeof e.stepGpuMs === 'number' && e.stepGpuMs > 0 && r.roskd) out.push(`summed kernel time ${((100 * e.stepGpuMs) / r.roskd.wallMedianMs).toFixed(0)}% of the step's wall time`);
  // whole-program rows: the driver threads' CPU time per step and the machine's load, which tell a
  // slow step from a step that waited for a core (bench/NOTES.md, speed round 4, item 3)
  if (r.kind === 'train' && typeof e.workerCpuMedianMs === 'number') out.push(`driver threads ${f(e.workerCpuMedianMs)} ms CPU/step`);
  if (r.kind === 'train' && typeof e.loadAvg === 'string') out.push(`load ${e.loadAvg}`);
  if (typeof e.leakedBytes === 'number') out.push(`leaked ${(e.leakedBytes / 2 ** 20).toFixed(1)} MiB`);
  if (typeof e.note === 'string') out.push(e.note);
  if (r.kernels?.length) {
    const ks = r.kernels.slice(0, 3).map((k) => `${k.name}${k.calls > 1 ? ` x${k.calls}` : ''}`);
    out.push(`kernels: ${ks.join(', ')}${r.kernels.length > 3 ? `, +${r.kernels.length - 3} more` : ''}`);
  }
  return out.join(', ');
}

export function markdown(rep: Report): string {
  const withTorch = rep.rows.some((r) => r.torch);
  // training steps: PyTorch's images/s and roskd's speed relative to it (both wall clock)
  const withTorchTrain = rep.rows.some((r) => r.kind === 'train' && r.torch);
  const trainThreads = [...new Set(rep.rows.flatMap((r) => (r.kind === 'train' && r.torch && 'threads' in r.torch ? [r.torch.threads] : [])))];
  const c = rep.ceilings;
  const lines = [
    `Adapter: ${rep.adapter.description} (${rep.adapter.vendor}, ${rep.adapter.architecture}, ${rep.adapter.backend}; ` +
      `${rep.adapter.subgroupSize ? `subgroup-shared loads on, ${rep.adapter.subgroupSize} lanes` : 'subgroup-shared loads off'}); ` +
      `ceilings: FMA ${f(c.gflops)} GFLOP/s, copy ${f(c.gbs)} GB/s. ${rep.peer ?? 'tfjs: not run'}` +
      `${rep.torch ? `; PyTorch ${rep.torch.version} CPU, ${rep.torch.threads} threads${trainThreads.length ? ` (training steps: ${trainThreads.join('/')})` : ''}` : ''}.`,
    `${rep.date}, ${rep.options.quick ? '--quick, ' : ''}median / min of ${rep.options.repeat} runs after ${rep.options.warmup} warm-up` +
      `${rep.options.filter ? `, filter "${rep.options.filter}"` : ''}. Times are GPU kernel time from timestamp queries (summed over the case's kernels) unless marked † (wall clock around a queue sync).` +
      ` tfjs/roskd > 1 means roskd is faster${withTorchTrain ? '; roskd/PyTorch is images/s over images/s (> 1: roskd faster)' : ''}. Every case passed a float64 CPU reference check before timing unless its status says otherwise.`,
    '',
    `| case | roskd ms | throughput | % of ceiling | tfjs ms | tfjs/roskd |${withTorch ? ' PyTorch CPU ms (wall) |' : ''}${withTorchTrain ? ' PyTorch img/s | roskd/PyTorch |' : ''} status | notes |`,
    `|---|---:|---:|---:|---:|---:|${withTorch ? '---:|' : ''}${withTorchTrain ? '---:|---:|' : ''}---|---|`,
  ];
  for (const r of rep.rows) {
    const th = r.throughput !== undefined ? `${f(r.throughput)} ${r.unit}` : '';
    const t = r.torch && 'medianMs' in r.torch ? r.torch : null;
    const torch = t ? `${f(t.medianMs, 2)} / ${f(t.minMs, 2)}` : r.torch ? `error: ${cell((r.torch as { error: string }).error)}` : '';
    let train = '';
    if (withTorchTrain) {
      const tIps = t && r.kind === 'train' ? r.work / (t.medianMs / 1e3) : undefined;
      train = ` ${f(tIps)} | ${tIps !== undefined && r.throughput !== undefined ? f(r.throughput / tIps, 2) : ''} |`;
    }
    lines.push(`| ${r.name} | ${ms(r.roskd)} | ${th} | ${f(r.pctCeiling)} | ${ms(r.tfjs)} | ${r.ratio !== undefined ? f(r.ratio, 2) : ''} |${withTorch ? ` ${torch} |` : ''}${train} ${status(r)} | ${notes(r)} |`);
  }
  return lines.join('\n') + '\n';
}
