// RFC 4180 CSV parser from text (quoted fields, "" escapes, embedded commas/newlines,
// CRLF/LF/CR line ends, UTF-8 BOM). Deliberately tolerant of ragged rows:
// NIH's Data_Entry_2017.csv has unquoted commas in its header and a trailing
// empty column, so rows are not forced to the header's width. Reading a file: node-files.ts readCsv.

export interface Csv {
  file: string;
  header: string[];
  rows: string[][];
  /** 1-based source line where each row starts (for error messages). */
  lines: number[];
}

export function parseCsv(text: string, file = '<csv>'): Csv {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const records: string[][] = [];
  const lines: number[] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  let line = 1;
  let rowLine = 1;
  const n = text.length;
  let atFieldStart = true; // only a quote at the very start of a field opens a quoted field
  let rowHasContent = false; // blank lines are skipped instead of yielding [''] rows
  const endRow = () => {
    row.push(field);
    if (rowHasContent) {
      records.push(row);
      lines.push(rowLine);
    }
    row = [];
    field = '';
    atFieldStart = true;
    rowHasContent = false;
  };
  while (i < n) {
    const ch = text.charCodeAt(i);
    if (ch === 34 /* " */ && atFieldStart) {
      const startLine = line;
      atFieldStart = false;
      rowHasContent = true;
      i++;
      let closed = false;
      let chunkStart = i;
      while (i < n) {
        const c = text.charCodeAt(i);
        if (c === 34) {
          if (text.charCodeAt(i + 1) === 34) {
            field += text.slice(chunkStart, i + 1);
            i += 2;
            chunkStart = i;
            continue;
          }
          field += text.slice(chunkStart, i);
          i++;
          closed = true;
          break;
        }
        if (c === 10 || (c === 13 && text.charCodeAt(i + 1) !== 10)) line++;
        i++;
      }
      if (!closed) throw new Error(`${file}:${startLine}: unterminated quoted field`);
      // Anything between the closing quote and the delimiter is kept literally (lenient).
      while (i < n) {
        const c = text.charCodeAt(i);
        if (c === 44 || c === 10 || c === 13) break;
        field += text[i];
        i++;
      }
      continue;
    }
    if (ch === 44 /* , */) {
      row.push(field);
      field = '';
      atFieldStart = true;
      rowHasContent = true;
      i++;
      continue;
    }
    if (ch === 10 || ch === 13) {
      endRow();
      if (ch === 13 && text.charCodeAt(i + 1) === 10) i++;
      i++;
      line++;
      rowLine = line;
      continue;
    }
    // Unquoted run: copy up to the next delimiter in one slice.
    let j = i;
    while (j < n) {
      const c = text.charCodeAt(j);
      if (c === 44 || c === 10 || c === 13) break;
      j++;
    }
    field += text.slice(i, j);
    atFieldStart = false;
    rowHasContent = true;
    i = j;
  }
  if (rowHasContent) endRow();
  if (records.length === 0) throw new Error(`${file}: empty CSV (no header row)`);
  const header = records[0];
  return { file, header, rows: records.slice(1), lines: lines.slice(1) };
}

const norm = (s: string) => s.trim().toLowerCase();

/** Index of a column, matching exactly first, then case/space-insensitively. -1 if absent. */
export function findColumn(csv: Csv, ...names: string[]): number {
  for (const name of names) {
    const k = csv.header.indexOf(name);
    if (k >= 0) return k;
  }
  for (const name of names) {
    const k = csv.header.findIndex((h) => norm(h) === norm(name));
    if (k >= 0) return k;
  }
  return -1;
}

/** Like findColumn but throws an error naming the file, the column and what is there. */
export function requireColumn(csv: Csv, ...names: string[]): number {
  const k = findColumn(csv, ...names);
  if (k < 0) {
    const shown = csv.header.filter((h) => h !== '').map((h) => JSON.stringify(h));
    throw new Error(
      `${csv.file}: missing column ${names.map((s) => JSON.stringify(s)).join(' or ')} (columns: ${shown.join(', ') || 'none'})`,
    );
  }
  return k;
}

/** Values of one column (empty string where a row is short). */
export function getColumn(csv: Csv, ...names: string[]): string[] {
  const k = requireColumn(csv, ...names);
  return csv.rows.map((r) => r[k] ?? '');
}

/** Quote a value for writing CSV. */
export function csvEscape(v: string | number): string {
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function formatCsv(header: string[], rows: (string | number)[][]): string {
  return [header, ...rows].map((r) => r.map(csvEscape).join(',')).join('\n') + '\n';
}
