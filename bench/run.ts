// `npm run bench [-- options]`: ceilings of the adapter, then every benchmark case (checked
// against a float64 CPU reference first, then timed interleaved with TensorFlow.js's WebGPU
// backend), an optional PyTorch CPU column, a Markdown table (also written to bench/latest.md, or
// bench/latest-quick.md for --quick and filtered runs, so they never replace a full run's table)
// and optionally JSON. Exits non-zero when any case FAILs its check or throws.
//
//   --quick          small N and a subset (finishes in a few minutes on a CPU adapter)
//   --filter S       only cases whose name contains S (case-insensitive; repeatable)
//   --json FILE      write adapter info, ceilings and rows as JSON
//   --no-tfjs        skip the TensorFlow.js peer
//   --no-torch       skip the PyTorch CPU column (--quick skips it unless --torch is given)
//   --no-demo        skip the whole kd/train.ts demo run (minutes; never part of --quick)
//   --torch          run the PyTorch CPU column in --quick mode too
//   --repeat N       timed runs per case (default 5, --quick 3)
//   --warmup N       untimed runs per case first (default 2, --quick 1)
//   --list           list the cases and exit
//   --browser        conv, matmul and a training step in headless Chromium next to Node (bench/browser.ts)
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import * as rk from '../engine/index.ts';
import { quietDawnWarnings } from '../engine/node/dawn-stderr.ts';
import { allCases } from './cases.ts';
import { measureCeilings, fmaLabel } from './ceilings.ts';
import { hostProbes, runCase, type Row } from './harness.ts';
import { threadCpuMs, loadAverage } from './thread-cpu.ts';
import { initTfjs, type TfPeer } from './tfjs.ts';
import { markdown, type Report } from './report.ts';
import { attachTorch, runTorch, torchAvailable, type TorchCase } from './torch.ts';

const LATEST = new URL('./latest.md', import.meta.url);
const LATEST_PARTIAL = new URL('./latest-quick.md', import.meta.url);

/** Runs the bench; `latest: false` leaves bench/latest.md alone (bench/selftest.ts). */
export async function main(argv: string[], opts: { latest?: boolean } = {}): Promise<number> {
  // --browser: the same kernels and a training step in a page (Chromium) next to Node: bench/browser.ts
  if (argv.includes('--browser')) return (await import('./browser.ts')).main(argv);
  const { values: a } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      filter: { type: 'string', multiple: true },
      json: { type: 'string' },
      'no-tfjs': { type: 'boolean', default: false },
      'no-torch': { type: 'boolean', default: false },
      'no-demo': { type: 'boolean', default: false },
      torch: { type: 'boolean', default: false },
      repeat: { type: 'string' },
      warmup: { type: 'string' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (a.help) {
    console.log('usage: npm run bench -- [--quick] [--filter S]... [--json FILE] [--no-tfjs] [--no-torch | --torch] [--no-demo] [--repeat N] [--warmup N] [--list]');
    return 0;
  }
  const quick = a.quick!;
  const int = (s: string | undefined, dflt: number, what: string): number => {
    if (s === undefined) return dflt;
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`--${what} must be a non-negative integer, got "${s}"`);
    return n;
  };
  const repeat = Math.max(1, int(a.repeat, quick ? 3 : 5, 'repeat'));
  const warmup = int(a.warmup, quick ? 1 : 2, 'warmup');
  const filters = (a.filter ?? []).map((f) => f.toLowerCase());
  const cases = allCases().filter((c) => (!quick || c.quick) && !(a['no-demo'] && c.kind === 'run') && (filters.length === 0 || filters.some((f) => c.name.toLowerCase().includes(f))));
  if (a.list) {
    for (const c of cases) console.log(`${c.name}  [${c.kind}${c.quick ? ', quick' : ''}]${c.needs() ? `  (skipped now: ${c.needs()})` : ''}`);
    return 0;
  }

  const t0 = performance.now();
  Object.assign(hostProbes, { threadCpuMs, loadAverage });
  const gpu = await rk.init();
  console.log(`adapter: ${gpu.info.description} (vendor ${gpu.info.vendor}, ${gpu.info.architecture}, ${gpu.info.backend}); timestamp queries: ${gpu.hasTimestamps ? 'yes' : 'no (wall-clock timing)'}; subgroup-shared loads: ${gpu.subgroupSize ? `on (${gpu.subgroupSize} lanes)` : 'off'}`);
  let peer: TfPeer | null = null;
  if (!a['no-tfjs']) {
    const p = await initTfjs();
    if (typeof p === 'string') console.log(p);
    else {
      peer = p;
      console.log(`peer: ${p.description}; timestamps: ${p.timestamps ? 'yes' : 'no'}`);
    }
  }
  const ceilings = await measureCeilings({ quick });
  console.log(`ceilings: FMA ${ceilings.gflops.toFixed(1)} GFLOP/s (${ceilings.detail.fma.map((f) => `${fmaLabel(f)} ${f.gflops.toFixed(1)}`).join(', ')}); copy ${ceilings.gbs.toFixed(1)} GB/s`);
  console.log(`${cases.length} cases, median of ${repeat} after ${warmup} warm-up:`);

  const rows: Row[] = [];
  // --quick must finish in about 3 minutes even on a busy machine: late cases get one run.
  const hurry = (): boolean => quick && performance.now() - t0 > 120_000;
  for (const c of cases) rows.push(await runCase(c, { repeat, warmup, tfjs: peer, quick, profile: gpu.hasTimestamps, ceilings, hurry, log: (l) => console.log(l) }));

  let torchInfo: Report['torch'] = null;
  const wantTorch = !a['no-torch'] && (!quick || a.torch);
  if (wantTorch && !torchAvailable()) console.log('PyTorch column skipped: /usr/bin/python3 cannot import torch (Debian: apt-get install python3-torch python3-torchvision)');
  else if (wantTorch) {
    // each case gets the repeat / warm-up budget its roskd side had (heavy training steps fewer)
    const todo: TorchCase[] = cases.flatMap((c, i) =>
      rows[i].status === 'ok' && c.torch ? [{ name: c.name, spec: c.torch, repeat: Math.max(1, Math.min(repeat, c.maxRepeat ?? Infinity)), warmup: Math.min(warmup, c.warmup ?? Infinity) }] : [],
    );
    const res = runTorch(todo, quick ? 120_000 : 1_800_000);
    if (res) {
      torchInfo = { version: res.version, threads: res.threads };
      for (const line of attachTorch(rows, res)) console.error(line);
    } else console.log('PyTorch column: the python process failed or timed out; no PyTorch numbers');
  }

  const report: Report = {
    date: new Date().toISOString(),
    adapter: { ...gpu.info, features: gpu.features, subgroupSize: gpu.subgroupSize },
    peer: peer?.description ?? null,
    torch: torchInfo,
    options: { quick, repeat, warmup, filter: filters.length ? filters.join(', ') : null, tfjs: !!peer },
    ceilings,
    rows,
  };
  const md = markdown(report);
  console.log(`\n${md}`);
  const partial = quick || filters.length > 0;
  const target = partial ? LATEST_PARTIAL : LATEST;
  if (opts.latest ?? true) writeFileSync(target, md);
  if (a.json) writeFileSync(a.json, JSON.stringify(report, null, 2) + '\n');
  const bad = rows.filter((r) => r.status === 'FAIL' || r.status === 'ERROR');
  const counts = (['ok', 'SKIP', 'FAIL', 'ERROR'] as const).map((s) => `${rows.filter((r) => r.status === s).length} ${s}`).join(', ');
  console.log(`${counts}; ${((performance.now() - t0) / 1e3).toFixed(0)} s; ${opts.latest ?? true ? `table written to bench/${partial ? 'latest-quick' : 'latest'}.md` : 'bench/latest.md left alone'}${a.json ? ` and JSON to ${a.json}` : ''}`);
  return bad.length ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await quietDawnWarnings(); // Dawn's two start-up warnings only with ROSKD_VERBOSE=1
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err) => {
      console.error(err instanceof Error ? err.message : err);
      process.exitCode = 2;
    },
  );
}
