// The plots' bitmap font and raster canvas. The font is 5 columns wide, 7 rows above the
// baseline plus 2 descender rows (so g, j, p, q, y hang below the line and "g" no longer reads
// as "9"); glyphs drawn for this project, public domain. No node: imports (a browser page uses it).
import { encodePng } from './data/image.ts';

// ---------------------------------------------------------------- font

// ASCII 32..126; each glyph is 7 rows of 5 bits (bit 4 = leftmost column) above the baseline,
// optionally followed by 2 descender rows.
const FONT_DATA = [
  '00 00 00 00 00 00 00', '04 04 04 04 00 00 04', '0A 0A 0A 00 00 00 00', '0A 0A 1F 0A 1F 0A 0A', // space ! " #
  '04 0F 14 0E 05 1E 04', '18 19 02 04 08 13 03', '0C 12 14 08 15 12 0D', '0C 04 08 00 00 00 00', // $ % & '
  '02 04 08 08 08 04 02', '08 04 02 02 02 04 08', '00 04 15 0E 15 04 00', '00 04 04 1F 04 04 00', // ( ) * +
  '00 00 00 00 00 0C 0C 04 08', '00 00 00 1F 00 00 00', '00 00 00 00 00 0C 0C', '00 01 02 04 08 10 00', // , - . /
  '0E 11 13 15 19 11 0E', '04 0C 04 04 04 04 0E', '0E 11 01 02 04 08 1F', '1F 02 04 02 01 11 0E', // 0 1 2 3
  '02 06 0A 12 1F 02 02', '1F 10 1E 01 01 11 0E', '06 08 10 1E 11 11 0E', '1F 01 02 04 08 08 08', // 4 5 6 7
  '0E 11 11 0E 11 11 0E', '0E 11 11 0F 01 02 0C', '00 0C 0C 00 0C 0C 00', '00 0C 0C 00 00 0C 0C 04 08', // 8 9 : ;
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
  '01 01 0D 13 11 11 0F', '00 00 0E 11 1F 10 0E', '06 09 08 1C 08 08 08', '00 00 0F 11 11 11 0F 01 0E', // d e f g
  '10 10 16 19 11 11 11', '04 00 0C 04 04 04 0E', '02 00 06 02 02 02 02 12 0C', '10 10 12 14 18 14 12', // h i j k
  '0C 04 04 04 04 04 0E', '00 00 1A 15 15 11 11', '00 00 16 19 11 11 11', '00 00 0E 11 11 11 0E', // l m n o
  '00 00 1E 11 11 11 1E 10 10', '00 00 0F 11 11 11 0F 01 01', '00 00 16 19 10 10 10', '00 00 0E 10 0E 01 1E', // p q r s
  '08 08 1C 08 08 09 06', '00 00 11 11 11 13 0D', '00 00 11 11 11 0A 04', '00 00 11 11 15 15 0A', // t u v w
  '00 00 11 0A 04 0A 11', '00 00 11 11 11 13 0D 01 0E', '00 00 1F 02 04 08 1F', '02 04 04 08 04 04 02', // x y z {
  '04 04 04 04 04 04 04', '08 04 04 02 04 04 08', '00 00 08 15 02 00 00', // | } ~
];
const FONT = FONT_DATA.map((g) => g.split(' ').map((h) => parseInt(h, 16)));
const UNKNOWN = [0x1f, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1f]; // box for characters outside ASCII

export const GLYPH_W = 5;
/** rows above the baseline (the height layout reserves for a line of text) */
export const GLYPH_H = 7;
/** rows drawn at most, descenders included */
export const GLYPH_ROWS = 9;
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
      for (let r = 0; r < g.length; r++)
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

  /** Connected segments of 2 px; dashed lines keep their dash phase along the whole polyline. */
  polyline(pts: readonly [number, number][], c: RGB, width = 2, dashed = false): void {
    let phase = 0;
    for (let i = 1; i < pts.length; i++) {
      const [ax, ay] = pts[i - 1];
      const [bx, by] = pts[i];
      if (!dashed) {
        this.line(ax, ay, bx, by, c, width);
        continue;
      }
      // dash by walking the segment in 1 px steps: 6 on, 4 off
      const steps = Math.max(1, Math.ceil(Math.hypot(bx - ax, by - ay)));
      for (let t = 0; t < steps; t++, phase++) {
        if (phase % 10 >= 6) continue;
        const a = t / steps;
        const b = (t + 1) / steps;
        this.line(ax + (bx - ax) * a, ay + (by - ay) * a, ax + (bx - ax) * b, ay + (by - ay) * b, c, width);
      }
    }
  }

  toPng(): Uint8Array {
    return encodePng(this.data, this.width, this.height, 3);
  }
}

/** Width in pixels of a string at a scale. */
export function textWidth(s: string, scale = 1): number {
  return s.length === 0 ? 0 : ([...s].length * CHAR_ADVANCE - 1) * scale;
}
