// PNG line plots: file written atomically, decodable, with axes/series/legend/title drawn;
// tick selection and formatting; the bitmap font.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderLinePlot, renderLinePlotPng, niceTicks, formatTick, Canvas, textWidth, PALETTE, renderFigure } from '../kd/plot.ts';
import { linePlotPng, writePlotFiles } from '../kd/plot-file.ts';
import { reportFigures } from '../kd/report.ts';
import type { MetricsLine } from '../kd/run-store.ts';
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
  assert.equal(readdirSync(join(root, 'sub')).sort(), ['acc.png', 'acc.svg']);
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


/** The glyph of a character as rows of '#'/'.', 9 rows (7 above the baseline, 2 descender rows). */
function glyph(ch: string): string[] {
  const cv = new Canvas(7, 11, [255, 255, 255]);
  cv.text(1, 1, ch, [0, 0, 0]);
  return Array.from({ length: 9 }, (_, r) => Array.from({ length: 5 }, (_, c) => (cv.data[((r + 1) * 7 + c + 1) * 3] === 0 ? '#' : '.')).join(''));
}

test('font: every printable ASCII glyph is distinct; g j p q y descend below the baseline and "g" is not "9"', () => {
  const chars = Array.from({ length: 94 }, (_, i) => String.fromCharCode(33 + i));
  const seen = new Map<string, string>();
  for (const ch of chars) {
    const key = glyph(ch).join('/');
    assert.ok(!seen.has(key), `"${ch}" draws the same as "${seen.get(key)}"`);
    assert.ok(key.includes('#'), `"${ch}" is blank`);
    seen.set(key, ch);
  }
  for (const ch of 'gjpqy') assert.ok(glyph(ch).slice(7).join('').includes('#'), `"${ch}" has no descender`);
  for (const ch of 'abcdefhiklmnorstuvwxz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ') assert.ok(!glyph(ch).slice(7).join('').includes('#'), `"${ch}" hangs below the baseline`);
  // "g" and "9": different rows in the body, not only in the tail
  const g = glyph('g');
  const nine = glyph('9');
  assert.ok(g.slice(0, 7).filter((r, i) => r !== nine[i]).length >= 3, `g ${g.join('/')} vs 9 ${nine.join('/')}`);
});

test('niceTicks: integer axes get whole-number ticks (a 2-epoch run: 1, 2)', () => {
  assert.equal(niceTicks(1, 2, 7, true).ticks, [1, 2]);
  assert.equal(niceTicks(1, 3, 7, true).ticks, [1, 2, 3]);
  assert.equal(niceTicks(1, 1, 7, true).ticks, [0, 1, 2]);
  const t = niceTicks(1, 30, 7, true);
  assert.is(t.step, 5);
  for (const [lo, hi] of [[1, 2], [1, 4], [1, 7], [3, 11], [1, 100]]) assert.ok(niceTicks(lo, hi, 7, true).ticks.every(Number.isInteger), `${lo}..${hi}`);
  // without the flag, 1..2 gets fractional ticks (what short runs showed before)
  assert.ok(niceTicks(1, 2, 7).ticks.some((v) => !Number.isInteger(v)));
});

/** Minimal XML well-formedness: balanced tags, quoted attributes, escaped text. Returns the text nodes. */
function checkXml(xml: string): string[] {
  const stack: string[] = [];
  const texts: string[] = [];
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<>]*")*)\s*(\/?)>|([^<]+)/gy;
  let m: RegExpExecArray | null;
  let pos = 0;
  while ((m = re.exec(xml))) {
    pos = re.lastIndex;
    if (m[5] !== undefined) {
      assert.ok(!/&(?!(amp|lt|gt|quot|apos);)/.test(m[5]), `unescaped & in ${m[5]}`);
      if (m[5].trim()) texts.push(m[5].replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&'));
    } else if (m[1]) assert.is(stack.pop(), m[2], `</${m[2]}> closes the wrong element`);
    else if (!m[4]) stack.push(m[2]);
  }
  assert.is(pos, xml.length, `not well-formed at ${xml.slice(pos, pos + 60)}`);
  assert.equal(stack, [], 'unclosed elements');
  return texts;
}

const metricsFor = (epochs: number): MetricsLine[] =>
  ['teacher-0', 'teacher-1', 'student-ce', 'student-kd', 'student-avgkd', 'student-roskd'].flatMap((model, k) =>
    Array.from({ length: epochs }, (_, i) => ({ model, epoch: i + 1, loss: (model.startsWith('teacher') || model === 'student-ce' ? 1.4 : 0.7) - 0.1 * i + 0.01 * k, lr: 0.1, val: { acc: 0.6 + 0.05 * i, f1: 0.5, auc: 0.7, loss: 1 }, secs: 1, images: 8 })),
  );

test('report figures: loss in one panel per objective (CE models vs KD students), integer epoch ticks', () => {
  // input sorted by name (as readMetrics gives it): students first; the plots list teachers first
  const figs = reportFigures([...metricsFor(2)].sort((a, b) => (a.model < b.model ? -1 : 1)), { alpha: 0.7, temperature: 4 });
  assert.equal(figs.map((f) => f.file), ['loss.png', 'val-acc.png', 'val-auc.png', 'val-f1.png']);
  const loss = figs[0].figure;
  assert.is(loss.panels.length, 2);
  assert.equal(loss.panels[0].series.map((s) => s.name), ['teacher-0', 'teacher-1', 'student-ce']);
  assert.equal(loss.panels[1].series.map((s) => s.name), ['student-kd', 'student-avgkd', 'student-roskd']);
  assert.ok(figs.every((f) => f.figure.panels.every((p) => p.xInteger)));
  // only CE models (e.g. --methods ce): a single panel
  assert.is(reportFigures(metricsFor(2).filter((m) => !m.model.startsWith('student-') || m.model === 'student-ce'))[0].figure.panels.length, 1);
  const r = renderFigure(loss);
  assert.equal([r.width, r.height], [960, 430]);
  const texts = checkXml(r.svg);
  for (const want of ['training loss by objective', 'cross-entropy (noisy labels)', 'KD loss (alpha 0.7, T 4)', 'teacher-0', 'student-ce', 'student-roskd', 'epoch', 'cross-entropy', '(1-a) CE + a T^2 KL'])
    assert.ok(texts.includes(want), `SVG lacks the text "${want}" (has ${texts.join(' | ')})`);
  // x tick labels of a 2-epoch run: only 1 and 2, in both panels
  const numeric = texts.filter((t) => /^-?\d/.test(t));
  assert.equal(numeric.filter((t) => /^\d+$/.test(t)).sort(), ['1', '1', '2', '2']);
  // the PNG: the expected size, ink in both panels, the series colours in the panel of their objective
  const img = decodeImage(r.png);
  assert.equal([img.width, img.height], [960, 430]);
  const inkIn = (x0: number, x1: number, rgb: number[]) => {
    let n = 0;
    for (let y = 0; y < img.height; y++) for (let x = x0; x < x1; x++) {
      const i = (y * img.width + x) * 4;
      if (img.data[i] === rgb[0] && img.data[i + 1] === rgb[1] && img.data[i + 2] === rgb[2]) n++;
    }
    return n;
  };
  assert.ok(inkIn(0, 480, [0, 0, 0]) > 500 && inkIn(480, 960, [0, 0, 0]) > 500, 'axes and text in both panels');
  assert.ok(inkIn(0, 480, PALETTE[2]) > 100 && inkIn(480, 960, PALETTE[2]) > 100, 'third series of each panel drawn (student-ce left, student-roskd right)');
  assert.ok(inkIn(0, 480, PALETTE[0]) > 100 && inkIn(480, 960, PALETTE[0]) > 100);
});

test('writePlotFiles: PNG and a well-formed SVG beside it, special characters escaped', () => {
  const p = writePlotFiles(join(root, 'fig.png'), { title: 'a < b & "c"', xLabel: 'epoch', yLabel: 'y', xInteger: true, series: [{ name: 'x<y', xs: [1, 2, 3], ys: [3, 1, 2] }] });
  assert.equal(p, { png: join(root, 'fig.png'), svg: join(root, 'fig.svg') });
  const img = decodeImage(readFileSync(p.png), p.png);
  assert.equal([img.width, img.height], [640, 400]);
  const texts = checkXml(readFileSync(p.svg, 'utf8'));
  assert.ok(texts.includes('a < b & "c"') && texts.includes('x<y'));
  assert.ok(readFileSync(p.svg, 'utf8').startsWith('<svg xmlns="http://www.w3.org/2000/svg" width="640" height="400"'));
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
