// `npm run bench -- --browser` (or `npx tsx bench/browser.ts`): the browser benchmark. Bundles
// bench/browser/page.ts, runs it in headless Chromium (WebGPU; SwiftShader without a GPU) and the
// same cases in Node (Dawn), and prints one table: each case's time and its share of the FMA
// ceiling measured in that same environment, and the training step's images/s, raw and
// normalised by the two ceilings. ROSKD_CHROMIUM=<binary> picks the browser.
import { build } from 'esbuild';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import * as rk from '../engine/index.ts';
import { measureCeilings, fmaLabel, type Ceilings } from './ceilings.ts';
import { runCase, type Row } from './harness.ts';
import { browserBenchCases } from './browser/cases.ts';
import type { BenchPageResult } from './browser/page.ts';
import { findChromium, launchChromium } from '../test/browser/chromium.ts';
import { noNode } from '../scripts/build-web.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The bench page's script (exported for the test that keeps it free of Node modules). */
export async function pageJs(): Promise<string> {
  const r = await build({
    entryPoints: [fileURLToPath(new URL('./browser/page.ts', import.meta.url))],
    absWorkingDir: root,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
    define: { 'process.env.ROSKD_BENCH_TRACE': 'undefined' },
    plugins: [
      {
        // the harness's TensorFlow.js peer is Node-only (and not used in the page): an empty stand-in
        name: 'no-tfjs-peer',
        setup(b) {
          b.onResolve({ filter: /^\.\/tfjs\.ts$/ }, () => ({ path: 'tfjs-stub', namespace: 'stub' }));
          b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({ contents: 'export async function tfDrain() {}', loader: 'js' }));
        },
      },
      noNode,
    ],
  });
  return r.outputFiles[0].text;
}

async function inPage(filters: string[]): Promise<BenchPageResult> {
  const chromium = findChromium();
  if (!chromium) throw new Error('no Chromium (Debian package `chromium`, or set ROSKD_CHROMIUM)');
  const js = await pageJs();
  const server = createServer((req, res) => {
    if (req.url === '/page.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
    else res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><meta charset="utf-8"><title>roskd bench</title><script type="module" src="/page.js"></script>');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const browser = await launchChromium(chromium);
  try {
    const tab = await browser.newPage();
    tab.setDefaultTimeout(10 * 60_000);
    await tab.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/?${filters.map((f) => `filter=${encodeURIComponent(f)}`).join('&')}`);
    await tab.waitForFunction(() => 'roskdBench' in globalThis);
    return await tab.evaluate(() => (globalThis as unknown as { roskdBench: Promise<BenchPageResult> }).roskdBench);
  } finally {
    await browser.close();
    server.close();
  }
}

const fmtMs = (r?: Row) => (r?.roskd ? `${r.roskd.medianMs.toFixed(2)} ms` : r ? r.status : '-');
const fmtTp = (r?: Row) => (r?.throughput === undefined ? '-' : `${r.throughput.toFixed(r.unit === 'img/s' ? 1 : 2)} ${r.unit}${r.pctCeiling !== undefined ? ` (${r.pctCeiling.toFixed(1)}%)` : ''}`);

const fmaList = (c: Ceilings) => c.detail.fma.map((f) => `${fmaLabel(f)} ${f.gflops.toFixed(2)}`).join(', ');

/** The two targets of the browser bench, judged on one run's rows (null: not judgeable). */
export function verdicts(page: { rows: Row[]; ceilings: Ceilings }, node: { rows: Row[]; ceilings: Ceilings }): string[] {
  const out: string[] = [];
  const fwd = page.rows.find((r) => /^conv3x3 .* forward$/.test(r.name));
  if (fwd?.pctCeiling !== undefined) {
    const pct = fwd.pctCeiling;
    out.push(`conv 3x3 forward in the page at >= 30% of the page's FMA ceiling: ${pct.toFixed(1)}% -> ${pct >= 30 ? 'met' : `missed (${(30 / pct).toFixed(2)}x short)`}`);
  }
  const pt = page.rows.find((r) => r.kind === 'train');
  const nt = node.rows.find((r) => r.name === pt?.name);
  if (pt?.throughput && nt?.throughput) {
    const pn = pt.throughput / page.ceilings.gflops;
    const nn = nt.throughput / node.ceilings.gflops;
    const r = pn / nn;
    out.push(
      `training step in the page within 2x of Node after normalising by the ceilings: page ${pt.throughput.toFixed(1)} img/s / ${page.ceilings.gflops.toFixed(2)} GFLOP/s = ${pn.toFixed(3)}, ` +
        `node ${nt.throughput.toFixed(1)} img/s / ${node.ceilings.gflops.toFixed(2)} GFLOP/s = ${nn.toFixed(3)} img/s per GFLOP/s; page/node ${r.toFixed(2)} -> ${r >= 0.5 ? 'met' : `missed (${(0.5 / r).toFixed(2)}x short of 0.5)`}`,
    );
  }
  return out;
}

export async function main(argv: string[] = []): Promise<number> {
  const { values: a } = parseArgs({ args: argv, options: { browser: { type: 'boolean' }, filter: { type: 'string', multiple: true } }, strict: true });
  const filters = (a.filter ?? []).map((f) => f.toLowerCase());
  const t0 = performance.now();
  console.log('browser bench: page (Chromium WebGPU) ...');
  const page = await inPage(filters);
  if (page.error) {
    console.error(`the page failed: ${page.error}\n${page.log.join('\n')}`);
    return 1;
  }
  for (const l of page.log) console.log(`  page ${l.trim()}`);
  console.log('browser bench: node (Dawn) ...');
  const gpu = await rk.init();
  const ceilings = await measureCeilings({ quick: true });
  const rows: Row[] = [];
  for (const c of browserBenchCases(filters)) rows.push(await runCase(c, { repeat: 3, warmup: 1, tfjs: null, quick: true, profile: gpu.hasTimestamps, ceilings, log: (l) => console.log(`  node ${l.trim()}`) }));
  const pc = page.ceilings!;
  const nodeName = gpu.info.description || gpu.info.device;
  const md: string[] = [];
  const say = (l = '') => {
    console.log(l);
    md.push(l);
  };
  say();
  say(`${new Date().toISOString()}, \`npm run bench -- --browser${argv.filter((x) => x !== '--browser').map((x) => ` ${x}`).join('')}\`. Times: median of 3 after 1 warm-up; GPU timestamp time for kernels where the adapter has timestamp queries, wall clock for the training step.`);
  say();
  say(`- page: ${page.adapter}, FMA ceiling **${pc.gflops.toFixed(2)} GFLOP/s** (${pc.detail.timing} timing; best of: ${fmaList(pc)}), copy ${pc.gbs.toFixed(1)} GB/s, ${pc.dispatchUs?.toFixed(0)} µs per trivial dispatch`);
  say(`- node: ${nodeName}, FMA ceiling **${ceilings.gflops.toFixed(2)} GFLOP/s** (${ceilings.detail.timing} timing; best of: ${fmaList(ceilings)}), copy ${ceilings.gbs.toFixed(1)} GB/s, ${ceilings.dispatchUs?.toFixed(0)} µs per trivial dispatch`);
  say();
  // A case above 100% of its environment's ceiling means that ceiling was not measured credibly:
  // no normalised ratio then.
  // Stride-1 3x3 convs are exempt: they may run as Winograd F(4x4), which does up to 4x fewer
  // multiplies than the direct-conv FLOPs they are credited with, so they can pass a true peak
  // (round 5: the page's backward-weight at 122% of a ceiling measured under load).
  const winogradCredited = (r: Row) => /^conv3x3 .* b\d+ \d+px /.test(r.name);
  const credible = (rs: Row[]) => rs.every((r) => !(r.pctCeiling! > 100) || winogradCredited(r));
  const normOk = credible(page.rows!) && credible(rows);
  say('| case | page | page throughput (% of its ceiling) | node | node throughput (% of its ceiling) | page time / node time | page / node, ceiling-normalised |');
  say('|---|---:|---:|---:|---:|---:|---:|');
  for (const n of rows) {
    const p = page.rows!.find((r) => r.name === n.name);
    const slow = p?.roskd && n.roskd ? p.roskd.medianMs / n.roskd.medianMs : NaN;
    const norm = normOk && p?.throughput && n.throughput ? p.throughput / pc.gflops / (n.throughput / ceilings.gflops) : NaN;
    say(`| ${n.name} | ${fmtMs(p)} | ${fmtTp(p)} | ${fmtMs(n)} | ${fmtTp(n)} | ${Number.isFinite(slow) ? slow.toFixed(2) + 'x' : '-'} | ${Number.isFinite(norm) ? norm.toFixed(2) : '-'} |`);
  }
  say();
  if (!normOk) say('(no ceiling-normalised ratio and no verdict: a case ran above 100% of a measured ceiling, so that ceiling is not a credible peak on this adapter)');
  else for (const v of verdicts({ rows: page.rows!, ceilings: pc }, { rows, ceilings })) say(`- target: ${v}`);
  // A filtered run never replaces the full run's files.
  const stem = filters.length ? 'latest-browser-partial' : 'latest-browser';
  writeFileSync(new URL(`./${stem}.md`, import.meta.url), `# Browser bench (page: Chromium WebGPU; node: Dawn)\n${md.join('\n')}\n`);
  writeFileSync(new URL(`./${stem}.json`, import.meta.url), JSON.stringify({ date: new Date().toISOString(), filter: filters, page: { adapter: page.adapter, ceilings: pc, rows: page.rows }, node: { adapter: nodeName, ceilings, rows } }, null, 1) + '\n');
  console.log(`${((performance.now() - t0) / 1e3).toFixed(0)} s; written to bench/${stem}.md and bench/${stem}.json`);
  const bad = [...rows, ...page.rows!].filter((r) => r.status === 'FAIL' || r.status === 'ERROR');
  return bad.length ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === (await import('node:path')).resolve(process.argv[1])) process.exit(await main(process.argv.slice(2)));
