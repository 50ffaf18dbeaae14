// The engine in a real browser: engine/ and models/ bundled by esbuild for the browser (the
// bundle must not pull in any Node module), served from 127.0.0.1, run in Debian's Chromium
// (WebGPU on SwiftShader) through playwright-core. The page computes test/browser/workload.ts
// (kernels with gradients, a few ResNet-18 SGD steps); this process computes the same with Dawn
// and the two must agree to 1e-4 of each result's scale.
//
// Chromium: `npm run setup` installs Debian's `chromium` package; ROSKD_CHROMIUM=<binary>
// overrides. Without a browser the tests are skipped with a printed reason, except under CI
// (CI set), where that is a failure.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:http';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { build, type Plugin } from 'esbuild';
import { findChromium, launchChromium } from './browser/chromium.ts';
import { gpuInit, rk } from './helpers.ts';
import { runWorkload, type Results } from './browser/workload.ts';
import type { PageReport } from './browser/page.ts';

const TOL = 1e-4; // max |browser - node| over max |node|, per result
const PAGE_TIMEOUT_MS = 10 * 60_000;

/** Fails the build on any Node built-in, naming the importer (esbuild's own error would only say "could not resolve"). */
const noNode: Plugin = {
  name: 'no-node-builtins',
  setup(b) {
    const names = new Set(builtinModules);
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.path.startsWith('node:') || names.has(args.path.split('/')[0]))
        return { errors: [{ text: `browser bundle: ${args.importer} imports the Node module "${args.path}"` }] };
      return undefined;
    });
  },
};

const root = fileURLToPath(new URL('..', import.meta.url));

async function bundle(): Promise<{ js: string; inputs: string[] }> {
  const r = await build({
    entryPoints: [fileURLToPath(new URL('./browser/page.ts', import.meta.url))],
    absWorkingDir: root,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    metafile: true,
    logLevel: 'silent',
    plugins: [noNode],
  });
  return { js: r.outputFiles[0].text, inputs: Object.keys(r.metafile.inputs) };
}

function serve(files: Record<string, { type: string; body: string }>): Promise<Server> {
  const server = createServer((req, res) => {
    const f = files[req.url ?? ''];
    if (!f) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': f.type, 'cache-control': 'no-store' }).end(f.body);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function compare(browser: Results, node: Results): { name: string; maxAbs: number; rel: number }[] {
  assert.equal(Object.keys(browser).sort(), Object.keys(node).sort(), 'same result names');
  return Object.keys(node).map((name) => {
    const a = browser[name];
    const b = node[name];
    assert.is(a.length, b.length, `${name}: length`);
    let maxAbs = 0;
    let scale = 0;
    for (let i = 0; i < b.length; i++) {
      if (!Number.isFinite(a[i]) || !Number.isFinite(b[i])) assert.unreachable(`${name}[${i}]: browser ${a[i]}, node ${b[i]}`);
      maxAbs = Math.max(maxAbs, Math.abs(a[i] - b[i]));
      scale = Math.max(scale, Math.abs(b[i]));
    }
    return { name, maxAbs, rel: maxAbs / Math.max(scale, 1e-30) };
  });
}

const chromiumPath = findChromium();
const skipReason = chromiumPath ? null : 'no Chromium (Debian package `chromium`; `npm run setup` installs it, or set ROSKD_CHROMIUM)';
if (skipReason && process.env.CI) throw new Error(`browser test: ${skipReason}; CI must run it`);
if (skipReason) console.log(`browser: skipped: ${skipReason}`);
const maybe = skipReason ? test.skip : test;

let page: { js: string; inputs: string[] } | null = null;

maybe('the browser bundle of engine/ and models/ pulls in no Node module', async () => {
  page = await bundle(); // the plugin fails the build on node:* and bare built-ins
  const nodeOnly = page.inputs.filter((f) => f.startsWith('engine/node/') || f.includes('node_modules/webgpu/'));
  assert.equal(nodeOnly, [], 'Node-only modules in the bundle');
  assert.ok(page.inputs.includes('engine/browser/platform.ts'), '#platform resolved to the browser platform');
  assert.ok(page.inputs.includes('shaders/index.gen.ts'), 'the shaders come from the generated module');
  console.log(`report: browser bundle ${(page.js.length / 1024).toFixed(0)} KiB (unminified) from ${page.inputs.length} files, no Node module`);
});

maybe('Chromium (WebGPU) computes the same kernels and ResNet-18 SGD steps as Node (Dawn) to 1e-4', async () => {
  page ??= await bundle();
  const t0 = performance.now();
  const server = await serve({
    '/': { type: 'text/html', body: '<!doctype html><meta charset="utf-8"><title>roskd</title><script type="module" src="/page.js"></script>' },
    '/page.js': { type: 'text/javascript', body: page.js },
  });
  const { port } = server.address() as AddressInfo;
  // playwright-core adds --headless, --no-sandbox and a fresh temporary profile (--user-data-dir);
  // --disable-gpu is not needed, and (measured) would not take WebGPU's SwiftShader adapter away
  const browser = await launchChromium(chromiumPath!);
  let report: PageReport;
  const consoleLines: string[] = [];
  try {
    const tab = await browser.newPage();
    tab.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    tab.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
    await tab.goto(`http://127.0.0.1:${port}/`);
    await tab.waitForFunction(() => 'roskdReport' in globalThis, undefined, { timeout: 60_000 });
    tab.setDefaultTimeout(PAGE_TIMEOUT_MS);
    report = await tab.evaluate(() => (globalThis as unknown as { roskdReport: Promise<PageReport> }).roskdReport);
  } finally {
    await browser.close();
    server.close();
  }
  const browserSecs = (performance.now() - t0) / 1000;
  if (report.error) assert.unreachable(`the page failed on ${report.adapter ?? 'no adapter'}: ${report.error}\n${consoleLines.join('\n')}`);
  console.log(`report: browser adapter ${report.adapter}, subgroup-shared loads ${report.subgroupSize ? `${report.subgroupSize} lanes` : 'off'}`);

  await gpuInit();
  const t1 = performance.now();
  const node = await runWorkload();
  const nodeSecs = (performance.now() - t1) / 1000;
  const diffs = compare(report.results!, node);
  for (const d of diffs) console.log(`browser:   ${d.name.padEnd(24)} max |diff| ${d.maxAbs.toExponential(2)}  relative to scale ${d.rel.toExponential(2)}`);
  const worst = diffs.reduce((a, b) => (b.rel > a.rel ? b : a));
  console.log(
    `report: browser vs node (${rk.getGpu().info.description}): largest difference ${worst.rel.toExponential(1)} of scale (${worst.name}), ` +
      `${diffs.filter((d) => d.maxAbs === 0).length}/${diffs.length} results bit-identical; page workload ${(report.ms! / 1000).toFixed(1)} s ` +
      `(launch to results ${browserSecs.toFixed(1)} s), node ${nodeSecs.toFixed(1)} s`,
  );
  const bad = diffs.filter((d) => !(d.rel <= TOL));
  assert.equal(bad.map((d) => d.name), [], `results differing by more than ${TOL} of their scale`);
  console.log(`browser: resnet18 losses browser ${report.results!['resnet18.losses'].map((v) => v.toFixed(5)).join(', ')} / node ${node['resnet18.losses'].map((v) => v.toFixed(5)).join(', ')}`);
});

test.run();
