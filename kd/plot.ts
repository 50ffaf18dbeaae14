// Dependency-free line plots as PNG and SVG: axes, "nice" numeric ticks (integer-only for
// epochs), grid, legend, title and axis labels; one or several panels side by side in a figure.
// The layout is drawn once through a Painter: the raster canvas (plot-font.ts: bitmap font, PNG
// via kd/data/image.ts) and the SVG writer (plot-svg.ts: real text) draw the same picture.
// No node: imports (a browser page uses it).
import { Canvas, textWidth, type RGB } from './plot-font.ts';
import { SvgPainter } from './plot-svg.ts';

export { Canvas, textWidth, type RGB };

/** What the layout draws with (pixel coordinates, y down). */
export interface Painter {
  line(x0: number, y0: number, x1: number, y1: number, c: RGB, width?: number): void;
  rect(x: number, y: number, w: number, h: number, c: RGB): void;
  polyline(pts: readonly [number, number][], c: RGB, width: number, dashed: boolean): void;
  /** top-left at (x, y), GLYPH_H * scale tall above the baseline; vertical reads bottom-up */
  text(x: number, y: number, s: string, c: RGB, scale?: number, vertical?: boolean): void;
}

// ---------------------------------------------------------------- ticks

/**
 * About `target` round tick values (1, 2, 2.5, 5 x 10^k steps) covering [lo, hi]; `integer`
 * allows only whole steps of 1, 2, 5 x 10^k (epochs: a 2-epoch run gets 1, 2, not 1.25, 1.5).
 */
export function niceTicks(lo: number, hi: number, target = 6, integer = false): { ticks: number[]; step: number; lo: number; hi: number } {
  if (!(hi > lo)) {
    const d = integer ? 1 : lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  const raw = Math.max((hi - lo) / Math.max(1, target), integer ? 1 : 0);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = (integer ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10]).map((m) => m * mag).find((s) => s >= raw * (1 - 1e-12)) ?? 10 * mag;
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
  /** Only whole-number ticks on the x axis (epochs). */
  xInteger?: boolean;
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

/** Render a line plot into a region of a painter (the whole image by default). */
export function drawLinePlot(p: Painter, opts: LinePlotOptions, ox = 0, oy = 0, W = opts.width ?? 640, H = opts.height ?? 400): void {
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
  const xt = niceTicks(opts.xMin ?? xlo, opts.xMax ?? xhi, Math.max(2, Math.round(W / 90)), opts.xInteger);
  const yt = niceTicks(opts.yMin ?? ylo, opts.yMax ?? yhi, Math.max(2, Math.round(H / 60)));
  const x0v = opts.xMin ?? xt.lo;
  const x1v = opts.xMax ?? xt.hi;
  const y0v = opts.yMin ?? yt.lo;
  const y1v = opts.yMax ?? yt.hi;

  // Layout: room for tick labels, axis labels and title.
  const yTickLabels = yt.ticks.map((v) => formatTick(v, yt.step));
  const yTickW = Math.max(...yTickLabels.map((s) => textWidth(s)));
  const left = ox + 12 + (opts.yLabel ? 14 : 0) + yTickW + 8;
  const top = oy + (opts.title ? 36 : 14);
  const bottom = 24 + (opts.xLabel ? 16 : 0);
  const right = 18;
  const pw = ox + W - left - right;
  const ph = oy + H - top - bottom;
  const px = (x: number) => left + ((x - x0v) / (x1v - x0v || 1)) * pw;
  const py = (y: number) => top + ph - ((y - y0v) / (y1v - y0v || 1)) * ph;

  // Grid and ticks.
  for (const v of yt.ticks) {
    if (v < y0v - 1e-12 || v > y1v + 1e-12) continue;
    const y = Math.round(py(v));
    p.line(left, y, left + pw, y, grid);
    p.line(left - 4, y, left, y, black);
    const s = formatTick(v, yt.step);
    p.text(left - 7 - textWidth(s), y - 3, s, textC);
  }
  let lastLabelEnd = -Infinity;
  for (const v of xt.ticks) {
    if (v < x0v - 1e-12 || v > x1v + 1e-12) continue;
    const x = Math.round(px(v));
    p.line(x, top, x, top + ph, grid);
    p.line(x, top + ph, x, top + ph + 4, black);
    const s = formatTick(v, xt.step);
    const tx = x - Math.floor(textWidth(s) / 2);
    if (tx > lastLabelEnd + 4) {
      p.text(tx, top + ph + 8, s, textC);
      lastLabelEnd = tx + textWidth(s);
    }
  }
  // Axes box.
  p.line(left, top, left, top + ph, black);
  p.line(left, top + ph, left + pw, top + ph, black);
  p.line(left, top, left + pw, top, [160, 160, 160]);
  p.line(left + pw, top, left + pw, top + ph, [160, 160, 160]);

  // Series, clipped to the plot area; non-finite values (and points outside) break the line.
  const showMarkers = opts.markers ?? opts.series.every((s) => Math.min(s.xs.length, s.ys.length) <= 40);
  const inside = (x: number, y: number) => x >= left - 1 && x <= left + pw + 1 && y >= top - 1 && y <= top + ph + 1;
  const pointCount = [0, 0, 0, 0]; // tl, tr, bl, br quadrants, for legend placement
  opts.series.forEach((s, k) => {
    const c = parseColor(s.color, k);
    const n = Math.min(s.xs.length, s.ys.length);
    let run: [number, number][] = [];
    const flush = () => {
      if (run.length > 1) p.polyline(run, c, 2, !!s.dashed);
      run = [];
    };
    for (let i = 0; i < n; i++) {
      const xv = s.xs[i];
      const yv = s.ys[i];
      if (!Number.isFinite(xv) || !Number.isFinite(yv)) {
        flush();
        continue;
      }
      const X = Math.round(px(xv));
      const Y = Math.round(py(yv));
      pointCount[(Y < top + ph / 2 ? 0 : 2) + (X < left + pw / 2 ? 0 : 1)]++;
      if (!inside(X, Y)) {
        flush();
        continue;
      }
      run.push([X, Y]);
      if (showMarkers) p.rect(X - 2, Y - 2, 5, 5, c);
    }
    flush();
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
    p.rect(lx, ly, lw, lh, [255, 255, 255]);
    p.line(lx, ly, lx + lw, ly, [150, 150, 150]);
    p.line(lx, ly + lh, lx + lw, ly + lh, [150, 150, 150]);
    p.line(lx, ly, lx, ly + lh, [150, 150, 150]);
    p.line(lx + lw, ly, lx + lw, ly + lh, [150, 150, 150]);
    opts.series.forEach((s, k) => {
      const c = parseColor(s.color, k);
      const yy = ly + 7 + k * 13;
      p.polyline([[lx + 6, yy + 3], [lx + 20, yy + 3]], c, 2, !!s.dashed);
      p.text(lx + 25, yy, s.name, textC);
    });
  }

  // Title and axis labels.
  if (opts.title) p.text(Math.round(left + pw / 2 - textWidth(opts.title, 2) / 2), oy + 10, opts.title, black, 2);
  if (opts.xLabel) p.text(Math.round(left + pw / 2 - textWidth(opts.xLabel) / 2), oy + H - 14, opts.xLabel, black);
  if (opts.yLabel) p.text(ox + 8, Math.round(top + ph / 2 + textWidth(opts.yLabel) / 2), opts.yLabel, black, 1, true);
}

/** Render a line plot to a Canvas (see renderLinePlotPng). */
export function renderLinePlot(opts: LinePlotOptions): Canvas {
  const cv = new Canvas(opts.width ?? 640, opts.height ?? 400);
  drawLinePlot(cv, opts);
  return cv;
}

/** PNG bytes of a line plot (for callers that write files themselves). */
export function renderLinePlotPng(opts: LinePlotOptions): Uint8Array {
  return renderLinePlot(opts).toPng();
}

/** Several line plots side by side, under an optional figure title. */
export interface FigureOptions {
  title?: string;
  panels: LinePlotOptions[];
  /** width of each panel (default 480 with several panels, else 640) */
  panelWidth?: number;
  height?: number;
}

function drawFigure(p: Painter, f: FigureOptions): void {
  const { pw, ph, top } = figureSize(f);
  if (f.title) p.text(Math.round((pw * f.panels.length) / 2 - textWidth(f.title, 2) / 2), 10, f.title, [0, 0, 0], 2);
  f.panels.forEach((panel, i) => drawLinePlot(p, panel, i * pw, top, pw, ph));
}

function figureSize(f: FigureOptions): { pw: number; ph: number; top: number; width: number; height: number } {
  const pw = f.panelWidth ?? (f.panels.length > 1 ? 480 : 640);
  const top = f.title ? 30 : 0;
  const height = f.height ?? 400 + top;
  return { pw, ph: height - top, top, width: pw * Math.max(1, f.panels.length), height };
}

/** A figure as PNG bytes and as an SVG document of the same layout. */
export function renderFigure(f: FigureOptions): { png: Uint8Array; svg: string; width: number; height: number } {
  const { width, height } = figureSize(f);
  const cv = new Canvas(width, height);
  drawFigure(cv, f);
  const svg = new SvgPainter(width, height);
  drawFigure(svg, f);
  return { png: cv.toPng(), svg: svg.toString(), width, height };
}
