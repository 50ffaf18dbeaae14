// The SVG twin of a plot (plot.ts draws the same layout through this painter): lines and
// polylines as vector paths, text as real <text> in a monospace font sized to the bitmap
// font's metrics (6 px advance, 7 px cap height per scale), so the layout fits either way.
import type { RGB } from './plot-font.ts';

const hex = (c: RGB): string => '#' + c.map((v) => Math.max(0, Math.min(255, Math.round(v))).toString(16).padStart(2, '0')).join('');
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
// pixel (x, y) of the raster is the square [x, x+1) x [y, y+1): its centre is x + 0.5
const at = (v: number): string => String(Math.round(v) + 0.5);

export class SvgPainter {
  private readonly parts: string[] = [];
  constructor(
    readonly width: number,
    readonly height: number,
  ) {}

  line(x0: number, y0: number, x1: number, y1: number, c: RGB, width = 1): void {
    this.parts.push(`<line x1="${at(x0)}" y1="${at(y0)}" x2="${at(x1)}" y2="${at(y1)}" stroke="${hex(c)}" stroke-width="${width}"/>`);
  }

  rect(x: number, y: number, w: number, h: number, c: RGB): void {
    this.parts.push(`<rect x="${Math.round(x)}" y="${Math.round(y)}" width="${Math.round(x + w) - Math.round(x)}" height="${Math.round(y + h) - Math.round(y)}" fill="${hex(c)}"/>`);
  }

  polyline(pts: readonly [number, number][], c: RGB, width: number, dashed: boolean): void {
    const d = pts.map(([x, y]) => `${at(x)},${at(y)}`).join(' ');
    this.parts.push(`<polyline points="${d}" fill="none" stroke="${hex(c)}" stroke-width="${width}" stroke-linejoin="round"${dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
  }

  text(x: number, y: number, s: string, c: RGB, scale = 1, vertical = false): void {
    const size = 10 * scale; // a monospace em of 10 px advances about 6 px, like the bitmap font
    const base = 7 * scale;
    const attrs = `font-size="${size}" fill="${hex(c)}"`;
    if (vertical) this.parts.push(`<text transform="translate(${x + base} ${y}) rotate(-90)" ${attrs}>${esc(s)}</text>`);
    else this.parts.push(`<text x="${x}" y="${y + base}" ${attrs}>${esc(s)}</text>`);
  }

  toString(): string {
    return [
      `<svg xmlns="http://www.w3.org/2000/svg" width="${this.width}" height="${this.height}" viewBox="0 0 ${this.width} ${this.height}">`,
      `<rect width="100%" height="100%" fill="#ffffff"/>`,
      `<g font-family="DejaVu Sans Mono, Menlo, Consolas, monospace">`,
      ...this.parts,
      '</g>',
      '</svg>',
      '',
    ].join('\n');
  }
}
