// A RoS-KD run as a Slurm job chain (what `npx tsx kd/submit.ts` and `kd/train.ts --submit slurm`
// do; the commands are in kd/slurm/command.ts). Plans and submits RUN/slurm/*.sbatch:
//   teachers   a job array, one task per teacher not yet trained (--stage teachers --teacher-index i)
//   student-M  one job per student method not yet trained, afterok on the teachers (--stage student --methods M)
//   eval       the report, afterok on the students (--stage eval)
// Every job passes --resume, so a requeued or resubmitted job continues from its checkpoint,
// and rerunning the same command submits only what is not done.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../cli.ts';
import { RUN_IDENTITY, SPECS, type Options } from '../config.ts';
import { RunDir, defaultRunName } from '../run-dir.ts';
import { sbatchText, writeScripts, sbatch, scancel, readStatus, squeue, type SlurmOptions, type JobSpec, type TaskStatus } from './sbatch.ts';

const REPO = resolve(new URL('../..', import.meta.url).pathname);
/** train.ts options the chain sets per job */
const MANAGED = ['--stage', '--teacher-index', '--resume', '--no-resume', '--out', '--progress', '--methods', '--method'];

export interface PlannedJob {
  spec: JobSpec;
  /** names of earlier jobs in this plan it waits for (afterok) */
  after: string[];
}

export interface ChainPlan {
  run: string;
  slurmDir: string;
  jobs: PlannedJob[];
  /** what is already done and left out */
  done: string[];
}

function safePath(p: string, what: string): string {
  if (/["$`\\\n]/.test(p)) throw new UsageError(`${what} ${JSON.stringify(p)}: the job scripts need a path without quotes, $, backquotes or backslashes`);
  return p;
}

/** The user's train.ts options minus the ones each job sets, so every job gets the same run. */
export function commonArgs(rest: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    const flag = a.split('=')[0];
    if (!MANAGED.includes(flag)) {
      out.push(a);
      continue;
    }
    // skip its value too, unless given as --flag=value or it is a bare boolean
    if (!a.includes('=') && !['--resume', '--no-resume'].includes(flag) && i + 1 < rest.length) i++;
  }
  return out;
}

/** Decides the jobs for one run from the options and what RUN already holds. */
export function planChain(o: Options, rest: readonly string[], slurm: SlurmOptions): ChainPlan {
  for (const a of rest) if (['--stage', '--teacher-index'].includes(a.split('=')[0])) throw new UsageError(`${a.split('=')[0]}: the Slurm chain runs every stage as its own jobs; leave it out`);
  const run = safePath(resolve(o.out || defaultRunName(o.preset)), '--out');
  const slurmDir = join(run, 'slurm');
  const prev = new RunDir(run).readJson<{ options: Record<string, unknown> }>('config.json');
  if (prev)
    for (const key of RUN_IDENTITY) {
      const flag = SPECS.find((s) => s.key === key)!.flag;
      if (JSON.stringify(prev.options[flag]) !== JSON.stringify(o[key])) throw new UsageError(`--${flag} ${JSON.stringify(o[key])} differs from ${JSON.stringify(prev.options[flag])} in ${join(run, 'config.json')}: use another --out or the same options`);
    }
  const r = new RunDir(run);
  const trained = (name: string, file: string): boolean => existsSync(file) && existsSync(r.doneFile(name));
  const common = [...commonArgs(rest), '--out', run, '--resume', '--progress', 'plain', '--methods', o.methods.join(',')];
  const log = (name: string): string => join(slurmDir, 'logs', `${name}.out`);
  const done: string[] = [];
  const jobs: PlannedJob[] = [];
  const needTeachers = o.methods.some((m) => m !== 'ce');
  const teachers = needTeachers ? Array.from({ length: o.teachers }, (_, i) => i).filter((i) => !trained(`teacher-${i}`, r.teacherFile(i))) : [];
  if (needTeachers) done.push(...Array.from({ length: o.teachers }, (_, i) => `teacher-${i}`).filter((_, i) => !teachers.includes(i)));
  if (teachers.length)
    jobs.push({
      spec: { file: 'teachers', jobName: 'roskd-teachers', log: log('teacher-%a'), array: teachers, task: 'teacher-${SLURM_ARRAY_TASK_ID}', entry: 'kd/train.ts', common, argsLines: ['ARGS=(--stage teachers --teacher-index "$SLURM_ARRAY_TASK_ID")'] },
      after: [],
    });
  for (const m of o.methods) {
    if (trained(`student-${m}`, r.studentFile(m))) {
      done.push(`student-${m}`);
      continue;
    }
    jobs.push({
      spec: { file: `student-${m}`, jobName: `roskd-student-${m}`, log: log(`student-${m}`), task: `student-${m}`, entry: 'kd/train.ts', common, argsLines: [`ARGS=(--stage student --methods ${m})`] },
      after: teachers.length && m !== 'ce' ? ['teachers'] : [],
    });
  }
  // the report: whenever something was (re)trained, or none was written yet
  if (jobs.length || !r.exists('report.json'))
    jobs.push({ spec: { file: 'eval', jobName: 'roskd-eval', log: log('eval'), task: 'eval', entry: 'kd/train.ts', common, argsLines: ['ARGS=(--stage eval)'] }, after: jobs.map((j) => j.spec.file) });
  else done.push('eval');
  return { run, slurmDir, jobs, done };
}

/** Writes the scripts, submits them in order with their dependencies; returns name -> job id. */
export function submitPlan(plan: ChainPlan, slurm: SlurmOptions, print: (s: string) => void = console.log): Map<string, string> {
  const dirs = { repo: safePath(REPO, 'the repository path'), slurm: plan.slurmDir, node: process.execPath };
  const texts = plan.jobs.map((j) => ({ spec: j.spec, text: sbatchText(j.spec, slurm, dirs), after: j.after }));
  writeScripts(plan.slurmDir, texts);
  print(`run directory: ${plan.run}`);
  if (plan.done.length) print(`already done (not submitted): ${plan.done.join(', ')}`);
  if (!plan.jobs.length) {
    print('nothing to submit: every model and the report are done');
    return new Map();
  }
  print(`scripts: ${plan.jobs.map((j) => join('slurm', `${j.spec.file}.sbatch`) + (j.spec.array ? ` (array ${j.spec.array.join(',')})` : '')).join(', ')}; slurm/submit.sh submits them as a chain`);
  const ids = new Map<string, string>();
  if (slurm.dryRun) {
    print(`--dry-run: nothing submitted; submit with: bash ${join(plan.slurmDir, 'submit.sh')}`);
    return ids;
  }
  for (const j of plan.jobs) {
    const id = sbatch(join(plan.slurmDir, `${j.spec.file}.sbatch`), j.after.map((a) => ids.get(a)!));
    ids.set(j.spec.file, id);
    print(`submitted ${j.spec.file.padEnd(16)} job ${id}${j.spec.array ? ` (array tasks ${j.spec.array.join(',')})` : ''}${j.after.length ? `, after ${j.after.join(', ')}` : ''}`);
  }
  const all = [...ids.values()].join(',');
  const r = new RunDir(plan.run);
  r.updateJson<{ submissions: unknown[] }>('slurm/jobs.json', (p) => ({ submissions: [...(p?.submissions ?? []), { at: new Date().toISOString(), jobs: Object.fromEntries(ids) }] }));
  print(`watch:   squeue -j ${all}`);
  print(`after:   sacct -j ${all} --format=JobID,JobName%24,State,ExitCode,Elapsed`);
  print(`status:  npx tsx kd/submit.ts --status --out ${plan.run}    (names failed tasks and their logs)`);
  print(`logs:    ${join(plan.slurmDir, 'logs')}/`);
  return ids;
}

/** Last submission's job ids (name -> id) from RUN/slurm/jobs.json. */
export function lastJobs(run: string): Map<string, string> {
  const f = join(run, 'slurm', 'jobs.json');
  if (!existsSync(f)) return new Map();
  const j = JSON.parse(readFileSync(f, 'utf8')) as { submissions: { jobs: Record<string, string> }[] };
  return new Map(Object.entries(j.submissions.at(-1)?.jobs ?? {}));
}

/** Per-task lines (queue state, or the state the task's script recorded), failures with their logs. */
export function statusReport(run: string): { lines: string[]; failed: TaskStatus[] } {
  const slurmDir = join(run, 'slurm');
  const jobs = lastJobs(run);
  const q = squeue([...jobs.values()]);
  const st = readStatus(slurmDir);
  const lines: string[] = [];
  for (const [id, state] of q) lines.push(`queued  ${id.padEnd(14)} ${state}`);
  const failed: TaskStatus[] = [];
  for (const s of [...st.values()].sort((a, b) => (a.task < b.task ? -1 : 1))) {
    lines.push(`${s.state.padEnd(8)}${s.task.padEnd(16)} job ${s.job}${s.state === 'done' ? '' : ` exit ${s.exit}`}${s.state === 'failed' || s.state === 'stopped' ? `; log: ${s.log}` : ''}`);
    if (s.state === 'failed' || s.state === 'stopped') failed.push(s);
  }
  const stuck = [...q].filter(([, s]) => /DependencyNeverSatisfied/.test(s)).map(([id]) => id);
  if (stuck.length) lines.push(`jobs ${stuck.join(',')} wait on a failed dependency: scancel them, fix the failure, rerun the submit command`);
  return { lines, failed };
}

/** Before a resubmission: jobs of the last one still queued would race the new ones; those stuck behind a failed dependency are cancelled. */
export function clearPrevious(run: string): void {
  const q = squeue([...lastJobs(run).values()]);
  const stuck = [...q].filter(([, s]) => /DependencyNeverSatisfied/.test(s)).map(([id]) => id);
  const live = [...q.keys()].filter((id) => !stuck.includes(id));
  if (live.length) throw new UsageError(`jobs ${live.join(',')} of the last submission into ${run} are still queued or running (squeue -j ${live.join(',')}): wait for them, or scancel them, then submit again`);
  if (stuck.length) {
    scancel(stuck);
    console.log(`cancelled ${stuck.join(',')}: they waited on a task that failed or stopped`);
  }
}
