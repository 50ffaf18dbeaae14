// Classifies PNG/JPEG images with a model saved by kd/train.ts:
//   npx tsx kd/predict.ts --model runs/demo/student-roskd.safetensors img1.png dir/ ... [--json]
// (the work is kd/classify.ts; this file parses the command line and prints).
import { quietDawnWarnings } from '../engine/node/dawn-stderr.ts';
import { parseCommandLine, parseFlags, UsageError, type OptionSpec } from './cli.ts';
import { predictFiles, formatTable } from './classify.ts';

const HELP = `usage: npx tsx kd/predict.ts --model RUN/student-roskd.safetensors IMAGES_OR_FOLDERS... [options]

Classifies PNG/JPEG images (folders are searched recursively) with a model saved by kd/train.ts;
architecture, classes, input size and normalisation are read from the file's metadata.

  --model FILE           weights saved by kd/train.ts (teacher-<i>.safetensors or student-<method>.safetensors)
  --json                 print JSON instead of a table
  --on-bad-image skip|fail   unreadable image: stop naming it (default fail) or skip and list it
  --threshold P          multi-label models: report labels with probability >= P (default 0.5)
  --batch-size N         images per forward pass (default 64)
  --help                 this text`;

interface PredictCli {
  model: string;
  json: boolean;
  onBadImage: 'skip' | 'fail';
  threshold: number;
  batchSize: number;
}

const OPTIONS: OptionSpec<keyof PredictCli>[] = [
  { key: 'model', flag: 'model', kind: 'string' },
  { key: 'json', flag: 'json', kind: 'bool' },
  { key: 'onBadImage', flag: 'on-bad-image', kind: 'string', choices: ['skip', 'fail'] },
  { key: 'threshold', flag: 'threshold', kind: 'number', min: 0, max: 1 },
  { key: 'batchSize', flag: 'batch-size', kind: 'int', min: 1 },
];

/** The options and the image/folder arguments; UsageError on anything wrong. */
export function parsePredictArgs(argv: readonly string[]): PredictCli & { inputs: string[]; help: boolean } {
  const p = parseFlags(argv, OPTIONS, { words: 'positional' });
  const o: PredictCli = { model: '', json: false, onBadImage: 'fail', threshold: 0.5, batchSize: 64, ...(Object.fromEntries(p.values) as Partial<PredictCli>) };
  if (!p.help) {
    if (!o.model) throw new UsageError('--model FILE is required (see --help)');
    if (p.positional.length === 0) throw new UsageError('give at least one image or folder (see --help)');
  }
  return { ...o, inputs: p.positional, help: p.help };
}

async function main(): Promise<void> {
  const o = parseCommandLine(parsePredictArgs, (x) => x.help, () => HELP);
  if (!o) return;
  await quietDawnWarnings(); // Dawn's two start-up warnings only with ROSKD_VERBOSE=1
  try {
    const r = await predictFiles(o.model, o.inputs, { onBadImage: o.onBadImage, threshold: o.threshold, batchSize: o.batchSize });
    if (o.json) console.log(JSON.stringify({ model: r.model, arch: r.meta.arch, classes: r.meta.classes, predictions: r.predictions, skipped: r.skipped }, null, 2));
    else console.log(formatTable(r));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    process.exit(1);
  }
}

if (process.argv[1]?.endsWith('kd/predict.ts')) void main();
