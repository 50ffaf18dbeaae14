// Extra evaluations of `kd/train.ts --stage eval --attacks NAME[:ARG],...`: what an evaluation gets
// (EvalContext) and gives (a report section), and the registry of the known ones (fgsm, pgd).
import type { Options } from './config.ts';
import type { Dataset } from './data/dataset.ts';
import type { Module } from './model-file.ts';
import type { Progress } from './progress.ts';
import type { RunStore } from './run-store.ts';
import type { ExtraSection } from './report.ts';
import { attackLabel, formatEps, resolveAttack } from './adversarial.ts';
import { evaluateRobustness, parseAttackArg, type RobustnessReport } from './robustness.ts';

/** What an extra evaluation gets in --stage eval. */
export interface EvalContext {
  ds: Dataset;
  opts: Options;
  run: RunStore;
  /** every evaluated model, in eval mode, with its role and file */
  models: { name: string; role: 'teacher' | 'student'; arch: string; model: Module; file: string }[];
  progress: Progress;
}

export interface Evaluator {
  /** shown as the report section title */
  title: string;
  run(ctx: EvalContext): Promise<ExtraSection>;
}

const pct = (v: number): string => (Number.isFinite(v) ? (100 * v).toFixed(1) : '-');
const num = (v: number, d = 3): string => (Number.isFinite(v) ? v.toFixed(d) : '-');

/** One `--attacks KIND:ARG` evaluation: students (and with teachers=1 the teachers) on the test split. */
export function attackEvaluator(kind: 'fgsm' | 'pgd', arg: string): Evaluator {
  const { spec, limit, teachers } = parseAttackArg(kind, arg);
  const r0 = resolveAttack(spec);
  const label = attackLabel(spec);
  return {
    title: `Adversarial robustness: ${label}`,
    async run(ctx: EvalContext): Promise<ExtraSection> {
      const rows: ExtraSection['rows'] = [];
      const json: Record<string, RobustnessReport> = {};
      for (const m of ctx.models) {
        if (m.role === 'teacher' && !teachers) continue;
        const r = await evaluateRobustness(m.model, ctx.ds.test, ctx.ds, { attacks: [spec], batchSize: ctx.opts.evalBatchSize, limit, seed: ctx.opts.seed });
        json[m.name] = r;
        const a = r.attacks[0];
        rows.push({ model: m.name, values: [pct(r.clean.accuracy), pct(a.accuracy), pct(r.clean.macroF1), pct(a.macroF1), r.clean.auc, a.auc, String(r.n)] });
        ctx.progress.log(`${m.name}: ${label}: acc ${pct(r.clean.accuracy)}% -> ${pct(a.accuracy)}%, AUC ${num(r.clean.auc)} -> ${num(a.auc)} (${r.n} images, ${r.secs.toFixed(1)} s)`);
      }
      const how = r0.kind === 'pgd'
        ? `PGD-${r0.norm === 'l2' ? 'L2' : 'Linf'}, ${r0.steps} steps of ${formatEps(r0.stepSize)}, ${r0.randomStart ? 'random start' : 'no random start'}, ${r0.keepBest ? 'strongest iterate kept per image' : 'last iterate'}`
        : 'FGSM (one signed-gradient step)';
      return {
        title: `Adversarial robustness: ${label}`,
        columns: ['clean acc %', `${label} acc %`, 'clean F1 %', `${label} F1 %`, 'clean AUC', `${label} AUC`, 'images'],
        rows,
        notes: [`${how}; epsilon ${formatEps(r0.eps)} in pixel units ([0, 1] scale), images clamped to [0, 1] every step, model in eval mode; metrics on the clean test labels. ${teachers ? 'All models.' : 'Students only (add :teachers=1 for the teachers).'}`],
        json,
      };
    },
  };
}

/** The known evaluations by name; `--attacks NAME:ARG` makes one with ARG. */
export const EVALUATORS: Record<string, (arg: string) => Evaluator> = {
  fgsm: (arg) => attackEvaluator('fgsm', arg),
  pgd: (arg) => attackEvaluator('pgd', arg),
};

/** The evaluators of `--attacks` specs ("fgsm:2/255", "pgd:8/255:steps=20"); RangeError on an unknown name. */
export function resolveEvaluators(specs: readonly string[]): Evaluator[] {
  return specs.map((s) => {
    const [name, ...rest] = s.split(':');
    const make = Object.hasOwn(EVALUATORS, name) ? EVALUATORS[name] : undefined;
    if (!make) throw new RangeError(`--attacks: unknown evaluation ${JSON.stringify(name)} (registered: ${Object.keys(EVALUATORS).join(', ')})`);
    return make(rest.join(':'));
  });
}
