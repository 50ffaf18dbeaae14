// The Classify view: a model file (picker, drop, or the demo student), images (picker, drop, or
// the demo images), the prediction table with Grad-CAM, and the CSV export.
import { $, el, say, download, fileBytes, rgbaToDataUrl } from './dom.ts';
import { classifyBytes, loadModelBytes, predictionsCsv, type LoadedModel, type PagePrediction } from './classify-core.ts';
import { pageState } from './state.ts';

let current: LoadedModel | null = null;
let rows: PagePrediction[] = [];
const msg = () => $('classify-msg');

export async function setModel(name: string, bytes: Uint8Array): Promise<boolean> {
  try {
    const m = loadModelBytes(name, bytes);
    current?.model.dispose();
    current = m;
    const { meta } = m;
    say($('model-info'), `${name}: ${meta.arch} (width ${meta.options.width}, ${(m.params / 1e3).toFixed(1)}k parameters), ${meta.role}${meta.method ? ` ${meta.method}` : ''}, ${meta.channels}x${meta.height}x${meta.width} input, classes ${meta.classes.join(', ')} (trained on ${meta.dataset})`);
    say(msg(), `model loaded: ${name}`);
    pageState.model = { name, arch: meta.arch, classes: meta.classes };
    return true;
  } catch (e) {
    say(msg(), `cannot use ${name} as a model: ${(e as Error).message}`, true);
    return false;
  }
}

export async function classifyFiles(files: { name: string; bytes: Uint8Array }[]): Promise<void> {
  if (!current) {
    say(msg(), 'load a model first (a .safetensors file, or the demo student)', true);
    return;
  }
  if (pageState.run.state === 'running') {
    say(msg(), 'a training run is using the GPU: classify when it has finished (or stop it first)', true);
    return;
  }
  say(msg(), `classifying ${files.length} image(s)...`);
  try {
    const t0 = performance.now();
    const r = await classifyBytes(current, files, { cam: ($('show-cam') as HTMLInputElement).checked });
    rows = r.predictions;
    render(current, rows);
    pageState.predictions = rows.map(({ cam: _c, ...p }) => p);
    pageState.skipped = r.skipped;
    ($('export-csv') as HTMLButtonElement).disabled = rows.length === 0;
    const skipped = r.skipped.map((s) => `${s.file}: ${s.reason}`).join('; ');
    const secs = ((performance.now() - t0) / 1000).toFixed(2);
    const done = rows.length ? `${rows.length} image(s) classified in ${secs} s` : 'no image classified';
    say(msg(), `${done}${skipped ? `; could not read ${r.skipped.length} file(s): ${skipped}` : ''}`, r.skipped.length > 0);
  } catch (e) {
    say(msg(), `classification failed: ${(e as Error).message}`, true);
  }
}

function render(m: LoadedModel, preds: PagePrediction[]): void {
  const cls = m.meta.classes;
  const table = $('predictions') as HTMLTableElement;
  table.tHead!.replaceChildren(el('tr', {}, ...['file', 'Grad-CAM', 'prediction', ...cls.map((c) => `p(${c})`)].map((h) => el('th', { scope: 'col' }, h))));
  table.tBodies[0].replaceChildren(
    ...preds.map((p) => {
      const cam = p.cam ? el('img', { src: rgbaToDataUrl(p.cam), alt: `Grad-CAM of ${Array.isArray(p.prediction) ? p.prediction.join('+') : p.prediction} on ${p.file}` }) : (p.camError ?? '-');
      return el(
        'tr', {},
        el('td', { className: 'file' }, p.file),
        el('td', {}, cam),
        el('td', { className: 'pred' }, el('strong', {}, Array.isArray(p.prediction) ? p.prediction.join('+') || '(none)' : p.prediction), ` ${(100 * p.confidence).toFixed(1)}%`),
        ...cls.map((c) => el('td', {}, el('span', { className: 'bar', style: `width:${(p.probabilities[c] * 40).toFixed(1)}px` } as never), p.probabilities[c].toFixed(4))),
      );
    }),
  );
}

async function demoFetch(path: string): Promise<Uint8Array> {
  const r = await fetch(path);
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function handleFiles(list: FileList | File[]): Promise<void> {
  const files = [...list];
  const models = files.filter((f) => /\.safetensors$/i.test(f.name));
  for (const f of models) await setModel(f.name, await fileBytes(f));
  const images = files.filter((f) => !models.includes(f));
  if (images.length) await classifyFiles(await Promise.all(images.map(async (f) => ({ name: f.name, bytes: await fileBytes(f) }))));
}

export function initClassify(): void {
  $('model-file').addEventListener('change', async (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) await setModel(f.name, await fileBytes(f));
  });
  $('image-files').addEventListener('change', async (e) => {
    const fl = (e.target as HTMLInputElement).files;
    if (fl?.length) await handleFiles(fl);
  });
  $('demo-model').addEventListener('click', async () => {
    try {
      await setModel('demo-student.safetensors', await demoFetch('demo/demo-student.safetensors'));
    } catch (e) {
      say(msg(), `cannot fetch the demo student: ${(e as Error).message}`, true);
    }
  });
  $('demo-images').addEventListener('click', async () => {
    try {
      const names = (await (await fetch('demo/images.json')).json()) as string[];
      if (!current) await setModel('demo-student.safetensors', await demoFetch('demo/demo-student.safetensors'));
      await classifyFiles(await Promise.all(names.map(async (n) => ({ name: n, bytes: await demoFetch(`demo/images/${n}`) }))));
    } catch (e) {
      say(msg(), `cannot fetch the demo images: ${(e as Error).message}`, true);
    }
  });
  $('export-csv').addEventListener('click', () => {
    if (current) download('predictions.csv', predictionsCsv(current.meta.classes, rows), 'text/csv');
  });
  const zone = $('drop-zone');
  for (const t of [zone, document.body]) {
    t.addEventListener('dragover', (e) => {
      e.preventDefault();
      zone.classList.add('over');
    });
    t.addEventListener('dragleave', () => zone.classList.remove('over'));
    t.addEventListener('drop', async (e) => {
      e.preventDefault();
      zone.classList.remove('over');
      const fl = (e as DragEvent).dataTransfer?.files;
      if (fl?.length) await handleFiles(fl);
    });
  }
  zone.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') $('image-files').click();
  });
}
