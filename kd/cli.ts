// The command-line helper of kd/train.ts, predict.ts, attack.ts and study.ts: each declares its
// options as a table (flag, kind, bounds, choices) and parseFlags turns argv into checked values.
// Every value is validated where it is parsed, and a bad one is a UsageError naming the option
// (`--batch-size: expected an integer, got "xyz"`), never a silent NaN or a default.

/** A command-line mistake: the commands print it and exit with code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * string, number (finite), int, bool (bare flag, or =true/false/yes/no/on/off/1/0; --no-FLAG is
 * false), list (comma-separated strings, 'none' dropped).
 */
export type OptionKind = 'string' | 'number' | 'int' | 'bool' | 'list';

export interface OptionSpec<K extends string = string> {
  /** where the value goes in the result */
  key: K;
  /** the option without its leading dashes */
  flag: string;
  kind: OptionKind;
  /** allowed values (string and list kinds) */
  choices?: readonly string[];
  /** inclusive bounds (number and int kinds) */
  min?: number;
  max?: number;
  /** a custom conversion of the raw text, replacing kind's; a RangeError becomes a UsageError naming the option */
  parse?: (raw: string) => unknown;
  /** other spellings of the flag, e.g. ['seed'] for seeds */
  aliases?: readonly string[];
}

/** Converts one raw value as spec says; errors name the option. */
export function convertValue(spec: Pick<OptionSpec, 'flag' | 'kind' | 'choices' | 'min' | 'max' | 'parse'>, raw: string, name = `--${spec.flag}`): unknown {
  if (spec.parse) {
    try {
      return spec.parse(raw);
    } catch (e) {
      if (e instanceof RangeError) throw new UsageError(`${name}: ${e.message}`);
      throw e;
    }
  }
  switch (spec.kind) {
    case 'bool': {
      if (['1', 'true', 'yes', 'on', ''].includes(raw)) return true;
      if (['0', 'false', 'no', 'off'].includes(raw)) return false;
      throw new UsageError(`${name}: expected true/false, got ${JSON.stringify(raw)}`);
    }
    case 'number':
    case 'int': {
      const v = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(v)) throw new UsageError(`${name}: expected a number, got ${JSON.stringify(raw)}`);
      if (spec.kind === 'int' && !Number.isInteger(v)) throw new UsageError(`${name}: expected an integer, got ${raw}`);
      if (spec.min !== undefined && v < spec.min) throw new UsageError(`${name}: ${v} is below the minimum ${spec.min}`);
      if (spec.max !== undefined && v > spec.max) throw new UsageError(`${name}: ${v} is above the maximum ${spec.max}`);
      return v;
    }
    case 'list': {
      const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
      if (spec.choices) for (const it of items) if (!spec.choices.includes(it)) throw new UsageError(`${name}: unknown value ${JSON.stringify(it)} (choose from ${spec.choices.join(', ')})`);
      return items.filter((it) => it !== 'none');
    }
    default:
      if (spec.choices && !spec.choices.includes(raw)) throw new UsageError(`${name}: unknown value ${JSON.stringify(raw)} (choose from ${spec.choices.join(', ')})`);
      return raw;
  }
}

export interface ParseFlagsOptions {
  /**
   * What a word not starting with -- is: 'error' (the default), or 'positional' (collected in
   * order, e.g. image files).
   */
  words?: 'error' | 'positional';
  /** unknown --flags (with a following value word) are collected in `rest` instead of failing */
  passUnknown?: boolean;
  /** flags refused with this reason (options another layer manages) */
  forbidden?: Record<string, string>;
}

export interface ParsedFlags<K extends string> {
  values: Map<K, unknown>;
  positional: string[];
  /** unknown options as given, for another parser (passUnknown) */
  rest: string[];
  help: boolean;
}

/**
 * Parses `--flag value`, `--flag=value`, bare `--flag` for booleans, `--no-flag` (false) and
 * `-h`/`--help`. Later occurrences override earlier ones.
 */
export function parseFlags<K extends string>(argv: readonly string[], specs: readonly OptionSpec<K>[], opts: ParseFlagsOptions = {}): ParsedFlags<K> {
  const byFlag = new Map<string, OptionSpec<K>>();
  for (const s of specs) for (const f of [s.flag, ...(s.aliases ?? [])]) byFlag.set(f, s);
  const out: ParsedFlags<K> = { values: new Map(), positional: [], rest: [], help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || (a === '--help' && !byFlag.has('help'))) {
      out.help = true;
      continue;
    }
    if (!a.startsWith('--')) {
      if (opts.words === 'positional') {
        out.positional.push(a);
        continue;
      }
      throw new UsageError(`unexpected argument ${JSON.stringify(a)} (options start with --; see --help)`);
    }
    let flag = a.slice(2);
    let value: string | undefined;
    const eq = flag.indexOf('=');
    if (eq >= 0) {
      value = flag.slice(eq + 1);
      flag = flag.slice(0, eq);
    }
    if (opts.forbidden && Object.hasOwn(opts.forbidden, flag)) throw new UsageError(`--${flag} ${opts.forbidden[flag]}`);
    let spec = byFlag.get(flag);
    if (!spec && flag.startsWith('no-') && byFlag.get(flag.slice(3))?.kind === 'bool' && value === undefined) {
      spec = byFlag.get(flag.slice(3))!;
      out.values.set(spec.key, false);
      continue;
    }
    if (!spec) {
      if (opts.passUnknown) {
        out.rest.push(a);
        if (value === undefined && i + 1 < argv.length && !argv[i + 1].startsWith('--')) out.rest.push(argv[++i]);
        continue;
      }
      const near = specs.map((s) => s.flag).filter((f) => f.includes(flag) || flag.includes(f));
      throw new UsageError(`unknown option --${flag}${near.length ? ` (did you mean ${near.map((f) => '--' + f).join(', ')}?)` : ''}; see --help`);
    }
    if (value === undefined) {
      if (spec.kind === 'bool' && (i + 1 >= argv.length || !/^(true|false|yes|no|on|off|0|1)$/.test(argv[i + 1]))) value = '';
      else {
        if (i + 1 >= argv.length) throw new UsageError(`--${flag} needs a value`);
        value = argv[++i];
      }
    }
    out.values.set(spec.key, convertValue(spec, value, `--${flag}`));
  }
  return out;
}

/** The parsed values as an object (keys absent when not given). */
export function valuesOf<K extends string>(p: ParsedFlags<K>): Partial<Record<K, unknown>> {
  return Object.fromEntries(p.values) as Partial<Record<K, unknown>>;
}

/**
 * The start of every command's main(): parse argv; a bad command line prints `error: ...` and
 * exits 2; --help prints the help and gives null (the command then returns).
 */
export function parseCommandLine<T>(parse: (argv: readonly string[]) => T, isHelp: (t: T) => boolean, help: () => string): T | null {
  let parsed: T;
  try {
    parsed = parse(process.argv.slice(2));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    process.exit(2);
  }
  if (!isHelp(parsed)) return parsed;
  console.log(help());
  return null;
}
