// Makes the web page's demo (committed under web/demo/, so `npm run web` needs no training):
// a RoS-KD student trained by kd/train.ts's pipeline on the synthetic chest phantoms, and a few
// test images of each class (PNG, plus JPEG copies) the page and its test classify.
//   npx tsx scripts/make-web-demo.ts        (about a minute on a 2-core CPU adapter)
import { copyFileSync, mkdirSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runPipeline } from '../kd/pipeline.ts';
import { makeSynthetic } from '../kd/data/synthetic.ts';
import { encodePng, encodeJpeg } from '../kd/data/image.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, 'web/demo');
const tmp = join('/tmp', `roskd-web-demo-${process.pid}`);
const opts = { data: 'synthetic', size: 28, syntheticN: 1200, syntheticDifficulty: 0.5, noiseRate: 0.2, teachers: 2, teacherArchs: ['resnet18'], teacherWidth: 0.125, teacherEpochs: 6, student: 'resnet18', studentWidth: 0.0625, studentEpochs: 6, methods: ['roskd' as const], teachersPerBatch: 1, batchSize: 32, seed: 7, out: tmp, progress: 'plain' as const };
const r = await runPipeline(opts);
mkdirSync(join(out, 'images'), { recursive: true });
copyFileSync(r.run.studentFile('roskd'), join(out, 'demo-student.safetensors'));
rmSync(tmp, { recursive: true, force: true });

// Images the model never saw: a fresh synthetic draw (other seed), two per class, 64 px (the page
// resizes them to the model's 28 px exactly as kd/predict.ts does).
const ds = makeSynthetic({ train: 8, val: 8, test: 40, size: 64, seed: 12345, channels: 1 });
const px = 64 * 64;
const perClass = new Map<number, number>();
for (let i = 0; i < ds.test.n; i++) {
  const c = ds.test.labels[i] as number;
  const k = perClass.get(c) ?? 0;
  if (k >= 2) continue;
  perClass.set(c, k + 1);
  const im = ds.test.images.subarray(i * px, (i + 1) * px);
  const name = `${ds.classes[c]}-${k + 1}`;
  writeFileSync(join(out, 'images', `${name}.png`), encodePng(im, 64, 64, 1));
  if (k === 0) writeFileSync(join(out, 'images', `${name}.jpg`), encodeJpeg(im, 64, 64, 1, 92));
}
console.log(`demo: ${join(out, 'demo-student.safetensors')} (${statSync(join(out, 'demo-student.safetensors')).size} bytes), test acc ${r.report?.rows.find((x) => x.name === 'student-roskd')?.test.acc}`);
