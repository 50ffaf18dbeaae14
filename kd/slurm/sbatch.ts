// Slurm job scripts for RoS-KD runs and studies (kd/slurm/chain.ts, kd/slurm/study.ts): the
// scheduler options shared by every submit command, the generated .sbatch text, sbatch/squeue
// calls, and the per-task status files the scripts leave.
//
// Every script is self-contained (inspect it, `sbatch` it again by hand). Its wrapper runs node
// in the background so the batch shell can catch Slurm's warning signal (--signal=B:USR1@secs,
// sent ahead of the time limit, or `scancel --signal=USR1 --batch`) and forward it: node then
// checkpoints and exits 130, and the script requeues its own task (`scontrol requeue`), which
// restarts it with --resume from that checkpoint (--no-requeue: it stops, and a resubmission
// resumes it). Each task ends by writing slurm/status/<task> ("STATE exit job log", STATE one
// of done, requeued, stopped, failed), a file only that task writes.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../cli.ts';
import { makeDirs, writeFileAtomic } from '../data/node-files.ts';

export interface SlurmOptions {
  /** extra sbatch options, already split into words (from --slurm "...") */
  extra: string[];
  account: string;
  qos: string;
  /** seconds before the time limit at which Slurm sends the checkpoint signal */
  signalSecs: number;
  requeue: boolean;
  /** shell line run before node in every job (e.g. `module load nodejs/20`) */
  setup: string;
  dryRun: boolean;
  /** wait for the submitted jobs, then print their status (exit 1 if a task failed) */
  wait: boolean;
  status: boolean;
}

export const SLURM_HELP = `cluster submission (Slurm):
  --submit slurm             write the job scripts into RUN/slurm/ and submit them (sbatch)
  --slurm "OPTS"             extra sbatch options for every job, e.g. "--partition=gpu --gres=gpu:1 --time=12:00:00"
  --account NAME, --qos NAME sbatch --account / --qos
  --signal-secs N            Slurm sends USR1 this long before the time limit: checkpoint, requeue, resume (default 180)
  --no-requeue               after that signal, stop with the checkpoint instead of requeuing the task
  --slurm-setup "CMD"        shell line run first in every job (e.g. "module load nodejs/20")
  --dry-run                  only write the scripts (and submit.sh, which submits them with their dependencies)
  --wait                     wait for the jobs, then print each task's state (exit 1 naming failed tasks and logs)
  --status                   print the state of the last submission's tasks in --out (failed ones with their logs)`;

/** Splits a shell-like option string ("--a=b --c 'd e'") into words; quotes group, nothing expands. */
export function shellWords(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let q: '"' | "'" | null = null;
  for (const ch of s) {
    if (q) {
      if (ch === q) q = null;
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      q = ch;
      has = true;
    } else if (/\s/.test(ch)) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else cur += ch;
  }
  if (q) throw new UsageError(`--slurm: unbalanced ${q} in ${JSON.stringify(s)}`);
  if (has || cur) out.push(cur);
  return out;
}

/** Quotes a word for bash (single quotes unless it is plainly safe). */
export function shq(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Takes the submission options out of argv; the rest belongs to kd/train.ts (or kd/study.ts). */
export function takeSlurmArgs(argv: readonly string[], keepDryRun = false): { slurm: SlurmOptions; rest: string[] } {
  const slurm: SlurmOptions = { extra: [], account: '', qos: '', signalSecs: 180, requeue: true, setup: '', dryRun: false, wait: false, status: false };
  const rest: string[] = [];
  let submit = '';
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let v: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) [a, v] = [a.slice(0, eq), a.slice(eq + 1)];
    const val = (): string => {
      if (v !== undefined) return v;
      if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--submit': submit = val(); break;
      case '--slurm': slurm.extra.push(...shellWords(val())); break;
      case '--account': slurm.account = val(); break;
      case '--qos': slurm.qos = val(); break;
      case '--slurm-setup': slurm.setup = val(); break;
      case '--signal-secs': {
        const n = Number(val());
        if (!Number.isInteger(n) || n < 10 || n > 65535) throw new UsageError(`--signal-secs: expected whole seconds in 10..65535, got ${JSON.stringify(argv[i])}`);
        slurm.signalSecs = n;
        break;
      }
      case '--no-requeue': slurm.requeue = false; break;
      case '--wait': slurm.wait = true; break;
      case '--status': slurm.status = true; break;
      case '--dry-run':
        slurm.dryRun = true;
        if (keepDryRun) rest.push(argv[i]);
        break;
      default: rest.push(argv[i]);
    }
  }
  if (submit && submit !== 'slurm') throw new UsageError(`--submit: only "slurm" is supported, got ${JSON.stringify(submit)} (Kubernetes: see README, "Running on a cluster")`);
  for (const w of slurm.extra) if (/^--?(array|dependency|output|error|open-mode|signal|requeue|no-requeue|parsable|wrap|d|o|e|a)(=|$)/.test(w))
    throw new UsageError(`--slurm: ${w} is set by the submitter itself (job chain, logs, checkpoint signal); leave it out`);
  return { slurm, rest };
}

export interface JobSpec {
  /** job name (Slurm shows it) and file stem: RUN/slurm/<file>.sbatch */
  file: string;
  jobName: string;
  /** log file; %a (array index) and %A (array job id) allowed */
  log: string;
  /** indices for --array (omit: a plain job) */
  array?: number[];
  /** task name for status and messages; may use $SLURM_ARRAY_TASK_ID */
  task: string;
  /** bash lines setting the array ARGS=(...) the node command gets after the common ones */
  argsLines: string[];
  /** the node script, relative to the repository, e.g. kd/train.ts */
  entry: string;
  /** common arguments (the user's train/study options) */
  common: string[];
}

/** Array syntax for sbatch: 0-3 or 0,2,5. */
export function arraySpec(idx: number[]): string {
  const contiguous = idx.every((v, k) => k === 0 || v === idx[k - 1] + 1);
  return contiguous && idx.length > 1 ? `${idx[0]}-${idx[idx.length - 1]}` : idx.join(',');
}

/** The text of one .sbatch file. */
export function sbatchText(job: JobSpec, o: SlurmOptions, dirs: { repo: string; slurm: string; node: string }): string {
  const head = [
    `--job-name=${job.jobName}`,
    `--output=${job.log}`,
    '--open-mode=append', // requeues and resubmissions add to one log per task
    ...(job.array ? [`--array=${arraySpec(job.array)}`] : []),
    ...(o.requeue ? ['--requeue'] : ['--no-requeue']),
    `--signal=B:USR1@${o.signalSecs}`,
    ...(o.account ? [`--account=${o.account}`] : []),
    ...(o.qos ? [`--qos=${o.qos}`] : []),
    ...o.extra,
  ];
  const log = job.log.replace('%a', '${SLURM_ARRAY_TASK_ID}').replace('%A', '${SLURM_ARRAY_JOB_ID}');
  return `#!/bin/bash
${head.map((h) => `#SBATCH ${shq(h)}`).join('\n')}
# Generated by roskd (--submit slurm). Resubmit by hand: sbatch ${shq(join(dirs.slurm, job.file + '.sbatch'))}
# (slurm/submit.sh submits the whole chain with its dependencies). Every run resumes what is done.
set -u
${job.argsLines.join('\n')}
TASK="${job.task}"
LOG="${log}"
JOB="\${SLURM_ARRAY_JOB_ID:+\${SLURM_ARRAY_JOB_ID}_\${SLURM_ARRAY_TASK_ID}}"; JOB="\${JOB:-\${SLURM_JOB_ID:-local}}"
STATUS=${shq(join(dirs.slurm, 'status'))}
echo "== roskd $TASK: job $JOB on $(hostname) at $(date -u +%Y-%m-%dT%H:%M:%SZ), restart \${SLURM_RESTART_COUNT:-0}"
cd ${shq(dirs.repo)} || exit 1
${o.setup ? o.setup + '\n' : ''}NODE="\${ROSKD_NODE:-${dirs.node}}"
COMMON=(${job.common.map(shq).join(' ')})
signalled=0
child=
# Slurm's warning (time limit or preemption near): node checkpoints after this step, exits 130
trap 'signalled=1; echo "roskd $TASK: USR1: checkpointing"; [ -n "$child" ] && kill -USR1 "$child" 2>/dev/null' USR1
# (the \${A[@]+...} form: bash before 4.4 calls an empty array unbound under set -u)
"$NODE" --import tsx ${shq(job.entry)} \${COMMON[@]+"\${COMMON[@]}"} \${ARGS[@]+"\${ARGS[@]}"} &
child=$!
while :; do
  wait "$child"; rc=$?
  kill -0 "$child" 2>/dev/null || break   # a trap interrupted the wait: node is still saving
done
wait "$child"; rc=$?   # bash keeps the exit status: the real one even if a trap cut the last wait short
status() { mkdir -p "$STATUS" && printf '%s %s %s %s\\n' "$1" "$rc" "$JOB" "$LOG" >"$STATUS/.$TASK.$$" && mv -f "$STATUS/.$TASK.$$" "$STATUS/$TASK"; }
if [ "$rc" = 0 ]; then status done; exit 0; fi
if [ "$signalled" = 1 ] && [ "$rc" = 130 ]${o.requeue ? ' && [ -n "${SLURM_JOB_ID:-}" ]' : ' && false'}; then
  status requeued
  echo "roskd $TASK: checkpoint saved; requeuing $JOB (it resumes from the checkpoint)"
  scontrol requeue "$JOB" && exit 0
  echo "roskd $TASK: scontrol requeue failed: resubmit (slurm/submit.sh or the submit command) to resume" >&2
fi
if [ "$signalled" = 1 ] && [ "$rc" = 130 ]; then
  status stopped
  echo "roskd $TASK: stopped with a checkpoint; resubmit (the submit command, or slurm/submit.sh) to resume it" >&2
  exit "$rc"
fi
status failed
echo "roskd $TASK FAILED (exit $rc); log: $LOG" >&2
exit "$rc"
`;
}

/** Writes the scripts and submit.sh (the chain with dependencies, for resubmitting by hand). */
export function writeScripts(slurmDir: string, jobs: { spec: JobSpec; text: string; after: string[] }[]): void {
  makeDirs(join(slurmDir, 'logs'), '--out');
  const sh = ['#!/bin/bash', '# Submits this run\'s job chain (written by kd/submit.ts); each job resumes what is done.', 'set -euo pipefail', `cd ${shq(slurmDir)}`];
  const v = (f: string): string => 'job_' + f.replace(/[^A-Za-z0-9]/g, '_');
  for (const j of jobs) {
    writeFileAtomic(join(slurmDir, j.spec.file + '.sbatch'), j.text);
    const dep = j.after.length ? ` --dependency=afterok:${j.after.map((a) => `$${v(a)}`).join(':')}` : '';
    sh.push(`${v(j.spec.file)}=$(sbatch --parsable${dep} ${shq(j.spec.file + '.sbatch')} | cut -d';' -f1); echo "${j.spec.file} $${v(j.spec.file)}"`);
  }
  writeFileAtomic(join(slurmDir, 'submit.sh'), sh.join('\n') + '\n');
}

function run(cmd: string, args: string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) return { ok: false, out: '', err: (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? `${cmd} not found: is this a Slurm login node? (--dry-run writes the scripts only)` : r.error.message };
  return { ok: r.status === 0, out: r.stdout ?? '', err: (r.stderr ?? '').trim() };
}

export function scancel(ids: string[]): void {
  if (ids.length) run('scancel', ids);
}

/** sbatch --parsable [--dependency=afterok:...] FILE; returns the job id. */
export function sbatch(file: string, after: string[]): string {
  const r = run('sbatch', ['--parsable', ...(after.length ? [`--dependency=afterok:${after.join(':')}`] : []), file]);
  if (!r.ok) throw new Error(`sbatch ${file}: ${r.err || 'failed'}`);
  return r.out.trim().split(';')[0];
}

/** Jobs (or array tasks) of these ids still known to squeue: id -> state. */
export function squeue(ids: string[]): Map<string, string> {
  const m = new Map<string, string>();
  if (!ids.length) return m;
  const r = run('squeue', ['-h', '-j', ids.join(','), '-o', '%i %T %r']);
  if (!r.ok) return m; // an id squeue forgot makes it fail: treat as gone
  for (const l of r.out.split('\n')) {
    const [id, state, reason] = l.trim().split(/\s+/);
    if (id) m.set(id, reason && reason !== 'None' ? `${state} (${reason})` : state);
  }
  return m;
}

/** Polls squeue until none of the ids is pending or running (a requeued task counts as pending). */
export async function waitJobs(ids: string[], opts: { timeoutMs?: number; pollMs?: number; onPoll?: (q: Map<string, string>) => void } = {}): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const q = squeue(ids);
    opts.onPoll?.(q);
    // a task held by an unsatisfiable dependency never runs: stop waiting for it
    if ([...q.values()].every((s) => /DependencyNeverSatisfied/.test(s))) return;
    if (Date.now() - t0 > (opts.timeoutMs ?? Infinity)) throw new Error(`jobs ${ids.join(',')} still queued after ${Math.round((Date.now() - t0) / 1000)} s: ${[...q].map(([k, v]) => `${k} ${v}`).join(', ')}`);
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 2000));
  }
}

export interface TaskStatus {
  task: string;
  state: string;
  exit: number;
  job: string;
  log: string;
}

/** The status files the job scripts left in RUN/slurm/status (one per task). */
export function readStatus(slurmDir: string): Map<string, TaskStatus> {
  const dir = join(slurmDir, 'status');
  const m = new Map<string, TaskStatus>();
  if (!existsSync(dir)) return m;
  for (const f of readdirSync(dir)) {
    if (f.startsWith('.')) continue;
    const [state, exit, job, ...log] = readFileSync(join(dir, f), 'utf8').trim().split(' ');
    m.set(f, { task: f, state, exit: Number(exit), job, log: log.join(' ') });
  }
  return m;
}
