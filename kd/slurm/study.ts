// `npx tsx kd/study.ts --submit slurm [study options] [--slurm ...]`: the study as Slurm jobs.
//   cells   a job array, one task per cell not yet done (kd/study.ts --cells ID); cells that share
//           teachers (ablation variants of one noise rate and seed) form one task, so their
//           teachers are trained once and never by two jobs at a time
//   study   afterok on the array: kd/study.ts itself, which finds every cell done and writes
//           study.json, study.md and the plots
// Rerunning the same command submits only the cells not done (their cell.json is missing).
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../cli.ts';
import { writeFileAtomic } from '../data/node-files.ts';
import { withFileLock } from '../file-lock.ts';
import { parseStudyArgs } from '../study-config.ts';
import { cellsOf } from '../study-grid.ts';
import { takeSlurmArgs, sbatchText, writeScripts, sbatch, shq, type JobSpec } from './sbatch.ts';

const REPO = resolve(new URL('../..', import.meta.url).pathname);

export interface StudyPlan {
  dir: string;
  /** each array task: its teacher key and cell ids */
  tasks: { key: string; cells: string[] }[];
  jobs: { spec: JobSpec; after: string[] }[];
}

/** Array tasks for the cells not done, grouped by their shared teachers, and the final job. */
export function planStudy(argv: readonly string[]): StudyPlan {
  const { rest } = takeSlurmArgs(argv);
  for (const a of rest) if (a.split('=')[0] === '--cells') throw new UsageError('--cells: the submitter picks the cells of each task; leave it out');
  const cfg = parseStudyArgs(rest);
  const dir = resolve(cfg.out);
  if (/["$`\\\n]/.test(dir)) throw new UsageError(`--out ${JSON.stringify(dir)}: the job scripts need a path without quotes, $, backquotes or backslashes`);
  const groups = new Map<string, string[]>();
  for (const c of cellsOf(cfg)) groups.set(c.teacherKey, [...(groups.get(c.teacherKey) ?? []), c.id]);
  const tasks = [...groups].map(([key, cells]) => ({ key, cells })).filter((t) => t.cells.some((id) => !existsSync(join(dir, 'cells', id, 'cell.json'))));
  const common = [...rest.filter((a, i) => a.split('=')[0] !== '--out' && rest[i - 1] !== '--out'), '--out', dir];
  const log = (n: string): string => join(dir, 'slurm', 'logs', n);
  const jobs: StudyPlan['jobs'] = [];
  if (tasks.length)
    jobs.push({
      spec: {
        file: 'cells', jobName: 'roskd-study-cells', log: log('cells-%A_%a.out'), array: tasks.map((_, i) => i), entry: 'kd/study.ts', common,
        task: '${GROUP}', argsLines: [`KEYS=(${tasks.map((t) => shq(t.key)).join(' ')})`, `CELLS=(${tasks.map((t) => shq(t.cells.join(','))).join(' ')})`, 'GROUP="cells-${KEYS[$SLURM_ARRAY_TASK_ID]}"', 'ARGS=(--cells "${CELLS[$SLURM_ARRAY_TASK_ID]}")'],
      },
      after: [],
    });
  jobs.push({ spec: { file: 'study', jobName: 'roskd-study', log: log('study.out'), task: 'study', entry: 'kd/study.ts', common, argsLines: ['ARGS=()'] }, after: tasks.length ? ['cells'] : [] });
  return { dir, tasks, jobs };
}

/** Writes the scripts and (unless --dry-run) submits them; throws UsageError / Error. */
export function submitStudy(argv: readonly string[]): void {
  const { slurm } = takeSlurmArgs(argv);
  const plan = planStudy(argv);
  const slurmDir = join(plan.dir, 'slurm');
  writeScripts(slurmDir, plan.jobs.map((j) => ({ spec: j.spec, text: sbatchText(j.spec, slurm, { repo: REPO, slurm: slurmDir, node: process.execPath }), after: j.after })));
  console.log(`study directory: ${plan.dir}`);
  console.log(plan.tasks.length ? `cells to run: ${plan.tasks.length} array task(s): ${plan.tasks.map((t, i) => `[${i}] ${t.cells.join(',')}`).join('; ')}` : 'every cell is done: only the outputs job');
  if (slurm.dryRun) {
    console.log(`--dry-run: scripts in ${slurmDir}; submit with: bash ${join(slurmDir, 'submit.sh')}`);
    return;
  }
  const ids = new Map<string, string>();
  for (const j of plan.jobs) {
    const id = sbatch(join(slurmDir, `${j.spec.file}.sbatch`), j.after.map((a) => ids.get(a)!));
    ids.set(j.spec.file, id);
    console.log(`submitted ${j.spec.file.padEnd(6)} job ${id}${j.spec.array ? ` (array tasks 0-${j.spec.array.length - 1})` : ''}${j.after.length ? `, after ${j.after.join(', ')}` : ''}`);
  }
  const jobsFile = join(slurmDir, 'jobs.json');
  withFileLock(jobsFile, () => {
    const prev = existsSync(jobsFile) ? (JSON.parse(readFileSync(jobsFile, 'utf8')) as { submissions: unknown[] }).submissions : [];
    writeFileAtomic(jobsFile, JSON.stringify({ submissions: [...prev, { at: new Date().toISOString(), jobs: Object.fromEntries(ids) }] }, null, 2) + '\n');
  });
  const all = [...ids.values()].join(',');
  console.log(`watch:   squeue -j ${all}`);
  console.log(`after:   sacct -j ${all} --format=JobID,JobName%24,State,ExitCode,Elapsed`);
  console.log(`status:  npx tsx kd/submit.ts --status --out ${plan.dir}    (names failed tasks and their logs)`);
  console.log(`logs:    ${join(slurmDir, 'logs')}/`);
  console.log(`results: ${join(plan.dir, 'study.md')} when job ${ids.get('study')} has finished`);
}
