// The noise-robustness study as one reproducible command:
//   npx tsx kd/study.ts --preset demo [--out studies/demo]
// runs methods {ce, kd, avgkd, roskd} x noise rates x seeds (x ablation variants) with the
// RoS-KD pipeline (kd/pipeline.ts runPipeline), evaluates every student on the clean test labels,
// clean and under FGSM / PGD at several epsilons (kd/robustness.ts), and writes study.json,
// study.md (mean ± std over seeds) and PNG plots (kd/plot.ts).
//
// Cost and reuse: teachers depend only on (noise rate, seed, K, subset fraction) and the fixed
// teacher options, so they are trained once per such key in teachers/<key>/ and hard-linked
// into every cell that needs them (student-only ablations such as EMA or stochastic vs
// averaging reuse them too); the students of all methods of a cell share them.
// Resumable: a cell is done when cells/<id>/cell.json exists (written atomically after its
// last evaluation); a rerun of the same command skips done cells, continues an interrupted
// cell from the pipeline's checkpoints, and rewrites the study outputs.
// This file is the command line; the work is in kd/study-config.ts, study-grid.ts, study-run.ts
// and study-report.ts.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseCommandLine, UsageError } from './cli.ts';
import { attackLabel } from './adversarial.ts';
import { requestInterrupt, InterruptedError, isInterruptRequested, isTraining, NanLossError } from './interrupt.ts';
import { supervise } from './supervise.ts';
import { parseStudyArgs, STUDY_HELP } from './study-config.ts';
import { attackSpecs, cellsOf } from './study-grid.ts';
import { renderStudy, runStudy } from './study-run.ts';
import { submitRequested, submitStudyCommand } from './slurm/command.ts';

async function main(): Promise<void> {
  if (submitRequested(process.argv.slice(2))) return submitStudyCommand(process.argv.slice(2)); // --submit slurm: a cell array + the outputs job (kd/slurm/)
  const cfg = parseCommandLine(parseStudyArgs, (c) => c.help, () => STUDY_HELP);
  if (!cfg) return;
  if (cfg.dryRun) {
    const cells = cellsOf(cfg);
    console.log(`study ${resolve(cfg.out)}: ${cells.length} cells, attacks ${attackSpecs(cfg).map(attackLabel).join(', ') || 'none'}`);
    for (const c of cells) console.log(`  ${c.id}${c.variant.label ? `  (${c.variant.label})` : ''}${existsSync(join(resolve(cfg.out), 'cells', c.id, 'cell.json')) ? '  done' : ''}`);
    console.log(`train options: ${JSON.stringify(cfg.train)}`);
    return;
  }
  if (cfg.reportOnly) {
    try {
      renderStudy(cfg);
    } catch (e) {
      console.error(`error: ${(e as Error).message}`);
      process.exit(e instanceof UsageError ? 2 : 1);
    }
    console.log(`results: ${join(resolve(cfg.out), 'study.md')}`);
    return;
  }
  // Ctrl-C / SIGTERM: checkpoint after this step, exit 130 (the work runs in a child process)
  await supervise({ onInterrupt: requestInterrupt, training: isTraining, resumeHint: 'rerun the same command to resume the study' });
  const t0 = performance.now();
  try {
    const r = await runStudy(cfg);
    console.log(`\n${r.ran.length} cell(s) run, ${r.skipped.length} skipped (done before); ${((performance.now() - t0) / 60000).toFixed(1)} min`);
    console.log(`results: ${join(r.dir, 'study.md')}`);
  } catch (e) {
    const err = e as Error;
    process.stderr.write('\n'); // end the live progress line
    if (err instanceof InterruptedError || isInterruptRequested()) {
      console.error(`${err.message}\nrerun the same command to resume the study`);
      process.exit(130);
    }
    console.error(`error: ${err.message}`);
    if (process.env.ROSKD_DEBUG) console.error(err.stack);
    process.exit(err instanceof UsageError ? 2 : err instanceof NanLossError ? 3 : 1);
  }
}

if (process.argv[1]?.endsWith('kd/study.ts')) await main();
