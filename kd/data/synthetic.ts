// Deterministic synthetic chest-X-ray-like phantoms, so the whole pipeline can
// be exercised (and tested) without downloading anything. Each image is an
// analytic scene (body outline, dark lung fields, ribs, spine, heart) rendered
// directly at the target size with soft (about one pixel) edges, plus pose
// jitter, exposure jitter, faint vessel markings and acquisition noise.
// Classes differ only in one finding, whose strength varies from obvious
// to subtle, so a small CNN gets high but not perfect accuracy.
import { type Dataset, type Split, makeDataset } from './dataset.ts';
import { Rng } from '../../engine/rng.ts';

export const SYNTHETIC_CLASSES = ['normal', 'consolidation', 'effusion', 'cardiomegaly'] as const;

export interface SyntheticOptions {
  /** Counts per split (also accepted as top-level train/val/test). Defaults 2000/500/500. */
  n?: { train?: number; val?: number; test?: number };
  train?: number;
  val?: number;
  test?: number;
  /** Square image size (default 28). */
  size?: number;
  seed?: number;
  /** 1 (default) or 3 (gray replicated, for RGB models). */
  channels?: 1 | 3;
  /**
   * Scales how subtle the findings can be: 1 = default mix of obvious and subtle
   * cases; 0 = all findings obvious; 2 = many borderline cases.
   */
  difficulty?: number;
}

const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);

/** Soft inside-ness of an ellipse: 1 inside, 0 outside, linear ramp ~1 pixel wide. */
function ellipse(u: number, v: number, cx: number, cy: number, rx: number, ry: number, px: number): number {
  const dx = (u - cx) / rx;
  const dy = (v - cy) / ry;
  const d = Math.sqrt(dx * dx + dy * dy);
  return clamp01(0.5 + ((1 - d) * Math.min(rx, ry)) / px);
}

interface Scene {
  // pose (image <- body): rotation, scale, translation
  cos: number;
  sin: number;
  scale: number;
  tx: number;
  ty: number;
  // anatomy
  bodyW: number;
  tissue: number;
  background: number;
  lungVal: number;
  lungW: number;
  lungH: number;
  heartScale: number;
  heartX: number;
  ribPhase: number;
  ribGain: number;
  vessels: { x: number; y: number; r: number; a: number }[];
  // findings
  consolidation?: { side: number; x: number; y: number; r: number; a: number; fu: number; fv: number; pu: number; pv: number };
  effusion?: { side: number; h: number; m: number; a: number };
  // exposure
  gamma: number;
  contrast: number;
  brightness: number;
  noise: number;
}

function makeScene(cls: number, rng: Rng, difficulty: number): Scene {
  const ang = rng.uniform(-6, 6) * (Math.PI / 180);
  // Subtlety s in [0,1]: 0 = obvious; higher difficulty pushes towards subtle.
  const subtle = () => Math.pow(rng.next(), 1 / Math.max(difficulty, 1e-3));
  const heartNormal = 1 + 0.09 * rng.normal();
  const sc: Scene = {
    cos: Math.cos(ang),
    sin: Math.sin(ang),
    scale: rng.uniform(0.9, 1.06),
    tx: rng.uniform(-0.06, 0.06),
    ty: rng.uniform(-0.06, 0.06),
    bodyW: rng.uniform(0.84, 0.95),
    tissue: rng.uniform(0.5, 0.62),
    background: rng.uniform(0.02, 0.1),
    lungVal: rng.uniform(0.14, 0.24),
    lungW: rng.uniform(0.25, 0.3),
    lungH: rng.uniform(0.55, 0.64),
    heartScale: Math.min(1.22, Math.max(0.82, heartNormal)),
    heartX: rng.uniform(0.03, 0.1),
    ribPhase: rng.uniform(0, 1),
    ribGain: rng.uniform(0.05, 0.12),
    vessels: [],
    gamma: rng.uniform(0.85, 1.18),
    contrast: rng.uniform(0.85, 1.15),
    brightness: rng.uniform(-0.05, 0.05),
    noise: rng.uniform(0.02, 0.05),
  };
  const nv = 2 + rng.int(4);
  for (let k = 0; k < nv; k++) {
    const side = rng.next() < 0.5 ? -1 : 1;
    sc.vessels.push({ x: side * rng.uniform(0.22, 0.46), y: rng.uniform(-0.4, 0.3), r: rng.uniform(0.04, 0.09), a: rng.uniform(0.02, 0.08) });
  }
  if (cls === 1) {
    const s = subtle();
    const f = rng.uniform(8, 16);
    sc.consolidation = {
      side: rng.next() < 0.5 ? -1 : 1,
      // Kept clear of the heart shadow, where an opacity would be invisible.
      x: rng.uniform(-0.5, 0.5),
      y: rng.uniform(-0.6, 0.25),
      r: rng.uniform(0.13, 0.22) * (1 - 0.3 * s),
      a: 0.4 - 0.26 * s, // 0.40 obvious .. 0.14 subtle (vessel markings reach 0.08)
      fu: f,
      fv: f * rng.uniform(0.8, 1.25),
      pu: rng.uniform(0, 6.3),
      pv: rng.uniform(0, 6.3),
    };
  } else if (cls === 2) {
    const s = subtle();
    sc.effusion = { side: rng.next() < 0.5 ? -1 : 1, h: 0.36 - 0.27 * s, m: rng.uniform(0.15, 0.4), a: rng.uniform(0.65, 0.9) };
  } else if (cls === 3) {
    const s = subtle();
    sc.heartScale = 1.5 - 0.3 * s + 0.04 * rng.normal(); // overlaps the top of the normal range when subtle
  }
  return sc;
}

/** Soft inside-ness of a superellipse (|dx|^4+|dy|^4 <= 1): a boxy torso outline. */
function torso(u: number, v: number, cx: number, cy: number, rx: number, ry: number, px: number): number {
  const dx = (u - cx) / rx;
  const dy = (v - cy) / ry;
  const q = dx * dx * dx * dx + dy * dy * dy * dy;
  if (q > 1.6) return 0;
  // d(q^(1/4)) ~ distance in radius units near the boundary.
  return clamp01(0.5 + ((1 - Math.sqrt(Math.sqrt(q))) * Math.min(rx, ry)) / px);
}

// Cheap approximately-normal noise: Irwin-Hall sum of the four bytes of one draw, unit variance.
function approxNormal(rng: Rng): number {
  const r = rng.u32();
  return ((r & 255) + ((r >>> 8) & 255) + ((r >>> 16) & 255) + (r >>> 24) - 510) * (1.7320508 / 255);
}

const LUT_N = 128;

/** Render one phantom into out[offset .. offset+size*size) as uint8. */
function render(sc: Scene, rng: Rng, size: number, out: Uint8Array, offset: number): void {
  const px = 2 / size;
  const pxb = px / sc.scale;
  const cons = sc.consolidation;
  const eff = sc.effusion;
  // Exposure curve (gamma, contrast, brightness) as a lookup table: pow() per pixel is slow.
  const lut = new Float32Array(LUT_N + 1);
  for (let k = 0; k <= LUT_N; k++) lut[k] = Math.pow(k / LUT_N, sc.gamma) * sc.contrast + sc.brightness;
  const hrx = 0.28 * sc.heartScale;
  const hry = 0.25 * (0.8 + 0.2 * sc.heartScale);
  const hcx = sc.heartX + 0.04 * (sc.heartScale - 1);
  const hcy = 0.24;
  const consCx = cons ? cons.side * 0.37 + cons.x * sc.lungW : 0;
  const consCy = cons ? -0.08 + cons.y * sc.lungH : 0;
  const consR2 = cons ? cons.r * cons.r : 1;
  for (let i = 0; i < size; i++) {
    const y = ((i + 0.5) / size) * 2 - 1;
    for (let j = 0; j < size; j++) {
      const x = ((j + 0.5) / size) * 2 - 1;
      // Image -> body coordinates (inverse pose).
      const dx = x - sc.tx;
      const dy = y - sc.ty;
      const u = (sc.cos * dx + sc.sin * dy) / sc.scale;
      const v = (-sc.sin * dx + sc.cos * dy) / sc.scale;

      const body = torso(u, v, 0, 0.15, sc.bodyW, 1.1, pxb);
      let val = sc.background + body * (sc.tissue - sc.background);
      // Spine / mediastinum: brighter central band.
      const au = u < 0 ? -u : u;
      val += 0.12 * clamp01(0.5 + (0.08 - au) / pxb) * body;

      // Lungs: ellipses that widen towards the base; pick the nearer one.
      const side = u < 0 ? -1 : 1;
      const lcx = side * 0.37;
      const lcy = -0.08;
      const widen = 0.78 + 0.22 * clamp01((v - lcy) / sc.lungH + 0.5);
      const lungMask = ellipse(u, v, lcx, lcy, sc.lungW * widen, sc.lungH, pxb);
      // Heart overlaps the medial lower lungs (more on the image right).
      const heart = Math.abs(u - hcx) < hrx + 0.1 && Math.abs(v - hcy) < hry + 0.1 ? ellipse(u, v, hcx, hcy, hrx, hry, pxb) : 0;
      if (lungMask > 0) {
        const lungVis = lungMask * (1 - heart);
        let lung = sc.lungVal + 0.07 * clamp01((v + 0.6) / 1.2); // slightly brighter towards the base
        if (cons && side === cons.side) {
          const d2 = ((u - consCx) * (u - consCx) + (v - consCy) * (v - consCy)) / consR2;
          if (d2 < 9) {
            const patch = 0.65 + 0.35 * Math.sin(cons.fu * u + cons.pu) * Math.sin(cons.fv * v + cons.pv);
            lung += cons.a * Math.exp(-d2) * patch;
          }
        }
        if (eff && side === eff.side) {
          const lat = clamp01((((u - lcx) * side) / sc.lungW) * 0.5 + 0.5); // 0 medial .. 1 lateral
          // Meniscus: the fluid line rises towards the lateral chest wall.
          const line = lcy + sc.lungH * (1 - 2 * eff.h) - eff.m * sc.lungH * lat * lat;
          const fluid = clamp01(0.5 + (v - line) / (1.5 * pxb));
          lung += fluid * eff.a * (sc.tissue - lung);
        }
        for (let k = 0; k < sc.vessels.length; k++) {
          const vs = sc.vessels[k];
          const d2 = ((u - vs.x) * (u - vs.x) + (v - vs.y) * (v - vs.y)) / (vs.r * vs.r);
          if (d2 < 9) lung += vs.a * Math.exp(-d2);
        }
        val = val * (1 - lungVis) + lung * lungVis;
      }
      // Heart is a bit denser than soft tissue.
      val += 0.05 * heart * body;

      // Ribs: bright arcs sloping down laterally, seen over the lungs and chest wall.
      if (body > 0 && au > 0.1) {
        const t = (v + 0.7 - 0.22 * u * u - 0.12 * au) / 0.17 + sc.ribPhase;
        if (t > 0 && t < 7.5) {
          const f = t - Math.floor(t);
          const band = 1 - (f > 0.5 ? f - 0.5 : 0.5 - f) / 0.16;
          if (band > 0) val += sc.ribGain * band * (0.4 + 0.6 * lungMask) * body;
        }
      }

      // Exposure and detector noise.
      // Linear interpolation in the exposure table.
      const t = val <= 0 ? 0 : val >= 1 ? LUT_N - 1e-6 : val * LUT_N;
      const k = t | 0;
      const g = lut[k] + (t - k) * (lut[k + 1] - lut[k]) + sc.noise * approxNormal(rng);
      out[offset + i * size + j] = g <= 0 ? 0 : g >= 1 ? 255 : Math.round(g * 255);
    }
  }
}

function makeSplit(n: number, size: number, channels: number, rng: Rng, difficulty: number, prefix: string): Split {
  const C = SYNTHETIC_CLASSES.length;
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = i % C; // balanced
  rng.shuffle(labels);
  const hw = size * size;
  const images = new Uint8Array(n * channels * hw);
  for (let i = 0; i < n; i++) {
    const sc = makeScene(labels[i], rng, difficulty);
    render(sc, rng, size, images, i * channels * hw);
    for (let c = 1; c < channels; c++) images.copyWithin((i * channels + c) * hw, i * channels * hw, (i * channels + 1) * hw);
  }
  const ids = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
  return { images, labels, n, ids, groups: ids.slice() };
}

/** Balanced, clean-labelled synthetic chest-X-ray phantoms (see file comment). */
export function makeSynthetic(opts: SyntheticOptions = {}): Dataset {
  const size = opts.size ?? 28;
  const channels = opts.channels ?? 1;
  const seed = opts.seed ?? 0;
  const difficulty = opts.difficulty ?? 1;
  const nTrain = opts.n?.train ?? opts.train ?? 2000;
  const nVal = opts.n?.val ?? opts.val ?? 500;
  const nTest = opts.n?.test ?? opts.test ?? 500;
  // Independent streams per split: changing one count never changes another split's images.
  const split = (name: string, n: number) => makeSplit(n, size, channels, Rng.keyed('synthetic', seed, name), difficulty, `${name}`);
  return makeDataset(
    { name: 'synthetic-cxr', task: 'multiclass', classes: [...SYNTHETIC_CLASSES], channels, height: size, width: size },
    { train: split('train', nTrain), val: split('val', nVal), test: split('test', nTest) },
  );
}
