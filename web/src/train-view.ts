// The Train view: data (synthetic, a folder, an .npz), noise, teachers, students and methods,
// a run of kd's training library in the page with live progress and curves, the comparison
// table, downloads, and Stop (the best-so-far weights stay downloadable).
import { resolveOptions, UsageError, type Method, type Options } from '../../kd/config.ts';
import { clearInterrupt, requestInterrupt, InterruptedError } from '../../kd/interrupt.ts';
import { subsetSplit } from '../../kd/data/dataset.ts';
import { $, el, say, download, fileBytes } from './dom.ts';
import { LiveChart } from './chart.ts';
import { MemoryStore } from './memory-store.ts';
import { addNoise, runInPage } from './run-in-page.ts';
import { datasetFromFolder, datasetFromNpz, syntheticDataset, type LoadResult } from './page-data.ts';
import { pageState } from './state.ts';

const num = (id: string): number => Number(($(id) as HTMLInputElement).value);
const str = (id: string): string => ($(id) as HTMLInputElement).value.trim();
const fmtSecs = (s: number): string => (!Number.isFinite(s) ? '?' : s >= 60 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`);

let running = false;
let store: MemoryStore | null = null;
let lossChart: LiveChart;
/** KD students' loss ((1 - alpha) CE + alpha T^2 KL) is another objective: its own chart, never on the CE axis */
let kdChart: LiveChart;
const isKdModel = (model: string): boolean => /^student-(kd|avgkd|roskd)\b/.test(model);
let valChart: LiveChart;

/** The form as kd/train.ts options (validated by kd's own option checks). */
function formOptions(): Options {
  const methods = [...document.querySelectorAll<HTMLInputElement>('input[name=method]:checked')].map((i) => i.value as Method);
  if (methods.length === 0) throw new UsageError('choose at least one method (ce, kd, avgkd, roskd)');
  const given: Partial<Options> = {
    preset: 'demo', data: str('data-kind'), size: num('size'), channels: num('channels'), syntheticN: num('synthetic-n'), trainLimit: num('train-limit'),
    noiseType: str('noise-type') as Options['noiseType'], noiseRate: num('noise-rate'),
    teachers: num('teachers'), teacherArchs: str('teacher-archs').split(',').map((s) => s.trim()).filter(Boolean), teacherWidth: num('teacher-width'), teacherEpochs: num('teacher-epochs'),
    student: str('student'), studentWidth: num('student-width'), studentEpochs: num('student-epochs'), methods,
    batchSize: num('batch-size'), evalBatchSize: 64, seed: num('seed'), progress: 'none',
  };
  for (const [k, v] of Object.entries(given)) if (typeof v === 'number' && !Number.isFinite(v)) throw new UsageError(`${k}: not a number`);
  return resolveOptions(given).opts;
}

async function loadData(o: Options, log: (s: string) => void): Promise<LoadResult> {
  const kind = str('data-kind');
  const ch = (o.channels === 3 ? 3 : 1) as 1 | 3;
  let r: LoadResult;
  if (kind === 'folder') {
    const fl = ($('data-folder') as HTMLInputElement).files;
    if (!fl || fl.length === 0) throw new Error('choose a folder first (Folder: one sub-folder per class), or the folder you chose is empty');
    r = await datasetFromFolder([...fl].map((f) => ({ path: f.webkitRelativePath || f.name, bytes: () => fileBytes(f) })), {
      size: o.size, channels: ch, seed: o.seed,
      onProgress: (d, n) => d % 50 === 0 || d === n ? say($('progress-line'), `decoding images ${d}/${n}`) : undefined,
    });
  } else if (kind === 'npz') {
    const f = ($('data-npz') as HTMLInputElement).files?.[0];
    if (!f) throw new Error('choose a MedMNIST .npz file first');
    r = await datasetFromNpz(f.name, await fileBytes(f), { size: o.size });
  } else r = syntheticDataset({ n: o.syntheticN, size: o.size, channels: ch, seed: o.seed });
  if (o.trainLimit > 0 && o.trainLimit < r.ds.train.n) r.ds = { ...r.ds, train: subsetSplit(r.ds.train, Int32Array.from({ length: o.trainLimit }, (_, i) => i)) };
  if (r.skipped.length) log(`skipped ${r.skipped.length} unreadable image(s): ${r.skipped.slice(0, 5).map((s) => s.reason).join('; ')}`);
  return r;
}

function showDownloads(s: MemoryStore, note?: string): void {
  const box = $('downloads');
  box.replaceChildren();
  if (note) box.append(el('p', { className: 'info' }, note));
  const files = [...s.files.keys()].filter((f) => /\.(safetensors|md|json|png)$/.test(f) && !/\.ckpt\.safetensors$|\.done\.json$/.test(f));
  pageState.run.files = files.map((f) => f.slice(s.root.length + 1));
  for (const f of files) {
    const short = f.slice(s.root.length + 1);
    const label = short.replace(/^checkpoints\/(.*)\.best\.safetensors$/, '$1 (best so far).safetensors');
    box.append(el('button', { type: 'button', onclick: () => download(label.replace(/ \(best so far\)/, '-best'), s.files.get(f)!) }, `Download ${label}`));
  }
}

async function start(): Promise<void> {
  if (running) return;
  const msg = $('train-msg');
  const logBox = $('train-log');
  const log = (line: string) => {
    logBox.textContent += line + '\n';
  };
  let o: Options;
  try {
    o = formOptions();
  } catch (e) {
    say(msg, `check the options: ${(e as Error).message}`, true);
    return;
  }
  running = true;
  clearInterrupt();
  ($('train-start') as HTMLButtonElement).disabled = true;
  ($('train-stop') as HTMLButtonElement).disabled = false;
  logBox.textContent = '';
  $('report-table').textContent = '';
  $('downloads').replaceChildren();
  lossChart.clear();
  kdChart.clear();
  valChart.clear();
  pageState.run = { state: 'running', message: '', imagesPerSec: 0, secs: 0, images: 0, files: [] };
  const bar = $('run-bar') as HTMLProgressElement;
  bar.value = 0;
  const stepOf = new Map<string, number>();
  store = new MemoryStore('roskd-run', (m) => valChart.add(m.model, m.epoch, m.val.acc));
  const s = store;
  try {
    say(msg, 'loading data...');
    const r = await loadData(o, log);
    const ds = r.ds;
    log(`data: ${ds.name} (${ds.task}, ${ds.classes.length} classes: ${ds.classes.join(', ')}), ${ds.channels}x${ds.height}x${ds.width}, train/val/test ${ds.train.n}/${ds.val.n}/${ds.test.n}`);
    const data = addNoise(o, ds, r.load);
    say(msg, `training on ${ds.name}: ${o.methods.some((m) => m !== 'ce') ? `${o.teachers} teacher(s), then ` : ''}student(s) ${o.methods.join(', ')}`);
    let lastDraw = 0;
    const res = await runInPage(o, data, s, {
      log,
      progress: (p) => {
        const k = (stepOf.get(p.model) ?? 0) + 1;
        stepOf.set(p.model, k);
        (isKdModel(p.model) ? kdChart : lossChart).add(p.model, k, p.loss);
        const now = performance.now();
        if (now - lastDraw < 100 && p.step !== p.steps) return;
        lastDraw = now;
        bar.value = p.done / p.total;
        say($('progress-line'), `${p.model} epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.steps}  loss ${p.loss.toFixed(4)}  ${p.ips.toFixed(0)} images/s  run ${p.done}/${p.total} steps, ETA ${fmtSecs(p.runEta)}`);
      },
    });
    bar.value = 1;
    $('report-table').textContent = res.report?.tableText ?? '';
    const ips = res.images / Math.max(res.secs, 1e-9);
    pageState.run = { ...pageState.run, state: 'done', message: 'done', imagesPerSec: ips, secs: res.secs, images: res.images };
    say(msg, `done in ${res.secs.toFixed(1)} s (${res.images} training images, ${ips.toFixed(0)} images/s overall including validation)`);
    showDownloads(s);
  } catch (e) {
    const stopped = e instanceof InterruptedError;
    const text = stopped ? `stopped: ${(e as Error).message.replace(/ \(continue with --resume\)|; continue with --resume/, '')}` : `training failed: ${(e as Error).message}`;
    pageState.run = { ...pageState.run, state: stopped ? 'stopped' : 'failed', message: text };
    say(msg, text, !stopped);
    showDownloads(s, stopped ? 'Finished models and the best-so-far weights of the model that was training (its best validated epoch) are below.' : undefined);
  } finally {
    running = false;
    clearInterrupt();
    ($('train-start') as HTMLButtonElement).disabled = false;
    ($('train-stop') as HTMLButtonElement).disabled = true;
  }
}

export function initTrain(): void {
  lossChart = new LiveChart($('chart-loss') as HTMLCanvasElement, 'cross-entropy');
  kdChart = new LiveChart($('chart-kd') as HTMLCanvasElement, 'distillation loss');
  valChart = new LiveChart($('chart-val') as HTMLCanvasElement, 'validation accuracy');
  $('train-start').addEventListener('click', () => void start());
  const kind = $('data-kind') as HTMLSelectElement;
  const showSource = () => {
    for (const d of document.querySelectorAll<HTMLElement>('[data-source]')) d.hidden = d.dataset.source !== kind.value;
  };
  kind.addEventListener('change', showSource);
  showSource();
  $('train-stop').addEventListener('click', () => {
    requestInterrupt();
    say($('train-msg'), 'stopping after the current step...');
  });
}
