// End-to-end: the whole `npx tsx kd/train.ts` demo (teachers, four students, evaluation, report)
// in a child process, wall clock. Not part of --quick (it takes minutes); `--no-demo` skips it.
// Its correctness is the demo's own: exit status 0 and a report.json with a test row per student.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pass } from './check.ts';
import type { Case } from './harness.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function runDemo(out: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'kd/train.ts', '--out', out, '--progress', 'none'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => void (err = (err + d.toString()).slice(-2000)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`kd/train.ts exited with ${code}: ${err.trim().split('\n').pop()}`))));
  });
}

export function demoCase(): Case {
  return {
    name: 'kd/train.ts demo, whole run',
    kind: 'run',
    work: 1,
    maxRepeat: 1,
    warmup: 0,
    needs: () => null,
    async setup() {
      const out = mkdtempSync(join(tmpdir(), 'roskd-demo-'));
      let students = 0;
      let images = 0;
      let secs = NaN;
      return {
        wallOnly: true,
        roskd: {
          run: async () => {
            const t0 = performance.now();
            rmSync(out, { recursive: true, force: true });
            await runDemo(out);
            const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { rows?: { role?: string; images?: number }[] };
            students = (report.rows ?? []).filter((r) => r.role === 'student').length;
            images = (report.rows ?? []).reduce((a, r) => a + (r.images ?? 0), 0);
            secs = (performance.now() - t0) / 1e3;
          },
        },
        // The run is its own check (see the header); it happens in the timed run.
        check: async () => pass('checked by the run itself: exit 0 and report.json'),
        extra: async () => ({ note: `${(secs / 60).toFixed(1)} min; ${students} students in report.json; ${images} training images in all (${(images / secs).toFixed(0)} img/s incl. evaluation)` }),
        dispose: () => rmSync(out, { recursive: true, force: true }),
      };
    },
  };
}
