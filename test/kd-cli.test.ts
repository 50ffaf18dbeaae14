// The shared command-line helper (kd/cli.ts) and the parsers built on it: numbers are validated
// where they are parsed, and a bad value is a UsageError naming the option.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { convertValue, parseFlags, UsageError, type OptionSpec } from '../kd/cli.ts';
import { parsePredictArgs } from '../kd/predict.ts';
import { parseAttackCli } from '../kd/attack-run.ts';
import { parseArgs } from '../kd/config.ts';
import { parseStudyArgs } from '../kd/study-config.ts';

function usageError(fn: () => unknown, re: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof UsageError, `expected a UsageError, got ${(e as Error).name}: ${(e as Error).message}`);
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`expected a UsageError matching ${re}`);
}

test('convertValue: numbers must be finite, integers whole, within bounds; the option is named', () => {
  const int: OptionSpec = { key: 'n', flag: 'batch-size', kind: 'int', min: 1 };
  const num: OptionSpec = { key: 'p', flag: 'threshold', kind: 'number', min: 0, max: 1 };
  assert.is(convertValue(int, '32'), 32);
  assert.is(convertValue(num, '0.25'), 0.25);
  usageError(() => convertValue(int, 'xyz'), /^--batch-size: expected a number, got "xyz"$/);
  usageError(() => convertValue(int, ''), /--batch-size: expected a number/);
  usageError(() => convertValue(int, '2.5'), /--batch-size: expected an integer, got 2.5/);
  usageError(() => convertValue(int, '0'), /--batch-size: 0 is below the minimum 1/);
  usageError(() => convertValue(num, 'abc'), /--threshold: expected a number, got "abc"/);
  usageError(() => convertValue(num, 'NaN'), /--threshold: expected a number/);
  usageError(() => convertValue(num, 'Infinity'), /--threshold: expected a number/);
  usageError(() => convertValue(num, '1.5'), /--threshold: 1.5 is above the maximum 1/);
  // a custom parser's RangeError is named too
  usageError(() => convertValue({ flag: 'eps', kind: 'list', parse: () => { throw new RangeError('bad epsilon'); } }, 'x'), /^--eps: bad epsilon$/);
});

test('parseFlags: --flag=value, --no-flag, positionals, unknown options, missing values', () => {
  const specs: OptionSpec<'n' | 'json'>[] = [{ key: 'n', flag: 'n', kind: 'int' }, { key: 'json', flag: 'json', kind: 'bool' }];
  const p = parseFlags(['a.png', '--n=3', '--json', 'b/', '--no-json'], specs, { words: 'positional' });
  assert.equal([...p.values], [['n', 3], ['json', false]]);
  assert.equal(p.positional, ['a.png', 'b/']);
  usageError(() => parseFlags(['--m', '1'], specs), /unknown option --m/);
  usageError(() => parseFlags(['--n'], specs), /--n needs a value/);
  usageError(() => parseFlags(['x'], specs), /unexpected argument "x"/);
  const q = parseFlags(['--other', '5', '--n', '2', '--flag'], specs, { passUnknown: true });
  assert.equal(q.rest, ['--other', '5', '--flag']);
  assert.is(q.values.get('n'), 2);
});

test('predict: --threshold and --batch-size are validated (they were taken as NaN / 1)', () => {
  const ok = parsePredictArgs(['--model', 'm.safetensors', 'x.png', '--threshold', '0.3', '--batch-size', '16']);
  assert.equal([ok.model, ok.threshold, ok.batchSize, ok.inputs], ['m.safetensors', 0.3, 16, ['x.png']]);
  assert.equal([parsePredictArgs(['--model', 'm', 'x']).threshold, parsePredictArgs(['--model', 'm', 'x']).batchSize], [0.5, 64]);
  usageError(() => parsePredictArgs(['--model', 'm', 'x', '--threshold', 'abc']), /--threshold: expected a number, got "abc"/);
  usageError(() => parsePredictArgs(['--model', 'm', 'x', '--threshold', '2']), /--threshold: 2 is above the maximum 1/);
  usageError(() => parsePredictArgs(['--model', 'm', 'x', '--batch-size', 'xyz']), /--batch-size: expected a number, got "xyz"/);
  usageError(() => parsePredictArgs(['--model', 'm', 'x', '--batch-size', '0']), /--batch-size: 0 is below the minimum 1/);
  usageError(() => parsePredictArgs(['--model', 'm', 'x', '--on-bad-image', 'maybe']), /--on-bad-image: unknown value "maybe"/);
  usageError(() => parsePredictArgs(['x.png']), /--model FILE is required/);
  usageError(() => parsePredictArgs(['--model', 'm']), /give at least one image/);
  assert.ok(parsePredictArgs(['--help']).help);
});

test('attack, train and study parsers reject bad numbers naming the option', () => {
  const a = parseAttackCli(['--model', 'm', '--steps', '3', '--eps', '1/255,2/255', '--no-random-start', '--last-iterate']);
  assert.equal([a.steps, a.eps, a.randomStart, a.keepBest], [3, [1 / 255, 2 / 255], false, false]);
  usageError(() => parseAttackCli(['--model', 'm', '--steps', 'ten']), /--steps: expected a number, got "ten"/);
  usageError(() => parseAttackCli(['--model', 'm', '--limit', '-1']), /--limit: -1 is below the minimum 0/);
  usageError(() => parseAttackCli(['--model', 'm', '--eps', 'big']), /--eps: epsilon "big"/);
  usageError(() => parseAttackCli(['--model', 'm', '--attack', 'cw']), /--attack: fgsm or pgd, got "cw"/);
  usageError(() => parseArgs(['--batch-size', 'xyz']), /--batch-size: expected a number, got "xyz"/);
  usageError(() => parseArgs(['--noise-rate', '2']), /--noise-rate: 2 is above the maximum 1/);
  usageError(() => parseStudyArgs(['--attack-limit', 'x']), /--attack-limit: NaN is not a non-negative integer/);
  usageError(() => parseStudyArgs(['--teachers', '0']), /--teachers: 0 is not a teacher count/);
  usageError(() => parseStudyArgs(['--batch-size', 'q']), /--batch-size: expected a number, got "q"/);
});

test.run();
