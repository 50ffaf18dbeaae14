// Turning Grad-CAM maps into pictures: bilinear upsampling, per-image normalisation, colour
// maps, an overlay of the heat map on the image and a colour bar, all as plain RGBA buffers.
// No Node imports: the browser page uses this file as it is (PNG files: node/gradcam-files.ts).
//
// Conventions follow pytorch-grad-cam: each map is min-max normalised at its own resolution,
// (m - min) / (1e-7 + max - min), then enlarged with bilinear interpolation on pixel centres
// (cv2.resize INTER_LINEAR / torch interpolate align_corners=False), then coloured and blended
// as (1 - alpha) * image + alpha * colour.

/** Interleaved 8-bit pixels, row-major: channels 1 (grey), 3 (RGB) or 4 (RGBA). */
export interface Image8 {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

/** An RGBA picture (what every renderer here returns; `Image8` with channels 4). */
export interface Rgba {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 4;
}

/** An Image8 from planar CHW bytes (what kd/data/image.ts prepareImage returns for the model's input). */
export function imageFromChw(chw: Uint8Array, channels: 1 | 3, height: number, width: number): Image8 {
  const hw = height * width;
  if (chw.length !== channels * hw) throw new RangeError(`imageFromChw: ${chw.length} bytes for ${channels}x${height}x${width}`);
  if (channels === 1) return { data: chw.slice(), width, height, channels };
  const data = new Uint8Array(hw * 3);
  for (let p = 0; p < hw; p++) for (let c = 0; c < 3; c++) data[p * 3 + c] = chw[c * hw + p];
  return { data, width, height, channels };
}

export type ColormapName = 'jet' | 'hot';

/**
 * Bilinear resize of one [h, w] map to [H, W] (pixel centres aligned: src = (dst + 0.5) * h / H - 0.5,
 * clamped at the borders; for enlarging this is cv2.resize INTER_LINEAR and torch's
 * interpolate(mode='bilinear', align_corners=False)).
 */
export function upsampleBilinear(map: ArrayLike<number>, h: number, w: number, H: number, W: number): Float32Array {
  if (map.length !== h * w) throw new RangeError(`upsampleBilinear: ${map.length} values for a ${h}x${w} map`);
  if (!(H >= 1 && W >= 1 && Number.isInteger(H) && Number.isInteger(W))) throw new RangeError(`upsampleBilinear: output size ${H}x${W} must be positive integers`);
  const out = new Float32Array(H * W);
  const axis = (n: number, N: number) => {
    const i0 = new Int32Array(N);
    const i1 = new Int32Array(N);
    const f = new Float64Array(N);
    for (let d = 0; d < N; d++) {
      const s = Math.max(0, ((d + 0.5) * n) / N - 0.5);
      const lo = Math.min(Math.floor(s), n - 1);
      i0[d] = lo;
      i1[d] = Math.min(lo + 1, n - 1);
      f[d] = s - lo;
    }
    return { i0, i1, f };
  };
  const ys = axis(h, H);
  const xs = axis(w, W);
  for (let y = 0; y < H; y++) {
    const r0 = ys.i0[y] * w;
    const r1 = ys.i1[y] * w;
    const fy = ys.f[y];
    for (let x = 0; x < W; x++) {
      const a = xs.i0[x];
      const b = xs.i1[x];
      const fx = xs.f[x];
      const top = map[r0 + a] * (1 - fx) + map[r0 + b] * fx;
      const bot = map[r1 + a] * (1 - fx) + map[r1 + b] * fx;
      out[y * W + x] = top * (1 - fy) + bot * fy;
    }
  }
  return out;
}

/** (m - min) / (eps + max - min): one map to [0, 1] (pytorch-grad-cam's scale_cam_image; an all-zero map stays 0). */
export function normalizeMap(map: ArrayLike<number>, eps = 1e-7): Float32Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < map.length; i++) {
    const v = map[i];
    if (!Number.isFinite(v)) throw new RangeError(`normalizeMap: element ${i} is ${v}`);
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const out = new Float32Array(map.length);
  const s = 1 / (eps + hi - lo);
  for (let i = 0; i < map.length; i++) out[i] = (map[i] - lo) * s;
  return out;
}

/** Map n of a [N, h, w] batch (GradCamResult.maps / .shape). */
export function mapOf(maps: Float32Array, shape: readonly [number, number, number], n: number): Float32Array {
  const [N, h, w] = shape;
  if (!(n >= 0 && n < N)) throw new RangeError(`mapOf: image ${n} of a batch of ${N}`);
  return maps.subarray(n * h * w, (n + 1) * h * w);
}

/** The map explaining image n, normalised to [0, 1] and enlarged to H x W (what an overlay shows). */
export function camToImageSize(maps: Float32Array, shape: readonly [number, number, number], n: number, H: number, W: number): Float32Array {
  const [, h, w] = shape;
  return upsampleBilinear(normalizeMap(mapOf(maps, shape, n)), h, w, H, W);
}

// matplotlib's 'jet' segment data: (position, value) knots per channel
const JET: readonly (readonly [number, number])[][] = [
  [[0, 0], [0.35, 0], [0.66, 1], [0.89, 1], [1, 0.5]],
  [[0, 0], [0.125, 0], [0.375, 1], [0.64, 1], [0.91, 0], [1, 0]],
  [[0, 0.5], [0.11, 1], [0.34, 1], [0.65, 0], [1, 0]],
];
// matplotlib's 'hot' (black -> red -> yellow -> white), same format
const HOT: readonly (readonly [number, number])[][] = [
  [[0, 0.0416], [0.365079, 1], [1, 1]],
  [[0, 0], [0.365079, 0], [0.746032, 1], [1, 1]],
  [[0, 0], [0.746032, 0], [1, 1]],
];

function knots(k: readonly (readonly [number, number])[], t: number): number {
  for (let i = 1; i < k.length; i++)
    if (t <= k[i][0]) {
      const [x0, y0] = k[i - 1];
      const [x1, y1] = k[i];
      return y0 + ((t - x0) / (x1 - x0)) * (y1 - y0);
    }
  return k[k.length - 1][1];
}

/** The colour of t in [0, 1] (clamped) as [r, g, b] bytes. */
export function colormap(t: number, name: ColormapName = 'jet'): [number, number, number] {
  if (name !== 'jet' && name !== 'hot') throw new RangeError(`colormap: unknown colour map "${name}" (jet, hot)`);
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0));
  const rgb = [0, 1, 2].map((c) => {
    const v = knots((name === 'jet' ? JET : HOT)[c], x);
    return Math.round(255 * Math.min(1, Math.max(0, v)));
  });
  return rgb as [number, number, number];
}

/** A 256-entry RGB lookup table (index = round(255 t)). */
export function colormapLut(name: ColormapName = 'jet'): Uint8Array {
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) lut.set(colormap(i / 255, name), i * 3);
  return lut;
}

/** A [0, 1] heat map [H, W] coloured as RGBA. */
export function colorize(heat: ArrayLike<number>, width: number, height: number, name: ColormapName = 'jet'): Rgba {
  if (heat.length !== width * height) throw new RangeError(`colorize: ${heat.length} values for ${width}x${height}`);
  const lut = colormapLut(name);
  const data = new Uint8Array(width * height * 4);
  for (let p = 0; p < heat.length; p++) {
    const i = 3 * Math.round(255 * Math.min(1, Math.max(0, heat[p] || 0)));
    data[p * 4] = lut[i];
    data[p * 4 + 1] = lut[i + 1];
    data[p * 4 + 2] = lut[i + 2];
    data[p * 4 + 3] = 255;
  }
  return { data, width, height, channels: 4 };
}

/** Nearest-neighbour integer enlargement (keeps the image's pixels visible under the heat map). */
export function enlarge(img: Image8, scale: number): Image8 {
  if (!Number.isInteger(scale) || scale < 1) throw new RangeError(`enlarge: scale must be a positive integer, got ${scale}`);
  if (scale === 1) return img;
  const { width: w, height: h, channels: c } = img;
  const W = w * scale;
  const data = new Uint8Array(W * h * scale * c);
  for (let y = 0; y < h * scale; y++)
    for (let x = 0; x < W; x++) {
      const s = (Math.floor(y / scale) * w + Math.floor(x / scale)) * c;
      data.set(img.data.subarray(s, s + c), (y * W + x) * c);
    }
  return { data, width: W, height: h * scale, channels: c };
}

function checkImage(img: Image8, what: string): void {
  if (![1, 3, 4].includes(img.channels)) throw new RangeError(`${what}: channels must be 1, 3 or 4, got ${img.channels}`);
  if (img.data.length !== img.width * img.height * img.channels) throw new RangeError(`${what}: ${img.data.length} bytes for a ${img.width}x${img.height}x${img.channels} image`);
}

/** (1 - alpha) * image + alpha * colour(heat); heat is [0, 1] at the image's size. Grey images become RGB. */
export function overlayHeatmap(img: Image8, heat: ArrayLike<number>, opts: { alpha?: number; colormap?: ColormapName } = {}): Rgba {
  checkImage(img, 'overlayHeatmap');
  const alpha = opts.alpha ?? 0.5;
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`overlayHeatmap: alpha must be in [0, 1], got ${alpha}`);
  const { width: W, height: H, channels: c } = img;
  if (heat.length !== W * H) throw new RangeError(`overlayHeatmap: heat map has ${heat.length} values, the image is ${W}x${H} (upsample it first: camToImageSize)`);
  const col = colorize(heat, W, H, opts.colormap);
  const data = new Uint8Array(W * H * 4);
  for (let p = 0; p < W * H; p++) {
    for (let k = 0; k < 3; k++) {
      const v = img.data[p * c + (c === 1 ? 0 : k)];
      data[p * 4 + k] = Math.round((1 - alpha) * v + alpha * col.data[p * 4 + k]);
    }
    data[p * 4 + 3] = 255;
  }
  return { data, width: W, height: H, channels: 4 };
}

// 3x5 bitmap digits for the colour bar's labels (bit 2 = left column)
const GLYPHS: Record<string, number[]> = {
  '0': [7, 5, 5, 5, 7], '1': [2, 6, 2, 2, 7], '2': [7, 1, 7, 4, 7], '3': [7, 1, 7, 1, 7], '4': [5, 5, 7, 1, 1],
  '5': [7, 4, 7, 1, 7], '6': [7, 4, 7, 5, 7], '7': [7, 1, 1, 1, 1], '8': [7, 5, 7, 5, 7], '9': [7, 5, 7, 1, 7],
  '.': [0, 0, 0, 0, 2], '-': [0, 0, 7, 0, 0], 'e': [0, 7, 7, 4, 7], '+': [0, 2, 7, 2, 0],
};

function drawText(out: Rgba, text: string, x0: number, y0: number, px: number, rgb: readonly [number, number, number]): void {
  let x = x0;
  for (const ch of text) {
    const g = GLYPHS[ch];
    if (g)
      for (let r = 0; r < 5; r++)
        for (let col = 0; col < 3; col++)
          if (g[r] & (4 >> col)) fillRect(out, x + col * px, y0 + r * px, px, px, rgb);
    x += 4 * px;
  }
}

function fillRect(out: Rgba, x0: number, y0: number, w: number, h: number, rgb: readonly [number, number, number]): void {
  for (let y = Math.max(0, y0); y < Math.min(out.height, y0 + h); y++)
    for (let x = Math.max(0, x0); x < Math.min(out.width, x0 + w); x++) {
      const o = (y * out.width + x) * 4;
      out.data[o] = rgb[0];
      out.data[o + 1] = rgb[1];
      out.data[o + 2] = rgb[2];
      out.data[o + 3] = 255;
    }
}

export interface FigureOptions {
  /** heat-map opacity (default 0.5, pytorch-grad-cam's image_weight) */
  alpha?: number;
  colormap?: ColormapName;
  /** integer enlargement of the image (default: the smallest making its longer side >= 224 px) */
  scale?: number;
  /** colour bar tick values in [0, 1] and their labels (default 0, 0.5, 1: the normalised map) */
  ticks?: readonly number[];
  /** labels of the ticks (default the values; drawn with a digits-only font: 0-9 . - + e) */
  tickLabels?: readonly string[];
}

/**
 * The picture `kd/predict.ts --cam` writes: the image (enlarged) with the heat map over it, and to
 * its right a vertical colour bar (1 at the top) with ticks. `map` is one raw Grad-CAM map [h, w]
 * (any scale; it is normalised here) and `image` the input picture at the model's input size.
 */
export function renderCamFigure(image: Image8, map: ArrayLike<number>, mapH: number, mapW: number, opts: FigureOptions = {}): Rgba {
  checkImage(image, 'renderCamFigure');
  const scale = opts.scale ?? Math.max(1, Math.ceil(224 / Math.max(image.width, image.height)));
  const big = enlarge(image, scale);
  const W = big.width;
  const H = big.height;
  const heat = upsampleBilinear(normalizeMap(map), mapH, mapW, H, W);
  const over = overlayHeatmap(big, heat, opts);

  const ticks = opts.ticks ?? [0, 0.5, 1];
  const labels = opts.tickLabels ?? ticks.map((t) => String(t));
  if (labels.length !== ticks.length) throw new RangeError(`renderCamFigure: ${labels.length} tick labels for ${ticks.length} ticks`);
  const px = Math.max(1, Math.round(H / 112)); // font pixel size
  const pad = Math.max(4, 4 * px);
  const barW = Math.max(8, Math.round(W / 16));
  const labelW = Math.max(...labels.map((l) => l.length), 1) * 4 * px;
  const tick = 3 * px;
  const gap = 2 * px; // between a tick mark and its label, so the pair does not read as a minus sign
  const width = pad + W + pad + barW + tick + gap + labelW + pad;
  const height = H + 2 * pad;
  const out: Rgba = { data: new Uint8Array(width * height * 4), width, height, channels: 4 };
  fillRect(out, 0, 0, width, height, [255, 255, 255]);
  for (let y = 0; y < H; y++) out.data.set(over.data.subarray(y * W * 4, (y + 1) * W * 4), ((y + pad) * width + pad) * 4);

  const lut = colormapLut(opts.colormap);
  const bx = pad + W + pad;
  for (let y = 0; y < H; y++) {
    const i = 3 * Math.round((255 * (H - 1 - y)) / Math.max(1, H - 1));
    fillRect(out, bx, pad + y, barW, 1, [lut[i], lut[i + 1], lut[i + 2]]);
  }
  const black = [0, 0, 0] as const;
  ticks.forEach((t, k) => {
    if (!(t >= 0 && t <= 1)) throw new RangeError(`renderCamFigure: tick ${t} is outside [0, 1]`);
    const y = pad + Math.round((1 - t) * (H - 1));
    fillRect(out, bx + barW, y, tick, px, black);
    const ty = Math.min(Math.max(0, y - Math.floor((5 * px) / 2)), height - 5 * px);
    drawText(out, labels[k], bx + barW + tick + gap, ty, px, black);
  });
  return out;
}

/** A .npy (NumPy format 1.0, little-endian float32, C order) file's bytes: the raw-map output. */
export function encodeNpy(data: Float32Array, shape: readonly number[]): Uint8Array {
  const n = shape.reduce((a, d) => a * d, 1);
  if (n !== data.length) throw new RangeError(`encodeNpy: ${data.length} values for shape [${shape.join(', ')}]`);
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.length * 4);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0); // \x93NUMPY v1.0
  out[8] = header.length & 0xff;
  out[9] = header.length >> 8;
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  const view = new DataView(out.buffer, 10 + header.length);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
  return out;
}
