// The shape of kd/: library files never import the command-line files; what is environment-free
// (training loop, checkpoints, metrics, attacks, teacher choice, noise, decoding bytes, report
// data) reaches no node:* module through kd/ imports; no kd/ file is a god-file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const kdFiles = (dir: string): string[] => readdirSync(join(root, dir)).filter((f) => f.endsWith('.ts')).map((f) => `${dir}/${f}`);
const files = [...kdFiles('kd'), ...kdFiles('kd/data'), ...kdFiles('kd/slurm')];
/** The kd/ files that must run anywhere (Node, a page): the roots of the checks below. */
const ENV_FREE = [
  'kd/fit.ts', 'kd/checkpoint.ts', 'kd/metrics.ts', 'kd/adversarial.ts', 'kd/robustness.ts', 'kd/roskd.ts', 'kd/report.ts', 'kd/plot.ts',
  'kd/progress.ts', 'kd/inference.ts', 'kd/model-file.ts', 'kd/evaluators.ts', 'kd/run-store.ts',
  'kd/cam.ts', 'kd/evaluation.ts', 'kd/calibration.ts', 'kd/metrics-csv.ts', 'kd/tfevents.ts',
  'kd/data/noise.ts', 'kd/data/split.ts', 'kd/data/augment.ts', 'kd/data/batch.ts', 'kd/data/image.ts', 'kd/data/npy.ts', 'kd/data/zip.ts',
  'kd/data/medmnist.ts', 'kd/data/csv.ts', 'kd/data/synthetic.ts', 'kd/data/dataset.ts',
];
const CLI = ['kd/train.ts', 'kd/predict.ts', 'kd/attack.ts', 'kd/study.ts', 'kd/submit.ts'];

/** Relative imports and node:* imports of a file (type-only imports included: they also couple). */
function importsOf(file: string): { local: string[]; node: string[] } {
  const src = readFileSync(join(root, file), 'utf8');
  const specs = [...src.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1]);
  return {
    local: specs.filter((s) => s.startsWith('.')).map((s) => relative(root, resolve(root, dirname(file), s))),
    node: specs.filter((s) => s.startsWith('node:')),
  };
}

test('no kd/ library file imports a command-line file', () => {
  for (const f of files) {
    if (CLI.includes(f)) continue;
    for (const dep of importsOf(f).local) assert.not.ok(CLI.includes(dep), `${f} imports the command-line file ${dep}`);
  }
});

test('environment-free files reach no node:* module through kd/ imports', () => {
  const free = ENV_FREE;
  for (const start of free) {
    const seen = new Set<string>();
    const walk = (f: string, path: string[]): void => {
      if (seen.has(f) || !f.startsWith('kd/')) return; // engine/ is checked on its own
      seen.add(f);
      const { local, node } = importsOf(f);
      assert.equal(node, [], `${[...path, f].join(' -> ')} imports ${node.join(', ')}`);
      for (const d of local) walk(d, [...path, f]);
    };
    walk(start, []);
  }
});

/** Every .ts file under dir (recursively), skipping `node/` folders (the Node-only entries). */
function tsUnder(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? (e.name === 'node' ? [] : tsUnder(`${dir}/${e.name}`)) : e.name.endsWith('.ts') ? [`${dir}/${e.name}`] : [],
  );
}

test("environment-free files do not use Node's Buffer global (the page has none)", () => {
  const closure = new Set<string>();
  const walk = (f: string): void => {
    if (closure.has(f) || !f.startsWith('kd/')) return;
    closure.add(f);
    for (const d of importsOf(f).local) walk(d);
  };
  for (const f of ENV_FREE) walk(f);
  const checked = [...closure, ...tsUnder('engine'), ...tsUnder('models'), ...tsUnder('web/src')];
  for (const f of checked) {
    // code only: comments may name Buffer
    const code = readFileSync(join(root, f), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
    const line = code.split('\n').find((l) => /(?<![\w.$])Buffer\b/.test(l));
    assert.not.ok(line, `${f} uses Buffer (use Uint8Array/DataView/TextDecoder, kd/data/bytes.ts): ${line?.trim()}`);
  }
  assert.ok(checked.includes('kd/data/zip.ts') && checked.includes('engine/tensor.ts'), 'the check reaches the files it is about');
});

test('no kd/ file over 400 lines', () => {
  for (const f of files) {
    const n = readFileSync(join(root, f), 'utf8').split('\n').length;
    assert.ok(n <= 400, `${f} has ${n} lines`);
  }
});

test.run();
