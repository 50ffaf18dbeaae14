// A RoS-KD run as a Slurm job chain: `npx tsx kd/submit.ts [kd/train.ts options] [--slurm ...]`
// (the same as `kd/train.ts --submit slurm ...`; --help lists the submission options). Writes
// RUN/slurm/*.sbatch and submits a teacher array, one job per student method (afterok) and the
// eval job; --status and --wait report each task. The work is in kd/slurm/ (chain.ts plans and
// submits, sbatch.ts writes the scripts, command.ts is this command).
import { submitRunCommand } from './slurm/command.ts';

if (process.argv[1]?.endsWith('kd/submit.ts')) await submitRunCommand(process.argv.slice(2));
