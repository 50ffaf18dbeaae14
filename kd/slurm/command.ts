// The `--submit slurm` commands: `npx tsx kd/submit.ts` (= `kd/train.ts --submit slurm`), a run as
// a job chain (chain.ts), and `kd/study.ts --submit slurm`, a study as a cell array (study.ts).
// Like cli.ts's parseCommandLine they print their own errors and set the exit code: 2 bad usage
// (UsageError), 1 anything else or a failed task (--wait, --status).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../cli.ts';
import { parseArgs } from '../config.ts';
import { takeSlurmArgs, waitJobs, SLURM_HELP } from './sbatch.ts';
import { planChain, submitPlan, statusReport, clearPrevious } from './chain.ts';
import { submitStudy } from './study.ts';

/** Whether argv asks for a cluster submission (--submit NAME / --submit=NAME) instead of running here. */
export const submitRequested = (argv: readonly string[]): boolean => argv.some((a) => a === '--submit' || a.startsWith('--submit='));

function fail(e: unknown): never {
  console.error(`error: ${(e as Error).message}`);
  if (process.env.ROSKD_DEBUG) console.error((e as Error).stack);
  process.exit(e instanceof UsageError ? 2 : 1);
}

/** kd/submit.ts (and kd/train.ts --submit slurm): help, --status, or plan + submit (+ --wait). */
export async function submitRunCommand(argv: readonly string[]): Promise<void> {
  try {
    const { slurm, rest } = takeSlurmArgs(argv);
    if (rest.includes('--help') || rest.includes('-h')) {
      console.log(`usage: npx tsx kd/submit.ts [kd/train.ts options] [submission options]\n       npx tsx kd/train.ts --submit slurm [kd/train.ts options] [submission options]\n\n${SLURM_HELP}\n\nkd/train.ts options (see npx tsx kd/train.ts --help) apply to every job; --stage, --teacher-index and --resume are set per job.`);
      return;
    }
    const o = parseArgs(rest).opts;
    if (slurm.status) {
      const run = resolve(o.out || '.');
      const { lines, failed } = statusReport(run);
      console.log(lines.length ? lines.join('\n') : `no Slurm tasks recorded in ${join(run, 'slurm')}`);
      process.exitCode = failed.length ? 1 : 0;
      return;
    }
    const plan = planChain(o, rest, slurm);
    if (!slurm.dryRun) clearPrevious(plan.run);
    const ids = submitPlan(plan, slurm);
    if (slurm.wait && ids.size) {
      await waitJobs([...ids.values()], { pollMs: 5000 });
      const { lines, failed } = statusReport(plan.run);
      console.log(lines.join('\n'));
      if (failed.length) {
        console.error(`failed: ${failed.map((f) => `${f.task} (log: ${f.log})`).join(', ')}`);
        process.exitCode = 1;
      } else if (existsSync(join(plan.run, 'report.md'))) console.log(`report: ${join(plan.run, 'report.md')}`);
    }
  } catch (e) {
    fail(e);
  }
}

/** kd/study.ts --submit slurm: one array task per group of cells sharing teachers, then the outputs job. */
export function submitStudyCommand(argv: readonly string[]): void {
  try {
    submitStudy(argv);
  } catch (e) {
    fail(e);
  }
}
