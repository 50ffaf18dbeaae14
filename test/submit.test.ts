// kd/submit.ts (kd/slurm/) without a scheduler: option handling, the job chain it plans from what a run
// directory holds, and the generated job script run by plain bash: Slurm's warning signal (USR1)
// makes node checkpoint and stop; running the script again resumes to the same weights.
// test/slurm.test.ts runs the chain on a real (local) Slurm.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, optionsJson } from '../kd/config.ts';
import { planChain, commonArgs } from '../kd/slurm/chain.ts';
import { takeSlurmArgs, shellWords, sbatchText, writeScripts, readStatus, arraySpec } from '../kd/slurm/sbatch.ts';
import { TINY_RUN } from './fixtures/tiny-run.ts';
import { planStudy } from '../kd/slurm/study.ts';

const root = mkdtempSync(join(tmpdir(), 'roskd-submit-'));
const repo = new URL('..', import.meta.url).pathname.replace(/\/$/, '');

test('submission options: --slurm is split like a shell would, managed sbatch options and other schedulers are refused', () => {
  assert.equal(shellWords(`--partition=gpu  --gres=gpu:1 --comment 'two words' -J"x y"`), ['--partition=gpu', '--gres=gpu:1', '--comment', 'two words', '-Jx y']);
  const { slurm, rest } = takeSlurmArgs(['--submit', 'slurm', '--slurm', '--time=1:00:00 --mem=2G', '--account=a1', '--qos', 'q', '--seed', '3', '--dry-run', '--signal-secs', '90']);
  assert.equal(slurm.extra, ['--time=1:00:00', '--mem=2G']);
  assert.equal([slurm.account, slurm.qos, slurm.dryRun, slurm.signalSecs, slurm.requeue], ['a1', 'q', true, 90, true]);
  assert.equal(rest, ['--seed', '3']);
  assert.throws(() => takeSlurmArgs(['--submit', 'k8s']), /--submit: only "slurm"/);
  assert.throws(() => takeSlurmArgs(['--slurm', '--array=0-3']), /--array=0-3 is set by the submitter/);
  assert.throws(() => takeSlurmArgs(['--slurm', '"--time=1']), /unbalanced/);
  assert.throws(() => takeSlurmArgs(['--signal-secs', '5']), /--signal-secs/);
  assert.equal(commonArgs(['--out', 'x', '--seed', '1', '--resume', '--methods=ce', '--stage', 'eval', '--progress', 'tty']), ['--seed', '1']);
  assert.is(arraySpec([0, 1, 2]), '0-2');
  assert.is(arraySpec([1, 3]), '1,3');
  assert.is(arraySpec([2]), '2');
});

test('planChain: teachers array, students after it (ce needs none), eval after all; reruns leave out what is done', () => {
  const out = join(root, 'plan');
  const args = ['--teachers', '3', '--methods', 'ce,kd,roskd', '--seed', '5', '--out', out];
  const o = parseArgs(args).opts;
  const slurm = takeSlurmArgs([]).slurm;
  const p = planChain(o, args, slurm);
  assert.equal(p.jobs.map((j) => [j.spec.file, j.spec.array ?? null, j.after]), [
    ['teachers', [0, 1, 2], []],
    ['student-ce', null, []],
    ['student-kd', null, ['teachers']],
    ['student-roskd', null, ['teachers']],
    ['eval', null, ['teachers', 'student-ce', 'student-kd', 'student-roskd']],
  ]);
  const common = p.jobs[0].spec.common;
  assert.ok(common.join(' ').endsWith(`--seed 5 --out ${out} --resume --progress plain --methods ce,kd,roskd`), common.join(' '));
  assert.throws(() => planChain(parseArgs([...args, '--stage', 'teachers']).opts, [...args, '--stage', 'teachers'], slurm), /--stage: the Slurm chain runs every stage/);
  // teacher 1 and student kd are done: only the rest
  const touch = (f: string): void => {
    mkdirSync(join(f, '..'), { recursive: true });
    writeFileSync(f, '{}');
  };
  for (const f of ['teacher-1.safetensors', 'checkpoints/teacher-1.done.json', 'student-kd.safetensors', 'checkpoints/student-kd.done.json']) touch(join(out, f));
  const p2 = planChain(o, args, slurm);
  assert.equal(p2.jobs.map((j) => [j.spec.file, j.spec.array ?? null]), [['teachers', [0, 2]], ['student-ce', null], ['student-roskd', null], ['eval', null]]);
  assert.equal(p2.done, ['teacher-1', 'student-kd']);
  for (const f of ['teacher-0.safetensors', 'checkpoints/teacher-0.done.json', 'teacher-2.safetensors', 'checkpoints/teacher-2.done.json', 'student-ce.safetensors', 'checkpoints/student-ce.done.json', 'student-roskd.safetensors', 'checkpoints/student-roskd.done.json', 'report.json']) touch(join(out, f));
  assert.equal(planChain(o, args, slurm).jobs, []);
  // a run directory made with other identity options is refused before anything is submitted
  writeFileSync(join(out, 'config.json'), JSON.stringify({ options: { ...optionsJson(o), seed: 6 } }));
  assert.throws(() => planChain(o, args, slurm), /--seed 5 differs from 6/);
});

test('planStudy: one array task per cell; cells sharing teachers (ablation variants) in one task; done cells left out', () => {
  const out = join(root, 'study');
  const argv = ['--submit', 'slurm', '--preset', 'demo', '--noise-rates', '0,0.4', '--seeds', '1', '--ema', '0,0.9', '--attacks', 'none', '--out', out, '--slurm', '--time=1:00:00'];
  const p = planStudy(argv);
  assert.equal(p.tasks, [
    { key: 'nr0_seed0_K3_f0.7', cells: ['nr0_seed0_K3_f0.7_k1_ema0', 'nr0_seed0_K3_f0.7_k1_ema0.9'] },
    { key: 'nr0.4_seed0_K3_f0.7', cells: ['nr0.4_seed0_K3_f0.7_k1_ema0', 'nr0.4_seed0_K3_f0.7_k1_ema0.9'] },
  ]);
  assert.equal(p.jobs.map((j) => [j.spec.file, j.spec.array ?? null, j.after]), [['cells', [0, 1], []], ['study', null, ['cells']]]);
  assert.ok(!p.jobs[0].spec.common.some((a) => a === '--submit' || a.startsWith('--time')), 'submission options stay out of the study command');
  mkdirSync(join(out, 'cells', 'nr0_seed0_K3_f0.7_k1_ema0.9'), { recursive: true });
  writeFileSync(join(out, 'cells', 'nr0_seed0_K3_f0.7_k1_ema0.9', 'cell.json'), '{}');
  assert.is(planStudy(argv).tasks.length, 2, 'a group with one cell left still runs');
  for (const c of ['nr0_seed0_K3_f0.7_k1_ema0', 'nr0.4_seed0_K3_f0.7_k1_ema0', 'nr0.4_seed0_K3_f0.7_k1_ema0.9']) {
    mkdirSync(join(out, 'cells', c), { recursive: true });
    writeFileSync(join(out, 'cells', c, 'cell.json'), '{}');
  }
  const done = planStudy(argv);
  assert.equal([done.tasks, done.jobs.map((j) => j.spec.file)], [[], ['study']]);
  assert.throws(() => planStudy([...argv, '--cells', 'x']), /--cells: the submitter picks/);
});

function bash(script: string, env: Record<string, string>, onLine?: (l: string, kill: (sig: NodeJS.Signals) => void) => void): Promise<{ code: number | null; out: string }> {
  return new Promise((res) => {
    const p = spawn('bash', [script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const take = (b: Buffer): void => {
      out += b.toString();
      for (const l of b.toString().split('\n')) onLine?.(l, (sig) => p.kill(sig));
    };
    p.stdout.on('data', take);
    p.stderr.on('data', take);
    p.on('exit', (code) => res({ code, out }));
  });
}

test('job script under plain bash: USR1 to the batch shell checkpoints and stops (status "stopped"); rerun resumes to the same weights', async () => {
  const ref = join(root, 'ref');
  const sig = join(root, 'sig');
  const args = [...TINY_RUN, '--teacher-epochs', '8'];
  // reference: the teacher trained without interruption, through the same script
  for (const out of [ref, sig]) {
    const p = planChain(parseArgs([...args, '--out', out]).opts, [...args, '--out', out], takeSlurmArgs([]).slurm);
    const t = p.jobs[0];
    writeScripts(p.slurmDir, [{ spec: t.spec, text: sbatchText(t.spec, takeSlurmArgs([]).slurm, { repo, slurm: p.slurmDir, node: process.execPath }), after: [] }]);
  }
  const env = { SLURM_ARRAY_TASK_ID: '0', SLURM_JOB_ID: '' };
  const a = await bash(join(ref, 'slurm', 'teachers.sbatch'), env);
  assert.is(a.code, 0, a.out);
  let sent = false;
  const b = await bash(join(sig, 'slurm', 'teachers.sbatch'), env, (l, kill) => {
    if (!sent && /teacher-0 epoch 2\/8/.test(l)) {
      sent = true;
      kill('SIGUSR1'); // to bash, as Slurm's --signal=B:USR1 does
    }
  });
  assert.ok(sent, b.out);
  assert.is(b.code, 130, b.out);
  assert.match(b.out, /USR1: checkpointing/);
  assert.match(b.out, /checkpoint saved to .*teacher-0\.ckpt\.safetensors/);
  assert.ok(!existsSync(join(sig, 'teacher-0.safetensors')));
  assert.is(readStatus(join(sig, 'slurm')).get('teacher-0')!.state, 'stopped');
  const c = await bash(join(sig, 'slurm', 'teachers.sbatch'), env);
  assert.is(c.code, 0, c.out);
  assert.match(c.out, /teacher-0: resuming at epoch [3-8], step \d+\/\d+/);
  assert.is(readStatus(join(sig, 'slurm')).get('teacher-0')!.state, 'done');
  assert.ok(readFileSync(join(ref, 'teacher-0.safetensors')).equals(readFileSync(join(sig, 'teacher-0.safetensors'))), 'resumed teacher differs from the uninterrupted one');
});

test.run();
