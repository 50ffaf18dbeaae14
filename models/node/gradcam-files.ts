// Node side of Grad-CAM output: the overlay PNG and the raw map (.npy) for each image, as
// `kd/predict.ts --cam DIR` writes them. The pictures themselves come from ../gradcam-render.ts.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PNG } from 'pngjs';
import type { GradCamResult } from '../gradcam.ts';
import { encodeNpy, mapOf, renderCamFigure, type FigureOptions, type Image8, type Rgba } from '../gradcam-render.ts';

/** PNG bytes of an RGBA picture. */
export function encodeRgbaPng(img: Rgba): Buffer {
  if (img.data.length !== img.width * img.height * 4) throw new RangeError(`encodeRgbaPng: ${img.data.length} bytes for ${img.width}x${img.height} RGBA`);
  const png = new PNG({ width: img.width, height: img.height });
  png.data = Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  return PNG.sync.write(png, { colorType: 6 });
}

function writeAtomic(path: string, bytes: Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}

export interface CamFiles {
  png: string;
  npy: string;
}

/**
 * Writes `<dir>/<stem>.cam.png` (overlay + colour bar, see renderCamFigure) and `<dir>/<stem>.cam.npy`
 * (the raw map of image n, float32 [h, w], not normalised: `numpy.load` reads it) for image n of
 * a gradCam() result; `image` is that input picture at the model's input size (8-bit, 1/3/4 channels).
 */
export function writeCamFiles(dir: string, stem: string, image: Image8, cam: GradCamResult, n: number, opts: FigureOptions = {}): CamFiles {
  const [, h, w] = cam.shape;
  const map = mapOf(cam.maps, cam.shape, n);
  const png = join(dir, `${stem}.cam.png`);
  const npy = join(dir, `${stem}.cam.npy`);
  writeAtomic(png, encodeRgbaPng(renderCamFigure(image, map, h, w, opts)));
  writeAtomic(npy, encodeNpy(Float32Array.from(map), [h, w]));
  return { png, npy };
}
