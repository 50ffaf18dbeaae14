// RoS-KD end to end from the command line: `npx tsx kd/train.ts [options]` (see --help). Parses
// the options, runs the pipeline (kd/pipeline.ts), and maps errors to exit codes: 2 bad usage,
// 3 non-finite loss, 130 interrupted (Ctrl-C, or USR1 from Slurm, saves a checkpoint first), 1
// anything else. With --submit slurm it writes and submits Slurm jobs instead (kd/slurm/command.ts).
import { parseCommandLine } from './cli.ts';
import { parseArgs, helpText, UsageError } from './config.ts';
import { runPipeline } from './pipeline.ts';
import { NanLossError, InterruptedError, requestInterrupt, isInterruptRequested, clearInterrupt, isTraining } from './interrupt.ts';
import { supervise } from './supervise.ts';
import { submitRequested, submitRunCommand } from './slurm/command.ts';

async function main(): Promise<void> {
  if (submitRequested(process.argv.slice(2))) return submitRunCommand(process.argv.slice(2)); // --submit slurm: the run as Slurm jobs (kd/slurm/)
  const parsed = parseCommandLine(parseArgs, (p) => p.opts.help, helpText);
  if (!parsed) return;
  // Ctrl-C / SIGTERM: checkpoint after this step, exit 130 (the work runs in a child process)
  await supervise({ onInterrupt: requestInterrupt, training: isTraining, resumeHint: 'continue with --resume' });
  const t0 = performance.now();
  try {
    await runPipeline(parsed);
    console.log(`total wall time ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  } catch (e) {
    const err = e as Error;
    process.stderr.write('\n');
    if (err instanceof InterruptedError || isInterruptRequested()) {
      console.error(err.message);
      process.exit(130);
    }
    if (err instanceof UsageError) {
      console.error(`error: ${err.message}`);
      process.exit(2);
    }
    if (err instanceof NanLossError) {
      console.error(`error: ${err.message}`);
      process.exit(3);
    }
    console.error(`error: ${err.message}`);
    if (process.env.ROSKD_DEBUG) console.error(err.stack);
    process.exit(1);
  } finally {
    clearInterrupt();
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('kd/train.ts')) void main();
