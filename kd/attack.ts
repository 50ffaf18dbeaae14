// Adversarial robustness of a saved model, from the command line:
//   npx tsx kd/attack.ts --model runs/x/student-roskd.safetensors --attack pgd --eps 2/255 [--steps 10] [--json]
// prints clean vs attacked accuracy, macro-F1 and AUC on a split's clean labels. The
// architecture, classes, input size and normalisation come from the file's metadata (written
// by kd/train.ts); the dataset options (data, synthetic size, seed) from the run directory's
// config.json next to the model unless given here. Attacks run in pixel space (see
// kd/adversarial.ts); the work is kd/attack-run.ts.
import { quietDawnWarnings } from '../engine/node/dawn-stderr.ts';
import { parseCommandLine, UsageError } from './cli.ts';
import { formatRobustness } from './robustness.ts';
import { parseAttackCli, runAttackCli } from './attack-run.ts';

const HELP = `Adversarial robustness of a model saved by kd/train.ts

usage: npx tsx kd/attack.ts --model RUN/student-roskd.safetensors [options]

  --model FILE          the .safetensors model (architecture, classes, normalisation from its metadata)
  --data SPEC           dataset (as kd/train.ts --data); default: the data of the run directory holding the model
  --synthetic-n N       synthetic set size (default: from the run's config.json)
  --data-seed N         seed of the dataset split / synthetic set (default: from the run's config.json)
  --split test|val|train  split to attack (default test); its clean labels are used
  --attack fgsm|pgd     attack kind; a comma list runs several (default pgd)
  --eps LIST            epsilon(s) in pixel units, e.g. 2/255 or 1/255,2/255,4/255,8/255 (default 2/255)
  --steps N             PGD iterations (default 10)
  --step-size E         PGD step in pixel units (default 2.5 * eps / steps)
  --norm linf|l2        PGD ball (default linf; FGSM is always linf)
  --no-random-start     PGD starts at the clean image
  --last-iterate        PGD returns the last iterate (default: the strongest iterate per image)
  --limit N             attack a seeded random subset of N images (default 0 = all)
  --batch-size N        (default 128)
  --seed N              seed of the random start and the subset (default 0)
  --json                print the result as JSON

Attacks run in pixel space: images are un-normalised, perturbed, projected on the eps-ball,
clamped to [0, 1] and re-normalised every step; gradients come from the engine's autograd
w.r.t. the input with the model in eval mode (cross-entropy; BCE for multi-label models).`;

async function main(): Promise<void> {
  const o = parseCommandLine(parseAttackCli, (x) => x.help, () => HELP);
  if (!o) return;
  await quietDawnWarnings(); // Dawn's two start-up warnings only with ROSKD_VERBOSE=1
  try {
    let last = 0;
    const r = await runAttackCli(o, (s) => {
      if (o.json) return;
      // progress lines at most every 5 s
      if (s.startsWith('  ') && performance.now() - last < 5000) return;
      last = performance.now();
      console.error(s.trim());
    });
    if (o.json) {
      console.log(JSON.stringify({ model: r.model, arch: r.meta.arch, role: r.meta.role, method: r.meta.method, data: r.data, split: r.split, ...r.report }, null, 2));
      return;
    }
    console.log(`model: ${r.model} (${r.meta.arch}${r.meta.method ? `, ${r.meta.role} ${r.meta.method}` : `, ${r.meta.role}`}); data: ${r.data}, ${r.split} split, ${r.report.n} images (clean labels)`);
    console.log('attacks in pixel space ([0, 1] scale), images clamped to [0, 1], model in eval mode\n');
    console.log(formatRobustness(r.report));
    console.log(`\n${r.report.secs.toFixed(1)} s`);
  } catch (e) {
    const err = e as Error;
    console.error(`error: ${err.message}`);
    if (process.env.ROSKD_DEBUG) console.error(err.stack);
    process.exit(err instanceof UsageError ? 2 : 1);
  }
}

if (process.argv[1]?.endsWith('kd/attack.ts')) await main();
