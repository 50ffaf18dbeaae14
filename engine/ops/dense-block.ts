// A DenseNet dense block as one op, without physical concatenation (the memory-efficient
// DenseNet layout): the block allocates one feature buffer F [N, C0 + L * growth, H, W], copies
// its input into the first C0 channels, and each layer
//   norm1 -> relu -> conv1 (1x1) -> norm2 -> relu -> conv2 (3x3, pad 1)
// reads the channel prefix F[:, :Cin] directly (the batch-norm kernels take a channel stride)
// and writes its `growth` new channels into F in place. The backward keeps one gradient buffer
// G of F's shape and walks the layers in reverse: layer i's new channels' gradient is read from
// G, and its norm1 backward adds its input gradient straight into G[:, :Cin] (batchnorm_grad's
// ACCUM mode). A per-layer concat costs O(L^2) channel copies forward, as many slices backward
// and as many gradient additions (14% of a DenseNet-121 step's kernel time, bench/NOTES.md);
// here the copies are O(L). The result equals concat([x, layer1, layer2, ...], 1) exactly.
import { defineOp, expectDtype, expectRank, type Meta } from '../op.ts';
import { Tensor, ShapeError, fmt } from '../tensor.ts';
import { bnForwardRaw, bnBackwardRaw, type BnCall } from './batchnorm.ts';
import { convGeometry, conv2dForwardRaw, conv2dBackwardData, conv2dBackwardWeight, type ConvGeometry } from './conv.ts';
import { readAt, writeAt } from './slice.ts';

/** One dense layer's batch-norm settings (weights are op inputs; running stats live here). */
export interface DenseLayerCall {
  norm1: BnCall;
  norm2: BnCall;
}

interface Params {
  layers: DenseLayerCall[];
}

/** inputs per layer: norm1.weight, norm1.bias, conv1.weight, norm2.weight, norm2.bias, conv2.weight */
const PER_LAYER = 6;
/** saved per layer (after F): norm1 output and stats, conv1 output, norm2 output and stats, conv1 and conv2 weights */
const SAVED = 7;
const CONV1 = { sh: 1, sw: 1, pt: 0, pb: 0, pl: 0, pr: 0, dh: 1, dw: 1, groups: 1 };
const CONV2 = { sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, dh: 1, dw: 1, groups: 1 };

interface LayerShapes {
  cin: number;
  growth: number;
  g1: ConvGeometry;
  g2: ConvGeometry;
}

/** Checks every layer's weights against the channels it sees; returns each layer's geometry. */
function layerShapes(x: readonly number[], ws: readonly (readonly number[])[], L: number): LayerShapes[] {
  const [N, C0, H, W] = x;
  const out: LayerShapes[] = [];
  let cin = C0;
  for (let i = 0; i < L; i++) {
    const [n1w, n1b, c1w, n2w, n2b, c2w] = ws.slice(i * PER_LAYER, (i + 1) * PER_LAYER);
    const where = `denseBlock: layer ${i + 1} (${cin} input channels)`;
    if (c1w.length !== 4 || c1w[1] !== cin || c1w[2] !== 1 || c1w[3] !== 1) throw new ShapeError(`${where}: conv1 weight must be [Cmid, ${cin}, 1, 1], got ${fmt(c1w)}`);
    const mid = c1w[0];
    if (c2w.length !== 4 || c2w[1] !== mid || c2w[2] !== 3 || c2w[3] !== 3) throw new ShapeError(`${where}: conv2 weight must be [growth, ${mid}, 3, 3], got ${fmt(c2w)}`);
    for (const [what, s, c] of [['norm1.weight', n1w, cin], ['norm1.bias', n1b, cin], ['norm2.weight', n2w, mid], ['norm2.bias', n2b, mid]] as const)
      if (s.length !== 1 || s[0] !== c) throw new ShapeError(`${where}: ${what} must be [${c}], got ${fmt(s)}`);
    const g1 = convGeometry([N, cin, H, W], c1w, CONV1);
    const g2 = convGeometry([N, mid, H, W], c2w, CONV2);
    out.push({ cin, growth: c2w[0], g1, g2 });
    cin += c2w[0];
  }
  return out;
}

const denseBlockOp = defineOp<Params>({
  name: 'denseBlock',
  shape(inputs, { layers }): Meta {
    const [x, ...ws] = inputs;
    expectRank('denseBlock', x, 4);
    for (const t of inputs) expectDtype('denseBlock', t, 'f32');
    if (ws.length !== layers.length * PER_LAYER) throw new ShapeError(`denseBlock: ${layers.length} layers need ${layers.length * PER_LAYER} weight tensors, got ${ws.length}`);
    const ls = layerShapes(x.shape, ws.map((w) => w.shape), layers.length);
    const last = ls[ls.length - 1];
    const [N, C0, H, W] = x.shape;
    return { shape: [N, last ? last.cin + last.growth : C0, H, W], dtype: 'f32' };
  },
  forward(inputs, { layers }, ctx) {
    const [x, ...ws] = inputs;
    const ls = layerShapes(x.shape, ws.map((w) => w.shape), layers.length);
    const [N, C0, H, W] = x.shape;
    const Ct = ls.length ? ls[ls.length - 1].cin + ls[ls.length - 1].growth : C0;
    const F = new Tensor([N, Ct, H, W], 'f32');
    writeAt(F, x, 1, 0);
    if (ctx.needsGrad) ctx.save(F);
    ls.forEach((l, i) => {
      const [n1w, n1b, c1w, n2w, n2b, c2w] = ws.slice(i * PER_LAYER, (i + 1) * PER_LAYER);
      const { norm1, norm2 } = layers[i];
      const a = bnForwardRaw(F, l.cin, n1w, n1b, norm1);
      const h = conv2dForwardRaw(a.y, c1w, null, l.g1);
      const b = bnForwardRaw(h, l.g1.Cout, n2w, n2b, norm2);
      const o = conv2dForwardRaw(b.y, c2w, null, l.g2);
      writeAt(F, o, 1, l.cin);
      o.dispose();
      // the backward needs each batch norm's output (the next conv's input) and stats, h, and the conv weights
      if (ctx.needsGrad) ctx.save(a.y, a.stats, h, b.y, b.stats, c1w, c2w);
      for (const t of [a.y, a.stats, h, b.y, b.stats]) t.dispose();
    });
    return F;
  },
  backward(dF, { params: { layers }, saved, inputShapes, inputNeedsGrad }) {
    const [F] = saved;
    const ls = layerShapes(inputShapes[0], inputShapes.slice(1), layers.length);
    const grads: (Tensor | null)[] = new Array(inputShapes.length).fill(null);
    // G accumulates every layer's input gradient; it starts as the block output's gradient. dF
    // itself serves when no other handle shares its storage (autograd hands one gradient to
    // several parents as views of one buffer, which must then stay as they are).
    const own = dF.storage.refs === 1;
    const G = own ? dF : new Tensor(dF.shape, 'f32');
    if (!own) writeAt(G, dF, 1, 0);
    for (let i = ls.length - 1; i >= 0; i--) {
      const l = ls[i];
      const [a, s1, h, b, s2, c1w, c2w] = saved.slice(1 + SAVED * i, 1 + SAVED * (i + 1));
      const base = 1 + i * PER_LAYER;
      const want = (k: number): boolean => inputNeedsGrad[base + k];
      const go = readAt(G, 1, l.cin, l.growth);
      const db = conv2dBackwardData(go, c2w, l.g2);
      if (want(5)) grads[base + 5] = conv2dBackwardWeight(b, go, l.g2);
      go.dispose();
      const dh = new Tensor(h.shape, 'f32');
      const p2 = bnBackwardRaw(db, h, s2, layers[i].norm2, { wantParams: want(3) || want(4), dx: dh, accumulate: false });
      db.dispose();
      const da = conv2dBackwardData(dh, c1w, l.g1);
      if (want(2)) grads[base + 2] = conv2dBackwardWeight(a, dh, l.g1);
      dh.dispose();
      const p1 = bnBackwardRaw(da, F, s1, layers[i].norm1, { wantParams: want(0) || want(1), dx: G, accumulate: true });
      da.dispose();
      grads[base] = want(0) ? p1.dgamma : (p1.dgamma?.dispose(), null);
      grads[base + 1] = want(1) ? p1.dbeta : (p1.dbeta?.dispose(), null);
      grads[base + 3] = want(3) ? p2.dgamma : (p2.dgamma?.dispose(), null);
      grads[base + 4] = want(4) ? p2.dbeta : (p2.dbeta?.dispose(), null);
    }
    if (inputNeedsGrad[0]) grads[0] = readAt(G, 1, 0, inputShapes[0][1]);
    if (!own) G.dispose();
    return grads;
  },
});

/** One dense layer's tensors and batch-norm settings, in torchvision's order. */
export interface DenseLayerArgs extends DenseLayerCall {
  norm1Weight: Tensor;
  norm1Bias: Tensor;
  conv1Weight: Tensor;
  norm2Weight: Tensor;
  norm2Bias: Tensor;
  conv2Weight: Tensor;
}

/**
 * A whole DenseNet dense block on x [N, C0, H, W]: returns concat([x, y1, y2, ...], 1) where
 * layer i maps the concatenation of everything before it through norm1 -> relu -> conv1 (1x1,
 * no bias) -> norm2 -> relu -> conv2 (3x3, pad 1, no bias). The norms' `activation` must be
 * 'relu'; running statistics are updated in training mode as batchNorm2d does.
 */
export function denseBlock(x: Tensor, layers: readonly DenseLayerArgs[]): Tensor {
  layers.forEach((l, i) => {
    for (const [what, n] of [['norm1', l.norm1], ['norm2', l.norm2]] as const)
      if (n.activation !== 'relu') throw new RangeError(`denseBlock: layer ${i + 1} ${what} must have activation 'relu', got ${String(n.activation)}`);
  });
  const ws = layers.flatMap((l) => [l.norm1Weight, l.norm1Bias, l.conv1Weight, l.norm2Weight, l.norm2Bias, l.conv2Weight]);
  return denseBlockOp([x, ...ws], { layers: layers.map((l) => ({ norm1: l.norm1, norm2: l.norm2 })) });
}
