// scripts/apt-backports.sh: does setup see a usable (binary, enabled) bookworm-backports source?
// Runs apt's own source parser (apt-get indextargets) on sample sources.list / .list / deb822
// .sources files. Every sample that must be rejected still contains the word
// "bookworm-backports", which is what the old `grep -r bookworm-backports` test accepted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const script = new URL('../scripts/apt-backports.sh', import.meta.url).pathname;
const hasApt = spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).status === 0;
const root = mkdtempSync(join(tmpdir(), 'roskd-apt-'));
const MAIN = 'deb http://deb.debian.org/debian bookworm main\n';
const KEY = 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n';

/** Exit status of `apt-backports.sh configured bookworm-backports` with only these files as apt's sources. */
function configured(name: string, files: Record<string, string>): number {
  const dir = join(root, name);
  mkdirSync(join(dir, 'sources.list.d'), { recursive: true });
  writeFileSync(join(dir, 'sources.list'), files['sources.list'] ?? MAIN);
  for (const [f, text] of Object.entries(files)) if (f !== 'sources.list') writeFileSync(join(dir, 'sources.list.d', f), text);
  const r = spawnSync('bash', [script, 'configured', 'bookworm-backports', '-o', `Dir::Etc::SourceList=${join(dir, 'sources.list')}`, '-o', `Dir::Etc::SourceParts=${join(dir, 'sources.list.d')}`], { encoding: 'utf8' });
  return r.status ?? -1;
}

const rejected: Record<string, Record<string, string>> = {
  'commented-out one-line entry': { 'sources.list': MAIN + '# deb http://deb.debian.org/debian bookworm-backports main\n' },
  'deb-src-only one-line entry': { 'backports.list': 'deb-src http://deb.debian.org/debian bookworm-backports main\n' },
  'deb822 with Types: deb-src only': { 'backports.sources': `Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\n${KEY}` },
  'deb822 with Enabled: no': { 'backports.sources': `Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nEnabled: no\n${KEY}` },
  'deb822 stanza commented out': { 'backports.sources': `# Types: deb\n# URIs: http://deb.debian.org/debian\n# Suites: bookworm-backports\n# Components: main\n` },
  'a file apt ignores (.list.disabled)': { 'backports.list.disabled': 'deb http://deb.debian.org/debian bookworm-backports main\n' },
};
const accepted: Record<string, Record<string, string>> = {
  'one-line entry in sources.list': { 'sources.list': MAIN + 'deb http://deb.debian.org/debian bookworm-backports main contrib\n' },
  'one-line entry with options in a .list': { 'backports.list': 'deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main\n' },
  'deb822 entry': { 'backports.sources': `Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\n${KEY}` },
  'deb822 entry among several suites, deb and deb-src': { 'debian.sources': `Types: deb deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates bookworm-backports\nComponents: main\n${KEY}` },
};

if (!hasApt) {
  test('apt source detection (skipped: no apt-get on this system)', () => {
    console.log('skipped: apt-get not found; scripts/apt-backports.sh runs only on Debian/Ubuntu');
  });
} else {
  for (const [name, files] of Object.entries(rejected))
    test(`apt sources: ${name} is not a usable backports source`, () => {
      assert.ok(Object.values(files).some((t) => t.includes('bookworm-backports')), 'the sample mentions the suite (the old text search accepted it)');
      assert.is(configured(name.replace(/\W+/g, '-'), files), 1);
    });
  for (const [name, files] of Object.entries(accepted))
    test(`apt sources: ${name} is a usable backports source`, () => {
      assert.is(configured(name.replace(/\W+/g, '-'), files), 0);
    });
  test('apt sources: only the main suite configured', () => {
    assert.is(configured('main-only', { 'sources.list': MAIN }), 1);
  });
}

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
