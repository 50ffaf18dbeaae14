// shaders/index.gen.ts (the WGSL the engine compiles, with no file system) must match
// shaders/*.wgsl, the source of truth: editing a .wgsl file without `npm run gen-shaders` fails
// here. (`npm test` regenerates a stale module before running, except under CI.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateShaderModule, SHADER_DIR, GENERATED } from '../scripts/gen-shaders.ts';
import { WGSL } from '../shaders/index.gen.ts';

test('shaders/index.gen.ts is what gen-shaders writes for the current .wgsl files', () => {
  const stale = readFileSync(GENERATED, 'utf8') !== generateShaderModule();
  assert.not.ok(stale, 'shaders/index.gen.ts is stale: a shaders/*.wgsl file changed; run `npm run gen-shaders` and commit it');
});

test('the generated module holds every .wgsl file verbatim (backticks, ${ and backslashes escaped)', () => {
  const files = readdirSync(SHADER_DIR).filter((f) => f.endsWith('.wgsl'));
  assert.equal(Object.keys(WGSL).sort(), files.map((f) => f.slice(0, -5)).sort());
  for (const f of files) assert.ok(WGSL[f.slice(0, -5)] === readFileSync(SHADER_DIR + f, 'utf8'), `${f} differs from its generated copy`);
});

test('the check notices an edited .wgsl file, and escapes awkward text', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'roskd-gen-')) + '/';
  try {
    cpSync(SHADER_DIR, dir, { recursive: true, filter: (src) => !src.endsWith('.ts') });
    assert.is(generateShaderModule(dir), readFileSync(GENERATED, 'utf8'), 'same files, same module');
    const tricky = '// a `quoted` ${NOT_A_TEMPLATE} \\ line\nfn main() {}\n';
    writeFileSync(dir + 'sgd.wgsl', readFileSync(dir + 'sgd.wgsl', 'utf8') + tricky);
    const text = generateShaderModule(dir);
    assert.is.not(text, readFileSync(GENERATED, 'utf8'), 'an edit changes the module');
    writeFileSync(dir + 'gen.mjs', text.replace(/: Readonly<Record<string, string>>/, ''));
    const mod = (await import(dir + 'gen.mjs')) as { WGSL: Record<string, string> };
    assert.is(mod.WGSL.sgd, readFileSync(dir + 'sgd.wgsl', 'utf8'), 'the edited text survives as is');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
