// Image decoding (PNG via pngjs, JPEG via jpeg-js), channel conversion,
// resampling and PNG/JPEG encoding for fixtures and contact sheets.
// Internally images are planar CHW uint8, matching Split.images.
import pngjs from 'pngjs';
import jpeg from 'jpeg-js';

const { PNG } = pngjs;

/**
 * pngjs reads and writes only its own Buffer class: Node's Buffer, and in the page the polyfill
 * its browser bundle carries (the web build aliases pngjs to pngjs/browser.js). Taken from a PNG
 * pngjs writes, so this file needs no `Buffer` global.
 */
type PngBufferClass = { new (...a: never[]): Uint8Array; from(a: ArrayBufferLike, offset: number, length: number): Uint8Array };
let PngBuffer: PngBufferClass | null = null;
/** The bytes as pngjs' Buffer class (a view, no copy). */
function pngBytes(b: Uint8Array): Uint8Array {
  PngBuffer ??= (PNG.sync.write(new PNG({ width: 1, height: 1 })) as object).constructor as PngBufferClass;
  return PngBuffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** Decoded image, always 8-bit RGBA interleaved. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Default pixel limit of a decoded image (width x height): 100 megapixels. */
export const DEFAULT_MAX_PIXELS = 100_000_000;

export interface DecodeOptions {
  /**
   * Refuse images with more pixels than this (default DEFAULT_MAX_PIXELS), read from the PNG IHDR
   * or JPEG SOF header before anything is decoded: a tiny file can declare gigabytes of pixels.
   */
  maxPixels?: number;
  /**
   * How 16-bit PNGs become 8-bit: 'full' maps 0..65535 linearly (default);
   * 'minmax' stretches each image's own range (useful for 12-bit X-rays stored in 16-bit).
   */
  depth16?: 'full' | 'minmax';
}

export type ImageFormat = 'png' | 'jpeg' | 'unknown';

export function sniffFormat(buf: Uint8Array): ImageFormat {
  if (buf.length >= 8 && buf[0] === 0x89 && buf[1] === 0x50 && buf[2] === 0x4e && buf[3] === 0x47) return 'png';
  if (buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff) return 'jpeg';
  return 'unknown';
}

/** Width and height from a PNG IHDR or a JPEG SOF header, without decoding; undefined if not found. */
export function imageDimensions(buf: Uint8Array): { width: number; height: number } | undefined {
  const fmt = sniffFormat(buf);
  const be16 = (p: number) => (buf[p] << 8) | buf[p + 1];
  const be32 = (p: number) => ((buf[p] << 24) >>> 0) + (buf[p + 1] << 16) + (buf[p + 2] << 8) + buf[p + 3];
  if (fmt === 'png') {
    // signature 8, chunk length 4, 'IHDR' 4, then width and height (big-endian).
    if (buf.length < 24 || String.fromCharCode(buf[12], buf[13], buf[14], buf[15]) !== 'IHDR') return undefined;
    return { width: be32(16), height: be32(20) };
  }
  if (fmt === 'jpeg') {
    // Walk the marker segments up to the first start-of-frame (SOF0..SOF15 but DHT C4, JPG C8, DAC CC).
    let p = 2;
    while (p + 4 <= buf.length) {
      if (buf[p] !== 0xff) return undefined;
      const m = buf[p + 1];
      if (m === 0xff) {
        p++; // fill byte
        continue;
      }
      if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
        p += 2; // markers without a length
        continue;
      }
      if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
        if (p + 9 > buf.length) return undefined;
        return { height: be16(p + 5), width: be16(p + 7) };
      }
      if (m === 0xda || m === 0xd9) return undefined; // scan data before any frame header
      p += 2 + be16(p + 2);
    }
  }
  return undefined;
}

/** Throws, naming the file and its dimensions, when the header declares more than the pixel limit. */
function checkPixels(buf: Uint8Array, file: string, opts: DecodeOptions): void {
  const max = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const d = imageDimensions(buf);
  if (d && d.width * d.height > max)
    throw new Error(
      `${file}: image is ${d.width}x${d.height} (${((d.width * d.height) / 1e6).toFixed(1)} megapixels), over the limit of ${(max / 1e6).toFixed(1)} megapixels (--max-pixels); not decoded`,
    );
}

export function decodePng(buf: Uint8Array, file = '<png>', opts: DecodeOptions = {}): RgbaImage {
  checkPixels(buf, file, opts);
  const b = pngBytes(buf);
  // Bit depth is byte 24 (signature 8 + chunk len 4 + 'IHDR' 4 + width 4 + height 4).
  // Only 16-bit input skips pngjs' rescale: with skipRescale, 1/2/4-bit gray would stay unscaled.
  const depth = b.length > 24 ? b[24] : 8;
  let png: { width: number; height: number; data: Uint8Array | Uint16Array };
  try {
    png = PNG.sync.read(b as Parameters<typeof PNG.sync.read>[0], { skipRescale: depth === 16 }) as unknown as typeof png;
  } catch (e) {
    throw new Error(`${file}: cannot decode PNG: ${(e as Error).message}`);
  }
  const { width, height } = png;
  const n = width * height * 4;
  if (png.data instanceof Uint16Array) {
    const src = png.data;
    const out = new Uint8Array(n);
    if (opts.depth16 === 'minmax') {
      let lo = 65535;
      let hi = 0;
      for (let i = 0; i < n; i++) {
        if ((i & 3) === 3) continue;
        const v = src[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const s = hi > lo ? 255 / (hi - lo) : 0;
      for (let i = 0; i < n; i++) out[i] = (i & 3) === 3 ? Math.round(src[i] / 257) : Math.round((src[i] - lo) * s);
    } else {
      for (let i = 0; i < n; i++) out[i] = Math.round(src[i] / 257);
    }
    return { width, height, data: out };
  }
  const d = png.data;
  return { width, height, data: new Uint8Array(d.buffer, d.byteOffset, n) };
}

export function decodeJpeg(buf: Uint8Array, file = '<jpeg>', opts: DecodeOptions = {}): RgbaImage {
  checkPixels(buf, file, opts);
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  try {
    // jpeg-js' own limits backstop the header check (frames it finds past a malformed prefix).
    const img = jpeg.decode(buf, {
      useTArray: true,
      formatAsRGBA: true,
      tolerantDecoding: true,
      maxResolutionInMP: maxPixels / 1e6,
      maxMemoryUsageInMB: Math.max(2048, Math.ceil((maxPixels * 8) / 2 ** 20)),
    });
    return { width: img.width, height: img.height, data: img.data };
  } catch (e) {
    throw new Error(`${file}: cannot decode JPEG: ${(e as Error).message ?? e}`);
  }
}

/** Decode PNG or JPEG by content (not by extension). */
export function decodeImage(buf: Uint8Array, file = '<image>', opts: DecodeOptions = {}): RgbaImage {
  const fmt = sniffFormat(buf);
  if (fmt === 'png') return decodePng(buf, file, opts);
  if (fmt === 'jpeg') return decodeJpeg(buf, file, opts);
  if (buf.length === 0) throw new Error(`${file}: empty file`);
  throw new Error(`${file}: unsupported image format (only PNG and JPEG are read; convert DICOM/BMP/TIFF first)`);
}

/** RGBA interleaved -> planar CHW with 1 (luma 0.299/0.587/0.114) or 3 channels. Alpha is ignored. */
export function toChannels(img: RgbaImage, channels: 1 | 3): Uint8Array {
  const hw = img.width * img.height;
  const d = img.data;
  if (channels === 1) {
    const out = new Uint8Array(hw);
    for (let p = 0, q = 0; p < hw; p++, q += 4) out[p] = Math.round(0.299 * d[q] + 0.587 * d[q + 1] + 0.114 * d[q + 2]);
    return out;
  }
  const out = new Uint8Array(3 * hw);
  for (let p = 0, q = 0; p < hw; p++, q += 4) {
    out[p] = d[q];
    out[hw + p] = d[q + 1];
    out[2 * hw + p] = d[q + 2];
  }
  return out;
}

interface AxisTaps {
  taps: number;
  idx: Int32Array; // out*taps source indices
  w: Float32Array; // out*taps weights
}

/** Per-output source taps: area (box) weights when shrinking, bilinear (half-pixel centres) otherwise. */
function axisTaps(inN: number, outN: number): AxisTaps {
  if (outN < inN) {
    const scale = inN / outN;
    const taps = Math.ceil(scale) + 1;
    const idx = new Int32Array(outN * taps);
    const w = new Float32Array(outN * taps);
    for (let j = 0; j < outN; j++) {
      const x0 = j * scale;
      const x1 = Math.min(inN, (j + 1) * scale);
      let k = 0;
      for (let i = Math.floor(x0); i < x1 && k < taps; i++) {
        const ov = Math.min(i + 1, x1) - Math.max(i, x0);
        if (ov <= 1e-9) continue;
        idx[j * taps + k] = i;
        w[j * taps + k] = ov / scale;
        k++;
      }
    }
    return { taps, idx, w };
  }
  const idx = new Int32Array(outN * 2);
  const w = new Float32Array(outN * 2);
  const r = inN / outN;
  for (let j = 0; j < outN; j++) {
    const x = Math.min(Math.max((j + 0.5) * r - 0.5, 0), inN - 1);
    const i0 = Math.floor(x);
    const i1 = Math.min(i0 + 1, inN - 1);
    const f = x - i0;
    idx[2 * j] = i0;
    idx[2 * j + 1] = i1;
    w[2 * j] = 1 - f;
    w[2 * j + 1] = f;
  }
  return { taps: 2, idx, w };
}

/** Resample planar CHW uint8 (C,h,w) -> (C,outH,outW): area averaging to shrink, bilinear to enlarge. */
export function resize(src: Uint8Array, channels: number, h: number, w: number, outH: number, outW: number): Uint8Array {
  if (src.length !== channels * h * w) throw new Error(`resize: got ${src.length} values for ${channels}x${h}x${w}`);
  if (h === outH && w === outW) return src.slice();
  const tx = axisTaps(w, outW);
  const ty = axisTaps(h, outH);
  const tmp = new Float32Array(channels * h * outW);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < h; y++) {
      const row = (c * h + y) * w;
      const orow = (c * h + y) * outW;
      for (let x = 0; x < outW; x++) {
        let s = 0;
        const b = x * tx.taps;
        for (let k = 0; k < tx.taps; k++) s += tx.w[b + k] * src[row + tx.idx[b + k]];
        tmp[orow + x] = s;
      }
    }
  }
  const out = new Uint8Array(channels * outH * outW);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < outH; y++) {
      const b = y * ty.taps;
      const orow = (c * outH + y) * outW;
      for (let x = 0; x < outW; x++) {
        let s = 0;
        for (let k = 0; k < ty.taps; k++) s += ty.w[b + k] * tmp[(c * h + ty.idx[b + k]) * outW + x];
        out[orow + x] = s <= 0 ? 0 : s >= 255 ? 255 : Math.round(s);
      }
    }
  }
  return out;
}

/** Centre crop of planar CHW uint8. */
export function centerCrop(src: Uint8Array, channels: number, h: number, w: number, cropH: number, cropW: number): Uint8Array {
  if (cropH > h || cropW > w) throw new Error(`centerCrop: ${cropH}x${cropW} larger than ${h}x${w}`);
  const y0 = Math.floor((h - cropH) / 2);
  const x0 = Math.floor((w - cropW) / 2);
  const out = new Uint8Array(channels * cropH * cropW);
  for (let c = 0; c < channels; c++)
    for (let y = 0; y < cropH; y++) {
      const s = (c * h + y0 + y) * w + x0;
      out.set(src.subarray(s, s + cropW), (c * cropH + y) * cropW);
    }
  return out;
}

export interface PrepareOptions {
  /** Output height/width (square when only size is given). */
  size?: number;
  height?: number;
  width?: number;
  channels: 1 | 3;
  /** 'cover' centre-crops to the output aspect first (no distortion, MedMNIST style); 'stretch' resizes directly. */
  fit?: 'cover' | 'stretch';
  depth16?: 'full' | 'minmax';
  /** Pixel limit per image (see DecodeOptions.maxPixels). */
  maxPixels?: number;
}

/** Decode -> channels -> (crop) -> resize: file bytes to model-ready planar CHW uint8. */
export function prepareImage(buf: Uint8Array, file: string, opts: PrepareOptions): Uint8Array {
  const img = decodeImage(buf, file, { depth16: opts.depth16, maxPixels: opts.maxPixels });
  const outH = opts.height ?? opts.size ?? img.height;
  const outW = opts.width ?? opts.size ?? img.width;
  let px = toChannels(img, opts.channels);
  let h = img.height;
  let w = img.width;
  if ((opts.fit ?? 'cover') === 'cover') {
    // Largest centred window with the output aspect ratio.
    const target = outW / outH;
    let ch = h;
    let cw = Math.round(h * target);
    if (cw > w) {
      cw = w;
      ch = Math.round(w / target);
    }
    if (ch !== h || cw !== w) {
      px = centerCrop(px, opts.channels, h, w, ch, cw);
      h = ch;
      w = cw;
    }
  }
  return resize(px, opts.channels, h, w, outH, outW);
}

/** Planar CHW -> interleaved HWC. */
export function chwToHwc(src: Uint8Array, channels: number, h: number, w: number): Uint8Array {
  if (channels === 1) return src.slice();
  const hw = h * w;
  const out = new Uint8Array(src.length);
  for (let p = 0; p < hw; p++) for (let c = 0; c < channels; c++) out[p * channels + c] = src[c * hw + p];
  return out;
}

const COLOR_TYPE: Record<number, 0 | 2 | 4 | 6> = { 1: 0, 2: 4, 3: 2, 4: 6 };

/**
 * Encode interleaved HWC pixels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) as PNG.
 * For bitDepth 16 pass a Uint16Array (values 0..65535).
 */
export function encodePng(pixels: Uint8Array | Uint16Array, width: number, height: number, channels: 1 | 2 | 3 | 4, bitDepth: 8 | 16 = 8): Uint8Array {
  if (pixels.length !== width * height * channels) throw new Error(`encodePng: ${pixels.length} values for ${width}x${height}x${channels}`);
  let data: Uint8Array;
  if (bitDepth === 16) {
    // pngjs reads 16-bit input as native-endian uint16 from data.buffer at offset 0, so hand it a fresh buffer.
    const u16 = pixels instanceof Uint16Array ? Uint16Array.from(pixels) : Uint16Array.from(pixels, (v) => v * 257);
    data = pngBytes(new Uint8Array(u16.buffer, 0, u16.byteLength));
  } else {
    if (pixels instanceof Uint16Array) throw new Error('encodePng: 8-bit output needs Uint8Array pixels');
    data = pngBytes(pixels);
  }
  const colorType = COLOR_TYPE[channels];
  return PNG.sync.write({ width, height, data } as unknown as InstanceType<typeof PNG>, {
    colorType,
    inputColorType: colorType,
    inputHasAlpha: channels === 2 || channels === 4,
    bitDepth,
  });
}

/** Encode interleaved HWC 8-bit pixels (1, 3 or 4 channels) as baseline JPEG. */
export function encodeJpeg(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4, quality = 90): Uint8Array {
  const rgba = new Uint8Array(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    for (let k = 0; k < 3; k++) rgba[p * 4 + k] = channels === 1 ? pixels[p] : pixels[p * channels + k];
    rgba[p * 4 + 3] = 255;
  }
  return jpeg.encode({ data: rgba, width, height }, quality).data;
}

export interface ContactSheetOptions {
  cols?: number;
  /** Integer pixel magnification (nearest neighbour). */
  scale?: number;
  /** Gap between tiles in output pixels. */
  pad?: number;
  background?: number;
}

/** Tile NCHW uint8 images into one interleaved image (gray or RGB). */
export function contactSheet(images: Uint8Array, n: number, channels: number, h: number, w: number, opts: ContactSheetOptions = {}) {
  const cols = opts.cols ?? Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const s = opts.scale ?? 1;
  const pad = opts.pad ?? 2;
  const W = cols * (w * s + pad) + pad;
  const H = rows * (h * s + pad) + pad;
  const oc = channels === 1 ? 1 : 3;
  const out = new Uint8Array(W * H * oc).fill(opts.background ?? 40);
  const px = channels * h * w;
  for (let i = 0; i < n; i++) {
    const ox = pad + (i % cols) * (w * s + pad);
    const oy = pad + Math.floor(i / cols) * (h * s + pad);
    for (let y = 0; y < h * s; y++)
      for (let x = 0; x < w * s; x++)
        for (let c = 0; c < oc; c++)
          out[((oy + y) * W + ox + x) * oc + c] = images[i * px + c * h * w + Math.floor(y / s) * w + Math.floor(x / s)];
  }
  return { data: out, width: W, height: H, channels: oc as 1 | 3 };
}
