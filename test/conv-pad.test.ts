// conv2d's zero-padded input copy (conv-common.ts, padInput): the vec4 kernel for rows of whole
// vec4s (shaders/conv2d_pad_vec4.wgsl) and the scalar one, against a CPU reference, for every
// shift (left mod 4), negative offsets (backward-data crops), copies longer and shorter than x,
// planes of one vec4 row. Buffers are poisoned (gpuInit): an output the kernel skips reads NaN.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuInit, rk } from './helpers.ts';
import { randn, seededRandom } from './reference/gradcheck.ts';
import { conv2dTuning, padInput } from '../engine/ops/conv-common.ts';

const rng = seededRandom(Number(process.env.TEST_SEED ?? 23));

function refPad(x: Float64Array, [N, C, H, W]: number[], top: number, left: number, Hp: number, Wp: number): Float64Array {
  const out = new Float64Array(N * C * Hp * Wp);
  for (let pl = 0; pl < N * C; pl++)
    for (let r = 0; r < Hp; r++)
      for (let c = 0; c < Wp; c++) {
        const ih = r - top;
        const iw = c - left;
        if (ih >= 0 && ih < H && iw >= 0 && iw < W) out[(pl * Hp + r) * Wp + c] = x[(pl * H + ih) * W + iw];
      }
  return out;
}

test.before(gpuInit);
test.after.each(() => {
  conv2dTuning.padVec4 = undefined;
});

test('padded copies of rows of whole vec4s match the reference exactly (vec4 and scalar kernels)', async () => {
  const cases: [number[], number, number, number, number][] = [
    [[2, 3, 5, 8], 1, 1, 7, 12],
    [[1, 2, 4, 4], 1, 0, 6, 8],
    [[1, 2, 4, 4], 2, 2, 8, 8],
    [[2, 1, 3, 12], 3, 3, 9, 20],
    [[1, 3, 6, 8], 0, 5, 6, 16],
    [[1, 2, 7, 8], -1, -1, 5, 4], // a crop: negative offsets, shorter rows
    [[1, 2, 7, 16], -2, -3, 6, 12],
    [[3, 2, 4, 8], 1, 1, 5, 8], // a copy narrower than x plus its padding (the last columns dropped)
    [[64, 4, 28, 28], 1, 1, 30, 32],
  ];
  for (const vec4 of [true, false])
    for (const [s, top, left, Hp, Wp] of cases) {
      conv2dTuning.padVec4 = vec4 ? undefined : false;
      const x = randn(s.reduce((a, b) => a * b), rng);
      const xt = rk.tensor(x, s);
      const xp = padInput(xt, top, left, Hp, Wp);
      const got = await xp.toArray();
      xt.dispose();
      xp.dispose();
      const want = refPad(x, s, top, left, Hp, Wp);
      let bad = -1;
      for (let i = 0; i < want.length && bad < 0; i++) if (got[i] !== Math.fround(want[i])) bad = i;
      assert.is(bad, -1, `x [${s}] at (${top}, ${left}) into ${Hp}x${Wp}, ${vec4 ? 'vec4' : 'scalar'} kernel: first wrong element ${bad} (${got[bad]} vs ${want[bad]})`);
    }
});

test.run();
