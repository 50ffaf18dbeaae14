// JSON parsing of user-supplied content with errors that name where it came from (a file, or a
// metadata entry inside one). No file access (readJsonFile in node-files.ts reads one).

/** JSON.parse, with an error naming `where` (a path, or "path: metadata entry x") and the parse error. */
export function parseJson<T>(text: string, where: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${where}: not valid JSON (${(e as Error).message})`);
  }
}
