// PNG line plots: file written atomically, decodable, with axes/series/legend/title drawn;
// tick selection and formatting; the bitmap font.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderLinePlot, renderLinePlotPng, niceTicks, formatTick, Canvas, textWidth, PALETTE } from '../kd/plot.ts';
import { linePlotPng } from '../kd/plot-file.ts';
import { decodeImage } from '../kd/data/image.ts';

const root = mkdtempSync(join(tmpdir(), 'roskd-plot-'));

function countColor(data: Uint8Array, rgb: number[], stride = 4): number {
  let n = 0;
  for (let i = 0; i < data.length; i += stride) if (data[i] === rgb[0] && data[i + 1] === rgb[1] && data[i + 2] === rgb[2]) n++;
  return n;
}

test('linePlotPng writes a decodable PNG with series colours, axes and title; no temp files left', () => {
  const xs = Array.from({ length: 50 }, (_, i) => i + 1);
  const path = join(root, 'sub', 'acc.png');
  linePlotPng(path, {
    title: 'val accuracy',
    xLabel: 'epoch',
    yLabel: 'accuracy',
    series: [
      { name: 'teacher 1', xs, ys: xs.map((x) => 0.6 + 0.3 * (1 - Math.exp(-x / 10))) },
      { name: 'student', xs, ys: xs.map((x) => 0.65 + 0.3 * (1 - Math.exp(-x / 8))), color: '#d62728', dashed: true },
    ],
  });
  assert.equal(readdirSync(join(root, 'sub')), ['acc.png']);
  const img = decodeImage(readFileSync(path), path);
  assert.equal([img.width, img.height], [640, 400]);
  assert.ok(countColor(img.data, PALETTE[0]) > 200, 'first series in palette blue');
  assert.ok(countColor(img.data, [214, 39, 40]) > 100, 'second series in its own colour');
  // Title: black pixels in the top band; axis: a long black vertical run on the left.
  let titleInk = 0;
  for (let y = 0; y < 30; y++) for (let x = 0; x < 640; x++) if (img.data[(y * 640 + x) * 4] === 0) titleInk++;
  assert.ok(titleInk > 100, `title ink ${titleInk}`);
  const bytes = renderLinePlotPng({ series: [{ name: 's', xs: [0, 1], ys: [0, 1] }], width: 200, height: 120 });
  assert.equal([decodeImage(bytes).width, decodeImage(bytes).height], [200, 120]);
});

test('plots survive NaN/Infinity, empty and constant series, single points, axis overrides', () => {
  const cv = renderLinePlot({
    series: [
      { name: 'gappy', xs: [0, 1, 2, 3, 4], ys: [1, NaN, 2, Infinity, 3] },
      { name: 'empty', xs: [], ys: [] },
      { name: 'const', xs: [0, 4], ys: [2, 2] },
      { name: 'one', xs: [2], ys: [1.5] },
    ],
    yMin: 0,
    yMax: 4,
    legend: 'bottom-right',
  });
  assert.equal([cv.width, cv.height], [640, 400]);
  const blank = renderLinePlot({ series: [], title: 'nothing yet' });
  assert.is(blank.data.length, 640 * 400 * 3);
  const flat = renderLinePlot({ series: [{ name: 'c', xs: [5, 5], ys: [7, 7] }] });
  assert.ok(countColor(flat.data, PALETTE[0], 3) > 0);
});

test('niceTicks / formatTick', () => {
  assert.equal(niceTicks(0, 1, 5).ticks.map((v) => +v.toFixed(10)), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  const t = niceTicks(0.61, 0.94, 7);
  assert.is(+t.step.toFixed(10), 0.05);
  assert.ok(t.lo <= 0.61 && t.hi >= 0.94);
  assert.equal(niceTicks(0, 100, 4).ticks, [0, 25, 50, 75, 100]);
  const c = niceTicks(3, 3, 5);
  assert.ok(c.lo < 3 && c.hi > 3);
  assert.is(formatTick(0.6000000001, 0.05), '0.60');
  assert.is(formatTick(0.25, 0.25), '0.25');
  assert.is(formatTick(1500, 500), '1500');
  assert.is(formatTick(-0.0000000001, 0.1), '0.0');
  assert.is(formatTick(2500000, 500000), '2.5e6');
});

test('bitmap font: glyph shapes, rotated text, width', () => {
  const cv = new Canvas(12, 9, [255, 255, 255]);
  cv.text(1, 1, 'T', [0, 0, 0]);
  const on = (x: number, y: number) => cv.data[(y * 12 + x) * 3] === 0;
  // 'T': full top row of 5, then a centre stem.
  assert.equal([1, 2, 3, 4, 5].map((x) => on(x, 1)), [true, true, true, true, true]);
  assert.equal([1, 2, 3, 4, 5].map((x) => on(x, 4)), [false, false, true, false, false]);
  assert.is(textWidth('abc'), 17);
  assert.is(textWidth('abc', 2), 34);
  const v = new Canvas(9, 12, [255, 255, 255]);
  v.text(1, 10, 'T', [0, 0, 0], 1, true); // reads bottom-up: the bar is the left column
  assert.ok([6, 7, 8, 9, 10].every((y) => v.data[(y * 9 + 1) * 3] === 0));
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
