// Node file access for the data pipeline and the run directory: whole-file reads with a clear size error, atomic (and create-once) writes,
// the node:zlib codec for zip/npz, npz files, the cache directory and image-folder listings. The parsers (zip.ts, npy.ts, image.ts) work on
// bytes and never import node:*; a browser build supplies bytes and a codec of its own.
import { linkSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, statSync, unlinkSync, writeFileSync, type Dirent } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { constants as bufferConstants } from 'node:buffer';
import * as zlib from 'node:zlib';
import { InflateLimitError, type ZipCodec } from './zip.ts';
import { parseCsv, type Csv } from './csv.ts';
import { encodeNpz, readNpz, type NpyArray, type NpyData } from './npy.ts';
import { parseJson } from './json.ts';

// node:zlib has a native crc32 from Node 20.15 / 22.2; without it zip.ts uses its table.
const nativeCrc32 = (zlib as unknown as { crc32?: (d: Uint8Array, v?: number) => number }).crc32;

/** Inflate/deflate through node:zlib. */
export const nodeZipCodec: ZipCodec = {
  inflateRaw: (d, maxOutput) => {
    // node:zlib checks maxOutputLength after each output chunk, so memory stays near the limit.
    try {
      return zlib.inflateRawSync(d, { maxOutputLength: maxOutput });
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw new InflateLimitError(maxOutput);
      throw e;
    }
  },
  deflateRaw: (d) => zlib.deflateRawSync(d),
  ...(nativeCrc32 ? { crc32: (d: Uint8Array, prev = 0) => nativeCrc32(d, prev) >>> 0 } : {}),
};

/** The whole file, or an error naming it (missing, or too large for one Buffer). */
export function readFileBytes(path: string): Buffer {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    throw new Error(`cannot open ${path}: ${(e as Error).message}`);
  }
  if (size > bufferConstants.MAX_LENGTH) throw new Error(`${path}: ${size} bytes is larger than a Node Buffer can hold (${bufferConstants.MAX_LENGTH}); use a smaller image size`);
  return readFileSync(path);
}

/** A JSON file's content; errors name the file (unreadable, or not valid JSON with the parse error). */
export function readJsonFile<T>(path: string): T {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  return parseJson<T>(text, path);
}

/**
 * mkdir -p with a clear error. Not `mkdirSync(p, { recursive: true })`: Node 20's recursive
 * mkdir never returns where mkdir fails with ENOENT under an existing parent (e.g. /proc/x: it
 * retries the parent, finds it, retries the child, forever, blocking even signal handlers).
 * `what` names the path's role in the error, e.g. '--out'.
 */
export function makeDirs(path: string, what = 'directory'): void {
  const abs = resolve(path);
  const missing: string[] = [];
  for (let p = abs; ; p = dirname(p)) {
    let st;
    try {
      st = statSync(p);
    } catch {
      missing.push(p);
      if (dirname(p) === p) break;
      continue;
    }
    if (!st.isDirectory()) throw new Error(`${what} ${abs}: cannot create it, ${p} is not a directory`);
    break;
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EEXIST' && statSync(d, { throwIfNoEntry: false })?.isDirectory()) continue; // made meanwhile by another process
      const why = err.code === 'ENOENT' ? `the file system at ${dirname(d)} does not allow creating ${d}` : err.code === 'EACCES' || err.code === 'EPERM' ? `no permission to create ${d}` : err.code === 'EROFS' ? `${dirname(d)} is read-only` : err.message;
      throw new Error(`${what} ${abs}: cannot create it (${why})`);
    }
  }
}

/** This host's short name, as it appears in temp-file names (letters, digits, '_', '-'). */
export const HOST = hostname().split('.')[0].replace(/[^A-Za-z0-9-]/g, '_') || 'host';

const tempName = (path: string): string => `${path}.tmp-${process.pid}@${HOST}-${Math.random().toString(36).slice(2)}`;

/** Parses a temp name made by writeFileAtomic: the writer's pid and host (host null for old names without one). */
export function parseTempName(file: string): { pid: number; host: string | null } | null {
  const m = /\.tmp-(\d+)(?:@([A-Za-z0-9_-]+))?-[a-z0-9]+$/.exec(file);
  return m ? { pid: Number(m[1]), host: m[2] ?? null } : null;
}

/**
 * Write a file atomically: temp file in the same directory, then rename, so readers never see
 * half a file. The temp name carries pid@host, so a cleaner on another node sharing the
 * directory (NFS/Lustre) can tell a live writer elsewhere from a crash leftover (RunDir.cleanTemp).
 */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  makeDirs(dirname(path));
  const tmp = tempName(path);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {}
    // Node's ENOSPC / EFBIG / EIO messages from write() name no file
    throw new Error(`${path}: cannot write (${(e as Error).message}); any previous file is unchanged`, { cause: e });
  }
}

/**
 * Like writeFileAtomic, but only if `path` does not exist yet: link() fails on an existing name,
 * atomically, also over NFS (several jobs starting at once: the first one's content stays).
 * Returns whether this call created it.
 */
export function writeFileOnce(path: string, data: Uint8Array | string): boolean {
  makeDirs(dirname(path));
  const tmp = tempName(path);
  writeFileSync(tmp, data);
  try {
    linkSync(tmp, path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
    // a file system without hard links: O_EXCL creation (exclusive, though not all-or-nothing)
    try {
      writeFileSync(path, data, { flag: 'wx' });
      return true;
    } catch (e2) {
      if ((e2 as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e2;
    }
  } finally {
    try {
      unlinkSync(tmp);
    } catch {}
  }
}

/** All arrays of an .npz file (see readNpz). */
export function readNpzFile(path: string): Map<string, NpyArray> {
  return readNpz(readFileBytes(path), path, nodeZipCodec);
}

/** Write an .npz file atomically (compressed with node:zlib when asked). */
export function writeNpz(path: string, arrays: Record<string, { data: NpyData; shape: number[] }>, opts: { compress?: boolean; extra?: Record<string, Uint8Array> } = {}): void {
  writeFileAtomic(path, encodeNpz(arrays, { ...opts, codec: nodeZipCodec }));
}

/** $ROSKD_CACHE or ~/.cache/roskd: downloads and decoded-image caches. */
export function defaultCacheDir(): string {
  return process.env.ROSKD_CACHE || join(homedir(), '.cache', 'roskd');
}

/** Image file extensions the folder loaders pick up. */
export const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);

/** A directory entry that is a folder, following symbolic links (a broken link is not a folder). */
function isFolder(dir: string, e: Dirent): boolean {
  if (e.isDirectory()) return true;
  if (!e.isSymbolicLink()) return false;
  try {
    return statSync(join(dir, e.name)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Map of file name and stem -> path for all images under dirs (recursive, depth-limited). Symbolic
 * links to folders are followed; a folder reached twice (a link loop, or two links to one place)
 * is walked once.
 */
export function indexImages(dirs: string[], maxDepth = 4): Map<string, string> {
  const index = new Map<string, string>();
  const visited = new Set<string>();
  const walk = (dir: string, depth: number) => {
    let entries;
    try {
      const real = realpathSync(dir);
      if (visited.has(real)) return;
      visited.add(real);
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = join(dir, e.name);
      if (isFolder(dir, e)) {
        if (depth < maxDepth && !e.name.startsWith('.')) walk(p, depth + 1);
      } else if (IMAGE_EXT.has(extname(e.name).toLowerCase())) {
        if (!index.has(e.name)) index.set(e.name, p);
        const stem = e.name.slice(0, e.name.length - extname(e.name).length);
        if (!index.has(stem)) index.set(stem, p);
      }
    }
  };
  for (const d of dirs) walk(d, 0);
  return index;
}

/**
 * Sorted names of the visible sub-folders of dir, symbolic links to folders included. A broken
 * link is an error naming it (it was most likely meant to be a class folder).
 */
export function subdirs(dir: string): string[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    throw new Error(`cannot read folder ${dir}: ${(e as Error).message}`);
  }
  const out: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    if (e.isSymbolicLink()) {
      const p = join(dir, e.name);
      try {
        statSync(p);
      } catch (err) {
        throw new Error(`${p}: broken symbolic link (${(err as Error).message}); fix or remove it`);
      }
    }
    if (isFolder(dir, e)) out.push(e.name);
  }
  return out.sort();
}

/** Sorted image file names directly in dir. */
export function listImages(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => IMAGE_EXT.has(extname(f).toLowerCase()))
    .sort();
}

/** Non-empty trimmed lines of a text file (official split lists). */
export function readLines(path: string): Set<string> {
  return new Set(
    readFileSync(path, 'utf8')
      .split(/\r?\n/)
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

/** Image files named directly or found (recursively, sorted) under named folders. */
export function collectImages(paths: string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (IMAGE_EXT.has(extname(e.name).toLowerCase())) out.push(p);
    }
  };
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new Error(`${p}: no such file or folder`);
    }
    if (st.isDirectory()) walk(p);
    else out.push(p);
  }
  return out;
}

/** A CSV file, parsed (csv.ts); errors name the file. */
export function readCsv(path: string): Csv {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read CSV ${path}: ${(e as Error).message}`);
  }
  return parseCsv(text, path);
}
