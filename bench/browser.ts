// `npm run bench -- --browser` (or `npx tsx bench/browser.ts`): the browser benchmark. Bundles
// bench/browser/page.ts, runs it in headless Chromium (WebGPU; SwiftShader without a GPU) and the
// same cases in Node (Dawn), and prints one table: each case's time and its share of the FMA
// ceiling measured in that same environment, and the training step's images/s, raw and
// normalised by the two ceilings. ROSKD_CHROMIUM=<binary> picks the browser.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import * as rk from '../engine/index.ts';
import { measureCeilings } from './ceilings.ts';
import { runCase, type Row } from './harness.ts';
import { browserBenchCases } from './browser/cases.ts';
import type { BenchPageResult } from './browser/page.ts';
import { findChromium, launchChromium } from '../test/browser/chromium.ts';
import { noNode } from '../scripts/build-web.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

async function pageJs(): Promise<string> {
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

async function inPage(): Promise<BenchPageResult> {
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
    await tab.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    await tab.waitForFunction(() => 'roskdBench' in globalThis);
    return await tab.evaluate(() => (globalThis as unknown as { roskdBench: Promise<BenchPageResult> }).roskdBench);
  } finally {
    await browser.close();
    server.close();
  }
}

const fmtMs = (r?: Row) => (r?.roskd ? `${r.roskd.medianMs.toFixed(2)} ms` : r ? r.status : '-');
const fmtTp = (r?: Row) => (r?.throughput === undefined ? '-' : `${r.throughput.toFixed(r.unit === 'img/s' ? 1 : 2)} ${r.unit}${r.pctCeiling !== undefined ? ` (${r.pctCeiling.toFixed(1)}%)` : ''}`);

export async function main(): Promise<number> {
  console.log('browser bench: page (Chromium WebGPU) ...');
  const page = await inPage();
  if (page.error) {
    console.error(`the page failed: ${page.error}\n${page.log.join('\n')}`);
    return 1;
  }
  for (const l of page.log) console.log(`  page ${l.trim()}`);
  console.log('browser bench: node (Dawn) ...');
  const gpu = await rk.init();
  const ceilings = await measureCeilings({ quick: true });
  const rows: Row[] = [];
  for (const c of browserBenchCases()) rows.push(await runCase(c, { repeat: 3, warmup: 1, tfjs: null, quick: true, profile: gpu.hasTimestamps, ceilings, log: (l) => console.log(`  node ${l.trim()}`) }));
  const pc = page.ceilings!;
  const nodeName = gpu.info.description || gpu.info.device;
  console.log(`\npage: ${page.adapter}, FMA ceiling ${pc.gflops.toFixed(1)} GFLOP/s, copy ${pc.gbs.toFixed(1)} GB/s (${pc.detail.timing} timing)`);
  console.log(`node: ${nodeName}, FMA ceiling ${ceilings.gflops.toFixed(1)} GFLOP/s, copy ${ceilings.gbs.toFixed(1)} GB/s (${ceilings.detail.timing} timing)\n`);
  // A case above 100% of its environment's ceiling means that ceiling was not measured credibly
  // (seen on SwiftShader, whose FMA loop runs far below its real peak): no normalised ratio then.
  const credible = (rs: Row[]) => rs.every((r) => !(r.pctCeiling! > 100));
  const normOk = credible(page.rows!) && credible(rows);
  console.log('| case | page | page throughput (% of its ceiling) | node | node throughput (% of its ceiling) | page time / node time | page / node, ceiling-normalised |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const n of rows) {
    const p = page.rows!.find((r) => r.name === n.name);
    const slow = p?.roskd && n.roskd ? p.roskd.medianMs / n.roskd.medianMs : NaN;
    const norm = normOk && p?.throughput && n.throughput ? p.throughput / pc.gflops / (n.throughput / ceilings.gflops) : NaN;
    console.log(`| ${n.name} | ${fmtMs(p)} | ${fmtTp(p)} | ${fmtMs(n)} | ${fmtTp(n)} | ${Number.isFinite(slow) ? slow.toFixed(2) + 'x' : '-'} | ${Number.isFinite(norm) ? norm.toFixed(2) : '-'} |`);
  }
  if (!normOk) console.log('\n(no ceiling-normalised ratio: a case ran above 100% of a measured ceiling, so that ceiling is not a credible peak on this adapter)');
  const bad = [...rows, ...page.rows!].filter((r) => r.status === 'FAIL' || r.status === 'ERROR');
  return bad.length ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === (await import('node:path')).resolve(process.argv[1])) process.exit(await main());
