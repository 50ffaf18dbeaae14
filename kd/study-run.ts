// Running the noise-robustness study (what `npx tsx kd/study.ts` does): runs methods {ce, kd, avgkd, roskd} x noise rates x seeds (x ablation variants) with the
// RoS-KD pipeline (kd/pipeline.ts runPipeline), evaluates every student on the clean test labels,
// clean and under FGSM / PGD at several epsilons (kd/robustness.ts), and writes study.json,
// study.md (mean ± std over seeds) and PNG plots (kd/study-report.ts).
//
// Cost and reuse: teachers depend only on (noise rate, seed, K, subset fraction) and the fixed
// teacher options, so they are trained once per such key in teachers/<key>/ and hard-linked
// into every cell that needs them (student-only ablations such as EMA or stochastic vs
// averaging reuse them too); the students of all methods of a cell share them.
// Resumable: a cell is done when cells/<id>/cell.json exists (written atomically after its
// last evaluation); a rerun of the same command skips done cells, continues an interrupted
// cell from the pipeline's checkpoints, and rewrites the study outputs.
import { copyFileSync, existsSync, linkSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as rk from '../engine/index.ts';
import { loadSafetensors } from '../engine/node/safetensors-file.ts';
import { UsageError, type Options } from './config.ts';
import { runPipeline } from './pipeline.ts';
import { loadData } from './data-source.ts';
import { buildModel, copyCheckedWeights, readModelMeta } from './model-file.ts';
import { evaluateRobustness } from './robustness.ts';
import { attackLabel } from './adversarial.ts';
import { RunDir } from './run-dir.ts';
import { makeDirs, readJsonFile, writeFileAtomic, writeFileOnce } from './data/node-files.ts';
import { identity, sameIdentity, type StudyConfig } from './study-config.ts';
import { teacherHealth } from './teacher-health.ts';
import { attackSpecs, baseCellOf, cellsOf, variantsOf, type Cell, type CellResult } from './study-grid.ts';

const pct = (v: number): string => (Number.isFinite(v) ? (100 * v).toFixed(1) : '-');
const num = (v: number, d = 3): string => (Number.isFinite(v) ? v.toFixed(d) : '-');
import { writeStudyOutputs, type SummaryRow } from './study-report.ts';

export interface StudyHooks {
  print?: (line: string) => void;
  /** passed to the pipeline (tests: fault injection) */
  pipeline?: Parameters<typeof runPipeline>[1];
}

export interface StudyResult {
  dir: string;
  cells: CellResult[];
  ran: string[];
  skipped: string[];
  summary: SummaryRow[];
}

/** Hard link (or copy) src to dst unless dst exists. */
function linkInto(src: string, dst: string): void {
  if (!existsSync(src) || existsSync(dst)) return;
  try {
    linkSync(src, dst);
  } catch {
    copyFileSync(src, dst);
  }
}

function pipelineOptions(cfg: StudyConfig, cell: Cell, out: string, extra: Partial<Options>): Partial<Options> {
  const v = cell.variant;
  return {
    ...cfg.train, out, noiseRate: cell.noiseRate, seed: cell.seed, teachers: v.teachers, subsetFraction: v.subsetFraction,
    teachersPerBatch: v.teachersPerBatch, ema: v.ema, teacherPool: v.teacherPool ?? 'all', valLabels: v.valLabels ?? 'clean', methods: cfg.methods, resume: true, attacks: [],
    progress: cfg.quiet ? 'none' : cfg.train.progress ?? 'auto', ...extra,
  };
}

/** Runs (or resumes) the study; writes study.json / study.md / plots after every cell. */
export async function runStudy(cfg: StudyConfig, hooks: StudyHooks = {}): Promise<StudyResult> {
  const print = hooks.print ?? ((l: string) => console.log(l));
  const dir = resolve(cfg.out);
  makeDirs(join(dir, 'cells'), '--out');
  makeDirs(join(dir, 'teachers'), '--out');
  const idPath = join(dir, 'study-config.json');
  if (existsSync(idPath)) checkIdentity(dir, cfg);
  else writeFileOnce(idPath, JSON.stringify({ identity: identity(cfg), created: new Date().toISOString() }, null, 2) + '\n'); // array tasks may start together

  const cells = cellsOf(cfg);
  for (const c of cfg.cells ?? []) if (!cells.some((x) => x.id === c)) throw new UsageError(`--cells: ${c} is not a cell of this grid (see --dry-run)`);
  const specs = attackSpecs(cfg);
  const needTeachers = cfg.methods.some((m) => m !== 'ce');
  const results: CellResult[] = [];
  const ran: string[] = [];
  const skipped: string[] = [];
  const t0 = performance.now();
  print(`study: ${dir}`);
  print(`grid: ${cfg.methods.join(',')} x noise ${cfg.noiseRates.join(',')} x seeds ${cfg.seeds.join(',')}${variantsOf(cfg).length > 1 ? ` x ${variantsOf(cfg).length} variants` : ''} = ${cells.length} cells; attacks ${specs.map(attackLabel).join(', ') || 'none'}`);
  await rk.init();
  for (const [ci, cell] of cells.entries()) {
    const cellDir = join(dir, 'cells', cell.id);
    const resultFile = join(cellDir, 'cell.json');
    const tag = `[${ci + 1}/${cells.length} ${cell.id}]`;
    if (cfg.cells && !cfg.cells.includes(cell.id) && !existsSync(resultFile)) continue; // --cells: another task's cell
    if (existsSync(resultFile)) {
      results.push(readDoneCell(dir, cell));
      skipped.push(cell.id);
      print(`${tag} done before; skipped`);
      continue;
    }
    const tc = performance.now();
    const prefix = (l: string): void => {
      if (!cfg.quiet) print(`${tag} ${l}`);
    };
    // ---- teachers, once per teacher key
    let teacherSecs = 0;
    const tdir = join(dir, 'teachers', cell.teacherKey);
    if (needTeachers) {
      const tRun = new RunDir(tdir);
      const done = Array.from({ length: cell.variant.teachers }, (_, i) => existsSync(tRun.teacherFile(i)) && existsSync(tRun.doneFile(`teacher-${i}`)));
      if (!done.every(Boolean)) {
        print(`${tag} teachers: training ${cell.variant.teachers} in ${tdir}`);
        const tt = performance.now();
        await runPipeline(pipelineOptions(cfg, cell, tdir, { stage: 'teachers' }), { ...hooks.pipeline, print: prefix });
        teacherSecs = (performance.now() - tt) / 1000;
      } else print(`${tag} teachers: reusing ${tdir}`);
    }
    // ---- students, in the cell's own run directory sharing the teachers; a roskd-only
    // ablation reuses the other methods' results of its base cell (same students exactly)
    const base = baseCellOf(cfg, cell, cells);
    const baseResult = base ? results.find((r) => r.id === base.id) : undefined;
    const methodsToRun = baseResult ? cfg.methods.filter((m) => m === 'roskd' || !baseResult.methods[m]) : cfg.methods;
    const runDir = join(cellDir, 'run');
    const run = new RunDir(runDir);
    if (needTeachers)
      for (let i = 0; i < cell.variant.teachers; i++) {
        linkInto(join(tdir, `teacher-${i}.safetensors`), run.teacherFile(i));
        linkInto(join(tdir, 'checkpoints', `teacher-${i}.done.json`), run.doneFile(`teacher-${i}`));
        linkInto(join(tdir, 'checkpoints', `teacher-${i}.train-logits.f32`), join(run.checkpointDir, `teacher-${i}.train-logits.f32`));
      }
    print(`${tag} students: ${methodsToRun.join(', ')}${cell.variant.label ? ` (${cell.variant.label})` : ''}${baseResult && methodsToRun.length < cfg.methods.length ? `; ${cfg.methods.filter((m) => !methodsToRun.includes(m)).join(', ')} from ${baseResult.id}` : ''}`);
    const ts = performance.now();
    const res = await runPipeline(pipelineOptions(cfg, cell, runDir, { stage: 'all', methods: methodsToRun }), { ...hooks.pipeline, print: prefix });
    const studentSecs = (performance.now() - ts) / 1000;
    // the teacher logits computed by this cell serve later variants sharing the teachers
    if (needTeachers) for (let i = 0; i < cell.variant.teachers; i++) linkInto(join(run.checkpointDir, `teacher-${i}.train-logits.f32`), join(tdir, 'checkpoints', `teacher-${i}.train-logits.f32`));

    // ---- clean and adversarial evaluation of every student
    const ta = performance.now();
    const { ds } = await loadData(res.opts);
    const methods: CellResult['methods'] = {};
    for (const method of cfg.methods) {
      if (!methodsToRun.includes(method)) {
        methods[method] = { ...baseResult!.methods[method]!, sharedFrom: baseResult!.id };
        continue;
      }
      const file = run.studentFile(method);
      const st = await loadSafetensors(file);
      const meta = readModelMeta(st.metadata, file);
      const model = buildModel(meta, 0);
      try {
        copyCheckedWeights(model, st, file);
        model.eval();
        // the model's own normalisation, as trained
        const space = { ...ds, mean: meta.mean, std: meta.std };
        const full = await evaluateRobustness(model, ds.test, space, { attacks: [], batchSize: cfg.attackBatchSize });
        const adv = specs.length ? await evaluateRobustness(model, ds.test, space, { attacks: specs, batchSize: cfg.attackBatchSize, limit: cfg.attackLimit, seed: cell.seed }) : null;
        const row = res.report?.rows.find((r) => r.name === `student-${method}`);
        methods[method] = {
          clean: { ...full.clean, ece: row?.test.ece, brier: row?.test.brier },
          cleanSubset: adv ? adv.clean : null,
          attacks: adv ? adv.attacks.map((a) => ({ label: a.label, kind: a.attack.kind, name: a.name, eps: a.attack.eps, accuracy: a.accuracy, macroF1: a.macroF1, auc: a.auc, loss: a.loss, flipped: a.flipped })) : [],
          attackImages: adv?.n ?? 0,
          pipelineTest: row ? { acc: row.test.acc, f1: row.test.f1, auc: row.test.auc } : null,
          bestEpoch: row?.bestEpoch ?? 0,
        };
        const a = methods[method]!;
        prefix(`${method}: clean acc ${pct(a.clean.accuracy)} F1 ${pct(a.clean.macroF1)} AUC ${num(a.clean.auc)}${a.attacks.length ? `; ${a.attacks.map((x) => `${x.label} ${pct(x.accuracy)}`).join(', ')}` : ''}`);
      } finally {
        model.dispose();
      }
    }
    const attackSecs = (performance.now() - ta) / 1000;
    const result: CellResult = {
      id: cell.id, variant: cell.variant, noiseRate: cell.noiseRate, seed: cell.seed, teacherKey: cell.teacherKey,
      realisedNoise: realisedOf(res.report?.noise),
      methods,
      teachers: (res.report?.rows ?? []).filter((r) => r.role === 'teacher').map((r) => {
        const h = r.val ? teacherHealth(r.val, res.report!.task === 'multilabel') : null;
        return { name: r.name, arch: r.arch, test: { acc: r.test.acc, f1: r.test.f1, auc: r.test.auc }, collapsed: h?.collapsed, why: h?.reasons };
      }),
      secs: { teachers: teacherSecs, students: studentSecs, attacks: attackSecs, total: (performance.now() - tc) / 1000 },
      finished: new Date().toISOString(),
    };
    writeFileAtomic(resultFile, JSON.stringify(result, null, 2) + '\n');
    results.push(result);
    ran.push(cell.id);
    print(`${tag} done in ${result.secs.total.toFixed(0)} s (teachers ${teacherSecs.toFixed(0)} s, students ${studentSecs.toFixed(0)} s, evaluation ${attackSecs.toFixed(0)} s); elapsed ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    if (!cfg.cells) writeStudyOutputs(dir, cfg, results);
  }
  if (cfg.cells) return { dir, cells: results, ran, skipped, summary: [] }; // --cells: a later run (the outputs job) writes them
  const summary = writeStudyOutputs(dir, cfg, results);
  return { dir, cells: results, ran, skipped, summary };
}

/** Refuses a study directory made with other data/model/attack settings (grid axes may differ). */
function checkIdentity(dir: string, cfg: StudyConfig): void {
  const idPath = join(dir, 'study-config.json');
  const id = identity(cfg);
  const prev = readJsonFile<{ identity: unknown }>(idPath);
  if (!sameIdentity(prev.identity, id))
    throw new UsageError(`${dir} holds a study made with other data/model/attack settings (${idPath}); use another --out, or the same options (grid axes may be extended)\n  was: ${JSON.stringify(prev.identity)}\n  now: ${JSON.stringify(id)}`);
}

/** A finished cell's result, labelled by the current grid (the variant's label depends on which axes have several values). */
function readDoneCell(dir: string, cell: Cell): CellResult {
  const cellDir = join(dir, 'cells', cell.id);
  const done = readJsonFile<CellResult>(join(cellDir, 'cell.json'));
  const noiseFile = join(cellDir, 'run', 'noise.json');
  if (done.realisedNoise === null && existsSync(noiseFile)) done.realisedNoise = realisedOf(readJsonFile(noiseFile));
  return { ...done, variant: cell.variant };
}

/**
 * --report-only: study.json, study.md and the plots from the cells of this grid finished so far;
 * trains nothing and needs no adapter, so it is safe beside a running study (every output is
 * written atomically) and a partial study can be published.
 */
export function renderStudy(cfg: StudyConfig, hooks: Pick<StudyHooks, 'print'> = {}): StudyResult {
  const print = hooks.print ?? ((l: string) => console.log(l));
  const dir = resolve(cfg.out);
  if (!existsSync(join(dir, 'study-config.json'))) throw new UsageError(`--report-only: ${dir} holds no study (no study-config.json): give the --out of a started study`);
  checkIdentity(dir, cfg);
  const cells = cellsOf(cfg);
  const done = cells.filter((c) => existsSync(join(dir, 'cells', c.id, 'cell.json')));
  if (!done.length) throw new UsageError(`--report-only: none of the ${cells.length} cells of ${dir} has finished yet (cells/<id>/cell.json)`);
  const results = done.map((c) => readDoneCell(dir, c));
  const summary = writeStudyOutputs(dir, cfg, results);
  const rest = cells.filter((c) => !done.includes(c)).map((c) => c.id);
  print(`${done.length} of ${cells.length} cells done${rest.length ? `; next: ${rest.slice(0, 3).join(', ')}${rest.length > 3 ? `, ... (${rest.length} not done)` : ''}` : ''}`);
  return { dir, cells: results, ran: [], skipped: done.map((c) => c.id), summary };
}

/** The realised label-noise rate of a noise.json / report noise record (either field name). */
function realisedOf(noise: unknown): number | null {
  const n = noise as { realisedRate?: number; actualRate?: number } | undefined;
  const v = n?.realisedRate ?? n?.actualRate;
  return typeof v === 'number' ? v : null;
}
