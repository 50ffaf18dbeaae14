// Dependency-free line plots written as PNG (pngjs via kd/data/image.ts):
// axes, "nice" numeric ticks, grid, legend, title and axis labels, with text
// drawn from a small embedded 5x7 bitmap font. Meant for training curves.
import { encodePng } from './data/image.ts';

// ---------------------------------------------------------------- 5x7 font

// ASCII 32..126; each glyph is 7 rows of 5 bits (bit 4 = leftmost column).
const FONT_DATA = [
  '00 00 00 00 00 00 00', '04 04 04 04 00 00 04', '0A 0A 0A 00 00 00 00', '0A 0A 1F 0A 1F 0A 0A', // space ! " #
  '04 0F 14 0E 05 1E 04', '18 19 02 04 08 13 03', '0C 12 14 08 15 12 0D', '0C 04 08 00 00 00 00', // $ % & '
  '02 04 08 08 08 04 02', '08 04 02 02 02 04 08', '00 04 15 0E 15 04 00', '00 04 04 1F 04 04 00', // ( ) * +
  '00 00 00 00 0C 04 08', '00 00 00 1F 00 00 00', '00 00 00 00 00 0C 0C', '00 01 02 04 08 10 00', // , - . /
  '0E 11 13 15 19 11 0E', '04 0C 04 04 04 04 0E', '0E 11 01 02 04 08 1F', '1F 02 04 02 01 11 0E', // 0 1 2 3
  '02 06 0A 12 1F 02 02', '1F 10 1E 01 01 11 0E', '06 08 10 1E 11 11 0E', '1F 01 02 04 08 08 08', // 4 5 6 7
  '0E 11 11 0E 11 11 0E', '0E 11 11 0F 01 02 0C', '00 0C 0C 00 0C 0C 00', '00 0C 0C 00 0C 04 08', // 8 9 : ;
  '02 04 08 10 08 04 02', '00 00 1F 00 1F 00 00', '08 04 02 01 02 04 08', '0E 11 01 02 04 00 04', // < = > ?
  '0E 11 01 0D 15 15 0E', '0E 11 11 11 1F 11 11', '1E 11 11 1E 11 11 1E', '0E 11 10 10 10 11 0E', // @ A B C
  '1C 12 11 11 11 12 1C', '1F 10 10 1E 10 10 1F', '1F 10 10 1E 10 10 10', '0E 11 10 17 11 11 0F', // D E F G
  '11 11 11 1F 11 11 11', '0E 04 04 04 04 04 0E', '07 02 02 02 02 12 0C', '11 12 14 18 14 12 11', // H I J K
  '10 10 10 10 10 10 1F', '11 1B 15 15 11 11 11', '11 11 19 15 13 11 11', '0E 11 11 11 11 11 0E', // L M N O
  '1E 11 11 1E 10 10 10', '0E 11 11 11 15 12 0D', '1E 11 11 1E 14 12 11', '0F 10 10 0E 01 01 1E', // P Q R S
  '1F 04 04 04 04 04 04', '11 11 11 11 11 11 0E', '11 11 11 11 11 0A 04', '11 11 11 15 15 15 0A', // T U V W
  '11 11 0A 04 0A 11 11', '11 11 11 0A 04 04 04', '1F 01 02 04 08 10 1F', '0E 08 08 08 08 08 0E', // X Y Z [
  '00 10 08 04 02 01 00', '0E 02 02 02 02 02 0E', '04 0A 11 00 00 00 00', '00 00 00 00 00 00 1F', // \ ] ^ _
  '08 04 02 00 00 00 00', '00 00 0E 01 0F 11 0F', '10 10 16 19 11 11 1E', '00 00 0E 10 10 11 0E', // ` a b c
  '01 01 0D 13 11 11 0F', '00 00 0E 11 1F 10 0E', '06 09 08 1C 08 08 08', '00 0F 11 11 0F 01 0E', // d e f g
  '10 10 16 19 11 11 11', '04 00 0C 04 04 04 0E', '02 00 06 02 02 12 0C', '10 10 12 14 18 14 12', // h i j k
  '0C 04 04 04 04 04 0E', '00 00 1A 15 15 11 11', '00 00 16 19 11 11 11', '00 00 0E 11 11 11 0E', // l m n o
  '00 00 1E 11 1E 10 10', '00 00 0D 13 0F 01 01', '00 00 16 19 10 10 10', '00 00 0E 10 0E 01 1E', // p q r s
  '08 08 1C 08 08 09 06', '00 00 11 11 11 13 0D', '00 00 11 11 11 0A 04', '00 00 11 11 15 15 0A', // t u v w
  '00 00 11 0A 04 0A 11', '00 00 11 11 0F 01 0E', '00 00 1F 02 04 08 1F', '02 04 04 08 04 04 02', // x y z {
  '04 04 04 04 04 04 04', '08 04 04 02 04 04 08', '00 00 08 15 02 00 00', // | } ~
];
const FONT = FONT_DATA.map((g) => g.split(' ').map((h) => parseInt(h, 16)));
const UNKNOWN = [0x1f, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1f]; // box for characters outside ASCII

export const GLYPH_W = 5;
export const GLYPH_H = 7;
/** Horizontal advance per character at scale 1 (glyph + 1 px spacing). */
export const CHAR_ADVANCE = 6;

// ---------------------------------------------------------------- canvas

export type RGB = [number, number, number];

export class Canvas {
  readonly data: Uint8Array;
  constructor(
    readonly width: number,
    readonly height: number,
    bg: RGB = [255, 255, 255],
  ) {
    this.data = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++) this.data.set(bg, i * 3);
  }

  set(x: number, y: number, c: RGB): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    this.data.set(c, (y * this.width + x) * 3);
  }

  rect(x0: number, y0: number, w: number, h: number, c: RGB): void {
    for (let y = Math.round(y0); y < Math.round(y0 + h); y++) for (let x = Math.round(x0); x < Math.round(x0 + w); x++) this.set(x, y, c);
  }

  /** Bresenham line stamped with a square pen of the given width. */
  line(x0: number, y0: number, x1: number, y1: number, c: RGB, width = 1): void {
    x0 = Math.round(x0);
    y0 = Math.round(y0);
    x1 = Math.round(x1);
    y1 = Math.round(y1);
    const dx = Math.abs(x1 - x0);
    const dy = -Math.abs(y1 - y0);
    const sx = x0 < x1 ? 1 : -1;
    const sy = y0 < y1 ? 1 : -1;
    let err = dx + dy;
    const lo = -Math.floor((width - 1) / 2);
    const hi = lo + width;
    for (let guard = 0; guard < 100000; guard++) {
      for (let oy = lo; oy < hi; oy++) for (let ox = lo; ox < hi; ox++) this.set(x0 + ox, y0 + oy, c);
      if (x0 === x1 && y0 === y1) break;
      const e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y0 += sy;
      }
    }
  }

  dashedHLine(x0: number, x1: number, y: number, c: RGB, on = 3, off = 3): void {
    for (let x = Math.round(x0); x <= x1; x++) if ((x - x0) % (on + off) < on) this.set(x, y, c);
  }

  dashedVLine(x: number, y0: number, y1: number, c: RGB, on = 3, off = 3): void {
    for (let y = Math.round(y0); y <= y1; y++) if ((y - y0) % (on + off) < on) this.set(x, y, c);
  }

  /** Text with its top-left at (x, y); `vertical` draws it rotated 90 degrees counter-clockwise, reading bottom-up. */
  text(x: number, y: number, s: string, c: RGB, scale = 1, vertical = false): void {
    let pen = 0;
    for (const ch of s) {
      const code = ch.charCodeAt(0);
      const g = code >= 32 && code <= 126 ? FONT[code - 32] : UNKNOWN;
      for (let r = 0; r < GLYPH_H; r++)
        for (let col = 0; col < GLYPH_W; col++) {
          if (!((g[r] >> (GLYPH_W - 1 - col)) & 1)) continue;
          for (let a = 0; a < scale; a++)
            for (let b = 0; b < scale; b++) {
              const gx = pen + col * scale + b; // along the text
              const gy = r * scale + a; // across the text
              if (vertical) this.set(x + gy, y - gx, c);
              else this.set(x + gx, y + gy, c);
            }
        }
      pen += CHAR_ADVANCE * scale;
    }
  }

  toPng(): Buffer {
    return encodePng(this.data, this.width, this.height, 3);
  }
}

/** Width in pixels of a string at a scale. */
export function textWidth(s: string, scale = 1): number {
  return s.length === 0 ? 0 : ([...s].length * CHAR_ADVANCE - 1) * scale;
}

// ---------------------------------------------------------------- ticks

/** About `target` round tick values (1, 2, 2.5, 5 x 10^k steps) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, target = 6): { ticks: number[]; step: number; lo: number; hi: number } {
  if (!(hi > lo)) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / Math.max(1, target);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const a = Math.floor(lo / step + 1e-9) * step;
  const b = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let k = 0; a + k * step <= b + step * 1e-9; k++) ticks.push(a + k * step);
  return { ticks, step, lo: a, hi: b };
}

/** Tick label with just enough decimals for the step (scientific for very large/small values). */
export function formatTick(v: number, step: number): string {
  if (Math.abs(v) < step * 1e-9) v = 0;
  const av = Math.abs(v);
  if (av !== 0 && (av >= 1e6 || av < 1e-4)) return v.toExponential(Math.max(0, Math.min(3, -Math.floor(Math.log10(step)) + Math.floor(Math.log10(av))))).replace('e+', 'e');
  let dec = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  if (Math.abs(step / Math.pow(10, -dec) - Math.round(step / Math.pow(10, -dec))) > 1e-6) dec++; // e.g. step 0.25
  return v.toFixed(Math.min(dec, 8));
}

// ---------------------------------------------------------------- plot

export interface Series {
  name: string;
  xs: ArrayLike<number>;
  ys: ArrayLike<number>;
  /** CSS-like hex '#rrggbb' or an RGB triple; default from a 10-colour palette. */
  color?: string | RGB;
  /** Dashed line (e.g. to tell train from val at the same colour). */
  dashed?: boolean;
}

export interface LinePlotOptions {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  series: Series[];
  width?: number;
  height?: number;
  /** Axis range overrides. */
  xMin?: number;
  xMax?: number;
  yMin?: number;
  yMax?: number;
  /** Draw point markers (default: when every series has <= 40 points). */
  markers?: boolean;
  /** Legend corner (default 'auto': the corner with the fewest data points). */
  legend?: 'auto' | 'top-right' | 'top-left' | 'bottom-right' | 'bottom-left' | 'none';
}

// Tableau 10: distinct and colour-blind friendly enough for a few curves.
export const PALETTE: RGB[] = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
];

function parseColor(c: string | RGB | undefined, k: number): RGB {
  if (Array.isArray(c)) return c;
  if (typeof c === 'string') {
    const m = /^#?([0-9a-f]{6})$/i.exec(c.trim());
    if (m) {
      const v = parseInt(m[1], 16);
      return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
    }
  }
  return PALETTE[k % PALETTE.length];
}

/** Render a line plot to a Canvas (see linePlotPng). */
export function renderLinePlot(opts: LinePlotOptions): Canvas {
  const W = opts.width ?? 640;
  const H = opts.height ?? 400;
  const cv = new Canvas(W, H);
  const black: RGB = [0, 0, 0];
  const grid: RGB = [225, 225, 225];
  const textC: RGB = [40, 40, 40];

  // Data extent over finite points.
  let xlo = Infinity;
  let xhi = -Infinity;
  let ylo = Infinity;
  let yhi = -Infinity;
  for (const s of opts.series) {
    const n = Math.min(s.xs.length, s.ys.length);
    for (let i = 0; i < n; i++) {
      const x = s.xs[i];
      const y = s.ys[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      xlo = Math.min(xlo, x);
      xhi = Math.max(xhi, x);
      ylo = Math.min(ylo, y);
      yhi = Math.max(yhi, y);
    }
  }
  if (!Number.isFinite(xlo)) [xlo, xhi, ylo, yhi] = [0, 1, 0, 1];
  const xt = niceTicks(opts.xMin ?? xlo, opts.xMax ?? xhi, Math.max(2, Math.round(W / 90)));
  const yt = niceTicks(opts.yMin ?? ylo, opts.yMax ?? yhi, Math.max(2, Math.round(H / 60)));
  const x0v = opts.xMin ?? xt.lo;
  const x1v = opts.xMax ?? xt.hi;
  const y0v = opts.yMin ?? yt.lo;
  const y1v = opts.yMax ?? yt.hi;

  // Layout: room for tick labels, axis labels and title.
  const yTickLabels = yt.ticks.map((v) => formatTick(v, yt.step));
  const yTickW = Math.max(...yTickLabels.map((s) => textWidth(s)));
  const left = 12 + (opts.yLabel ? 14 : 0) + yTickW + 8;
  const top = opts.title ? 36 : 14;
  const bottom = 24 + (opts.xLabel ? 16 : 0);
  const right = 18;
  const pw = W - left - right;
  const ph = H - top - bottom;
  const px = (x: number) => left + ((x - x0v) / (x1v - x0v || 1)) * pw;
  const py = (y: number) => top + ph - ((y - y0v) / (y1v - y0v || 1)) * ph;

  // Grid and ticks.
  for (const v of yt.ticks) {
    if (v < y0v - 1e-12 || v > y1v + 1e-12) continue;
    const y = Math.round(py(v));
    cv.line(left, y, left + pw, y, grid);
    cv.line(left - 4, y, left, y, black);
    const s = formatTick(v, yt.step);
    cv.text(left - 7 - textWidth(s), y - 3, s, textC);
  }
  let lastLabelEnd = -Infinity;
  for (const v of xt.ticks) {
    if (v < x0v - 1e-12 || v > x1v + 1e-12) continue;
    const x = Math.round(px(v));
    cv.line(x, top, x, top + ph, grid);
    cv.line(x, top + ph, x, top + ph + 4, black);
    const s = formatTick(v, xt.step);
    const tx = x - Math.floor(textWidth(s) / 2);
    if (tx > lastLabelEnd + 4) {
      cv.text(tx, top + ph + 8, s, textC);
      lastLabelEnd = tx + textWidth(s);
    }
  }
  // Axes box.
  cv.line(left, top, left, top + ph, black);
  cv.line(left, top + ph, left + pw, top + ph, black);
  cv.line(left, top, left + pw, top, [160, 160, 160]);
  cv.line(left + pw, top, left + pw, top + ph, [160, 160, 160]);

  // Series, clipped to the plot area; non-finite values break the line.
  const showMarkers = opts.markers ?? opts.series.every((s) => Math.min(s.xs.length, s.ys.length) <= 40);
  const inside = (x: number, y: number) => x >= left - 1 && x <= left + pw + 1 && y >= top - 1 && y <= top + ph + 1;
  const pointCount = [0, 0, 0, 0]; // tl, tr, bl, br quadrants, for legend placement
  opts.series.forEach((s, k) => {
    const c = parseColor(s.color, k);
    const n = Math.min(s.xs.length, s.ys.length);
    let prev: [number, number] | null = null;
    let dashPhase = 0;
    for (let i = 0; i < n; i++) {
      const xv = s.xs[i];
      const yv = s.ys[i];
      if (!Number.isFinite(xv) || !Number.isFinite(yv)) {
        prev = null;
        continue;
      }
      const X = px(xv);
      const Y = py(yv);
      pointCount[(Y < top + ph / 2 ? 0 : 2) + (X < left + pw / 2 ? 0 : 1)]++;
      if (prev && inside(prev[0], prev[1]) && inside(X, Y)) {
        if (s.dashed) {
          // Dash by walking the segment in 1 px steps.
          const len = Math.hypot(X - prev[0], Y - prev[1]);
          const steps = Math.max(1, Math.ceil(len));
          for (let t = 0; t < steps; t++, dashPhase++) {
            if (dashPhase % 10 >= 6) continue;
            const a = t / steps;
            const b = (t + 1) / steps;
            cv.line(prev[0] + (X - prev[0]) * a, prev[1] + (Y - prev[1]) * a, prev[0] + (X - prev[0]) * b, prev[1] + (Y - prev[1]) * b, c, 2);
          }
        } else cv.line(prev[0], prev[1], X, Y, c, 2);
      }
      if (showMarkers && inside(X, Y)) cv.rect(X - 2, Y - 2, 5, 5, c);
      prev = [X, Y];
    }
  });

  // Legend.
  const where = opts.legend ?? 'auto';
  if (where !== 'none' && opts.series.length > 0) {
    const lw = 30 + Math.max(...opts.series.map((s) => textWidth(s.name)));
    const lh = 8 + opts.series.length * 13;
    let corner = where;
    if (where === 'auto') {
      const names = ['top-left', 'top-right', 'bottom-left', 'bottom-right'] as const;
      const order = [1, 0, 3, 2]; // prefer top-right on ties
      let best = order[0];
      for (const q of order) if (pointCount[q] < pointCount[best]) best = q;
      corner = names[best];
    }
    const lx = corner.endsWith('left') ? left + 8 : left + pw - lw - 8;
    const ly = corner.startsWith('top') ? top + 8 : top + ph - lh - 8;
    cv.rect(lx, ly, lw, lh, [255, 255, 255]);
    cv.line(lx, ly, lx + lw, ly, [150, 150, 150]);
    cv.line(lx, ly + lh, lx + lw, ly + lh, [150, 150, 150]);
    cv.line(lx, ly, lx, ly + lh, [150, 150, 150]);
    cv.line(lx + lw, ly, lx + lw, ly + lh, [150, 150, 150]);
    opts.series.forEach((s, k) => {
      const c = parseColor(s.color, k);
      const yy = ly + 7 + k * 13;
      if (s.dashed) {
        cv.line(lx + 6, yy + 3, lx + 10, yy + 3, c, 2);
        cv.line(lx + 15, yy + 3, lx + 19, yy + 3, c, 2);
      } else cv.line(lx + 6, yy + 3, lx + 20, yy + 3, c, 2);
      cv.text(lx + 25, yy, s.name, textC);
    });
  }

  // Title and axis labels.
  if (opts.title) cv.text(Math.round(left + pw / 2 - textWidth(opts.title, 2) / 2), 10, opts.title, black, 2);
  if (opts.xLabel) cv.text(Math.round(left + pw / 2 - textWidth(opts.xLabel) / 2), H - 14, opts.xLabel, black);
  if (opts.yLabel) cv.text(8, Math.round(top + ph / 2 + textWidth(opts.yLabel) / 2), opts.yLabel, black, 1, true);
  return cv;
}

/** PNG bytes of a line plot (for callers that write files themselves). */
export function renderLinePlotPng(opts: LinePlotOptions): Buffer {
  return renderLinePlot(opts).toPng();
}
