// conv2d forward, backward-data and backward-weight on ResNet-18 / MobileNet-V2 / DenseNet
// layer shapes. roskd is NCHW with weights [Cout, Cin/groups, k, k]; tfjs runs the same work
// in its native NHWC layout. The backward cases run roskd's autograd: the forward (and the
// graph) is built untimed in prepare(), only backward() is timed, with only x (data) or only
// w (weight) requiring grad, so only that backward kernel runs.
import * as rk from '../engine/index.ts';
import * as ops from './ops.ts';
import { compareSampled, convAt, convDwAt, convDxAt, convOut, randomData, sampleIndices, seededRandom, type ConvGeom } from './check.ts';
import type { Bench, Case, CaseCtx, Engine } from './harness.ts';
import type { Tf } from './tfjs.ts';
import type * as TF from '@tensorflow/tfjs-core';

type Part = 'fwd' | 'bwd_data' | 'bwd_weight';
const PART_NAME: Record<Part, string> = { fwd: 'forward', bwd_data: 'backward-data', bwd_weight: 'backward-weight' };

interface Shape extends ConvGeom {
  label: string;
  quick?: Part[];
}

const flops = (g: ConvGeom): number => {
  const [oH, oW] = convOut(g);
  return 2 * g.N * g.Cout * oH * oW * (g.Cin / g.groups) * g.k * g.k;
};

/**
 * tfjs peer of one part: NHWC input, HWIO (or HW C 1 depthwise) filter. The host data of the
 * roskd inputs is reused as is (same element counts, other layout): values do not change the
 * timing, and tf.randomNormal would spend seconds on the CPU.
 */
function tfjsPeer(tf: Tf, g: ConvGeom, part: Part, data: { x: Float32Array; w: Float32Array; gy: Float32Array }): { run(): void; dispose(): void } {
  const [oH, oW] = convOut(g);
  const dw = g.groups > 1;
  if (dw && g.groups !== g.Cin) throw new Error('tfjs peer: only depthwise grouping is supported');
  const x = tf.tensor4d(data.x, [g.N, g.H, g.W, g.Cin]);
  const filterShape: [number, number, number, number] = dw ? [g.k, g.k, g.Cin, g.Cout / g.Cin] : [g.k, g.k, g.Cin, g.Cout];
  const w = tf.tensor4d(data.w, filterShape);
  const dy = tf.tensor4d(data.gy, [g.N, oH, oW, g.Cout]);
  const strides: [number, number] = [g.stride, g.stride];
  const pad = g.pad;
  const kernel = tf.engine();
  const run =
    part === 'fwd'
      ? dw
        ? () => void tf.depthwiseConv2d(x, w, strides, pad)
        : () => void tf.conv2d(x, w, strides, pad)
      : part === 'bwd_data'
        ? () =>
            void kernel.runKernel(dw ? 'DepthwiseConv2dNativeBackpropInput' : 'Conv2DBackpropInput', { dy, filter: w }, {
              strides,
              pad,
              dilations: [1, 1],
              dataFormat: 'NHWC',
              inputShape: [g.N, g.H, g.W, g.Cin],
            } as unknown as TF.NamedAttrMap)
        : () =>
            void kernel.runKernel(dw ? 'DepthwiseConv2dNativeBackpropFilter' : 'Conv2DBackpropFilter', { x, dy }, {
              strides,
              pad,
              dilations: [1, 1],
              dataFormat: 'NHWC',
              filterShape,
            } as unknown as TF.NamedAttrMap);
  return { run, dispose: () => tf.dispose([x, w, dy]) };
}

function convCase(s: Shape, part: Part): Case {
  const g: ConvGeom = s;
  return {
    name: `${s.label} ${PART_NAME[part]}`,
    kind: 'compute',
    work: flops(g),
    // depthwise is memory-bound: also report its traffic (one input and one output tensor) against the copy ceiling
    bytes: g.groups === g.Cin && g.Cin === g.Cout ? 4 * g.N * g.Cin * (g.H * g.W + convOut(g)[0] * convOut(g)[1]) : undefined,
    quick: s.quick?.includes(part),
    needs: () => (part === 'fwd' ? ops.missing('conv2d') : ops.missingGrad('conv2d')),
    torch: { op: 'conv', part, N: g.N, Cin: g.Cin, H: g.H, W: g.W, Cout: g.Cout, k: g.k, stride: g.stride, pad: g.pad, groups: g.groups },
    async setup({ tf }: CaseCtx): Promise<Bench> {
      const rng = seededRandom(g.N * 1000 + g.Cin + g.Cout + g.k);
      const [oH, oW] = convOut(g);
      const X = randomData(g.N * g.Cin * g.H * g.W, rng);
      const Wt = randomData((g.Cout * g.Cin * g.k * g.k) / g.groups, rng, 1 / Math.sqrt((g.Cin / g.groups) * g.k * g.k));
      const GY = randomData(g.N * g.Cout * oH * oW, rng);
      const xShape = [g.N, g.Cin, g.H, g.W];
      const wShape = [g.Cout, g.Cin / g.groups, g.k, g.k];
      const x = rk.tensor(X.f32, xShape);
      const w = rk.tensor(Wt.f32, wShape);
      const gy = rk.tensor(GY.f32, [g.N, g.Cout, oH, oW]);
      if (part === 'bwd_data') x.requireGrad();
      if (part === 'bwd_weight') w.requireGrad();
      const o = { stride: g.stride, padding: g.pad, groups: g.groups };
      const peer = tf ? tfjsPeer(tf, g, part, { x: X.f32, w: Wt.f32, gy: GY.f32 }) : null;
      const leaf = part === 'bwd_data' ? x : w;

      let y: rk.Tensor | null = null;
      const clear = (): void => {
        y?.dispose();
        y = null;
        leaf.grad?.dispose();
        leaf.grad = null;
      };
      const roskd: Engine =
        part === 'fwd'
          ? { run: () => rk.tidy(() => void ops.conv2d(x, w, o)) }
          : {
              prepare: () => void (y = ops.conv2d(x, w, o)),
              run: () => y!.backward(gy),
              after: clear,
            };

      return {
        roskd,
        tfjs: peer ? { run: peer.run } : undefined,
        async check() {
          if (part === 'fwd') {
            const out = ops.conv2d(x, w, o);
            const got = await out.toArray();
            out.dispose();
            const idx = sampleIndices(got.length, 256, rng);
            return compareSampled('y', got, idx, idx.map((f) => convAt(g, X.f64, Wt.f64, f)), 1e-3);
          }
          await roskd.prepare!();
          await roskd.run();
          if (!leaf.grad) throw new Error(`backward left ${part === 'bwd_data' ? 'x' : 'w'}.grad empty`);
          const got = await leaf.grad.toArray();
          clear();
          const idx = sampleIndices(got.length, part === 'bwd_data' ? 256 : 128, rng);
          return part === 'bwd_data'
            ? compareSampled('dx', got, idx, idx.map((f) => convDxAt(g, Wt.f64, GY.f64, f)), 1e-3)
            : compareSampled('dw', got, idx, idx.map((f) => convDwAt(g, X.f64, GY.f64, f)), 1e-3);
        },
        dispose() {
          clear();
          for (const t of [x, w, gy]) t.dispose();
          peer?.dispose();
        },
      };
    },
  };
}

/**
 * ResNet-18 basic-block convs at 56 and 28 px, its stride-2 3x3 and 1x1 projection,
 * MobileNet-V2's depthwise 3x3 on 144 channels (stride 1 and 2) and its 14 px block, and
 * DenseNet's 1x1 bottleneck over a 256-channel concatenated input. Batch sizes keep one run near a second on a CPU adapter.
 */
const SHAPES: Shape[] = [
  { label: 'conv3x3 64->64 b8 56px', N: 8, Cin: 64, H: 56, W: 56, Cout: 64, k: 3, stride: 1, pad: 1, groups: 1, quick: ['fwd', 'bwd_data', 'bwd_weight'] },
  { label: 'conv3x3 64->64 b16 28px', N: 16, Cin: 64, H: 28, W: 28, Cout: 64, k: 3, stride: 1, pad: 1, groups: 1 },
  { label: 'conv3x3 128->128 b8 28px', N: 8, Cin: 128, H: 28, W: 28, Cout: 128, k: 3, stride: 1, pad: 1, groups: 1 },
  { label: 'conv3x3 s2 64->128 b16 56px', N: 16, Cin: 64, H: 56, W: 56, Cout: 128, k: 3, stride: 2, pad: 1, groups: 1 },
  { label: 'conv1x1 s2 64->128 b16 56px', N: 16, Cin: 64, H: 56, W: 56, Cout: 128, k: 1, stride: 2, pad: 0, groups: 1, quick: ['fwd'] },
  { label: 'dwconv3x3 144 b16 56px', N: 16, Cin: 144, H: 56, W: 56, Cout: 144, k: 3, stride: 1, pad: 1, groups: 144, quick: ['fwd'] },
  { label: 'conv1x1 256->128 b16 28px (DenseNet)', N: 16, Cin: 256, H: 28, W: 28, Cout: 128, k: 1, stride: 1, pad: 0, groups: 1 },
  // MobileNet-V2 at 14 px: an inverted residual's expand and project 1x1s and its depthwise 3x3,
  // and the stride-2 depthwise that opens a stage
  { label: 'conv1x1 96->576 b16 14px (MobileNet-V2 expand)', N: 16, Cin: 96, H: 14, W: 14, Cout: 576, k: 1, stride: 1, pad: 0, groups: 1 },
  { label: 'conv1x1 576->96 b16 14px (MobileNet-V2 project)', N: 16, Cin: 576, H: 14, W: 14, Cout: 96, k: 1, stride: 1, pad: 0, groups: 1 },
  { label: 'dwconv3x3 576 b16 14px', N: 16, Cin: 576, H: 14, W: 14, Cout: 576, k: 3, stride: 1, pad: 1, groups: 576 },
  { label: 'dwconv3x3 s2 144 b16 56px', N: 16, Cin: 144, H: 56, W: 56, Cout: 144, k: 3, stride: 2, pad: 1, groups: 144 },
  // MobileNet-V2 (width 1, small-input stem) on 28 px images at batch 64, as in the training-step
  // rows: every depthwise shape it runs, 28 px down to 2 px planes
  ...(
    [
      [32, 28, 1],
      [96, 28, 2],
      [144, 14, 1],
      [144, 14, 2],
      [192, 7, 1],
      [192, 7, 2],
      [384, 4, 1],
      [576, 4, 2],
      [960, 2, 1],
    ] as const
  ).map(([C, px, s]): Shape => ({ label: `dwconv3x3${s === 2 ? ' s2' : ''} ${C} b64 ${px}px`, N: 64, Cin: C, H: px, W: px, Cout: C, k: 3, stride: s, pad: 1, groups: C })),
];

export function convCases(): Case[] {
  return SHAPES.flatMap((s) => (['fwd', 'bwd_data', 'bwd_weight'] as Part[]).map((p) => convCase(s, p)));
}
