// conv2d (NCHW) forward and backward; kernels in shaders/conv2d_*.wgsl.
import { defineOp, expectDtype, expectRank } from '../op.ts';
import { Tensor, ShapeError, fmt } from '../tensor.ts';
import { dispatch, grid } from '../program.ts';

type Pair = number | readonly [number, number];
export interface Conv2dOptions {
  stride?: Pair;
  /** one value, [vertical, horizontal], or [top, bottom, left, right] */
  padding?: number | readonly [number, number] | readonly [number, number, number, number];
  dilation?: Pair;
  groups?: number;
}

interface ConvParams {
  sh: number;
  sw: number;
  pt: number;
  pb: number;
  pl: number;
  pr: number;
  dh: number;
  dw: number;
  groups: number;
}

/** Every size the kernels need. */
export interface ConvGeometry extends ConvParams {
  N: number;
  Cin: number;
  H: number;
  W: number;
  Cout: number;
  CinG: number;
  CoutG: number;
  KH: number;
  KW: number;
  Ho: number;
  Wo: number;
}

const isInt = (v: number) => Number.isInteger(v);

function normParams(o: Conv2dOptions): ConvParams {
  const pair = (what: string, v: Pair | undefined, dflt: number, min: number): [number, number] => {
    const p: [number, number] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
    if (typeof v === 'object' && v.length !== 2) throw new RangeError(`conv2d: ${what} must be a number or a pair, got [${v.join(', ')}]`);
    if (!p.every((d) => isInt(d) && d >= min)) throw new RangeError(`conv2d: ${what} must be integers >= ${min}, got ${fmt(p)}`);
    return p;
  };
  const [sh, sw] = pair('stride', o.stride, 1, 1);
  const [dh, dw] = pair('dilation', o.dilation, 1, 1);
  const pad = o.padding ?? 0;
  let pads: number[];
  if (typeof pad === 'number') pads = [pad, pad, pad, pad];
  else if (pad.length === 2) pads = [pad[0], pad[0], pad[1], pad[1]];
  else if (pad.length === 4) pads = [...pad];
  else throw new RangeError(`conv2d: padding must be a number, [vertical, horizontal] or [top, bottom, left, right], got [${(pad as number[]).join(', ')}]`);
  if (!pads.every((d) => isInt(d) && d >= 0)) throw new RangeError(`conv2d: padding must be non-negative integers, got ${fmt(pads)}`);
  const groups = o.groups ?? 1;
  if (!isInt(groups) || groups < 1) throw new RangeError(`conv2d: groups must be a positive integer, got ${groups}`);
  const [pt, pb, pl, pr] = pads;
  return { sh, sw, pt, pb, pl, pr, dh, dw, groups };
}

/** Checks shapes against the parameters (throws ShapeError naming conv2d) and derives every size. */
export function convGeometry(xs: readonly number[], ws: readonly number[], p: ConvParams, bs?: readonly number[] | null): ConvGeometry {
  const [N, Cin, H, W] = xs;
  const [Cout, CinG, KH, KW] = ws;
  const G = p.groups;
  if (Cin % G !== 0) throw new ShapeError(`conv2d: groups ${G} does not divide the ${Cin} input channels of x ${fmt(xs)}`);
  if (Cout % G !== 0) throw new ShapeError(`conv2d: groups ${G} does not divide the ${Cout} output channels of w ${fmt(ws)}`);
  if (CinG !== Cin / G)
    throw new ShapeError(`conv2d: weight ${fmt(ws)} expects ${CinG * G} input channels (${CinG} per group x ${G} groups), x ${fmt(xs)} has ${Cin}`);
  if (KH < 1 || KW < 1) throw new ShapeError(`conv2d: empty kernel in weight ${fmt(ws)}`);
  if (bs && (bs.length !== 1 || bs[0] !== Cout)) throw new ShapeError(`conv2d: bias must have shape [${Cout}], got ${fmt(bs)}`);
  const Hp = H + p.pt + p.pb;
  const Wp = W + p.pl + p.pr;
  const ekh = p.dh * (KH - 1) + 1;
  const ekw = p.dw * (KW - 1) + 1;
  if (ekh > Hp || ekw > Wp)
    throw new ShapeError(
      `conv2d: kernel ${KH}x${KW} (dilation ${p.dh}x${p.dw}, extent ${ekh}x${ekw}) is larger than the padded input ${Hp}x${Wp} (x ${fmt(xs)}, padding [${p.pt}, ${p.pb}, ${p.pl}, ${p.pr}])`,
    );
  const Ho = Math.floor((Hp - ekh) / p.sh) + 1;
  const Wo = Math.floor((Wp - ekw) / p.sw) + 1;
  if (N === 0 || Cout === 0 || Cin === 0) throw new ShapeError(`conv2d: empty tensor x ${fmt(xs)} or w ${fmt(ws)}`);
  return { ...p, N, Cin, H, W, Cout, CinG, CoutG: Cout / G, KH, KW, Ho, Wo };
}

// ---- kernels ------------------------------------------------------------------------------

/** Packs weights as [G][KH][KW][CinG][CoutGp] (or flipped/transposed for backward-data). */
function packWeights(w: Tensor, g: ConvGeometry, padTo: number, flip: boolean): Tensor {
  const fast = flip ? g.CinG : g.CoutG;
  const padC = Math.ceil(fast / padTo) * padTo;
  const slow = flip ? g.CoutG : g.CinG;
  const total = g.groups * g.KH * g.KW * slow * padC;
  const out = new Tensor([total], 'f32');
  dispatch({ name: 'conv2d_wpack', shader: 'conv2d_wpack' }, [total, g.CinG, g.CoutG, padC, g.KH, g.KW, flip ? 1 : 0], [w.binding, out.binding], grid(Math.ceil(total / 256)));
  return out;
}

const i32 = (v: number) => v >>> 0; // two's complement bits of a (possibly negative) i32 uniform

export interface FwdConfig {
  TM: number;
  TN: number;
  shader?: string;
  extra?: Record<string, string | number>;
}

function fwdGemm(x: Tensor, w: Tensor, bias: Tensor | null, g: ConvGeometry, cfg: FwdConfig): Tensor {
  const { TM, TN } = cfg;
  const TN4 = TN / 4;
  const wp = packWeights(w, g, TN, false);
  const CoutGp = Math.ceil(g.CoutG / TN) * TN;
  const tilesW = Math.ceil(g.Wo / TM);
  const nTiles = g.N * g.Ho * tilesW;
  const coBlocks = CoutGp / TN;
  const y = new Tensor([g.N, g.Cout, g.Ho, g.Wo], 'f32');
  const u = [g.Cin, g.H, g.W, g.Cout, g.Ho, g.Wo, g.CinG, g.CoutG, CoutGp / 4, tilesW, nTiles, coBlocks, g.sh, g.dh, i32(g.pt), i32(g.pl), bias ? 1 : 0];
  const defines = { TM, TN4, KH: g.KH, KW: g.KW, SW: g.sw, DW: g.dw, ...cfg.extra };
  dispatch({ name: 'conv2d_fwd', shader: cfg.shader ?? 'conv2d_fwd', defines }, u, [x.binding, wp.binding, (bias ?? wp).binding, y.binding], [Math.ceil(nTiles / 64), g.groups * coBlocks]);
  wp.dispose();
  return y;
}

/** Forward without autograd; picks the kernel by shape. */
export function conv2dForwardRaw(x: Tensor, w: Tensor, bias: Tensor | null, g: ConvGeometry, cfg?: FwdConfig): Tensor {
  return fwdGemm(x, w, bias, g, cfg ?? { TM: 4, TN: 8 });
}

// ---- the op -------------------------------------------------------------------------------

const conv2dOp = defineOp<ConvParams>({
  name: 'conv2d',
  shape(inputs, p) {
    const [x, w, b] = inputs;
    expectRank('conv2d', x, 4, 'x');
    expectRank('conv2d', w, 4, 'weight');
    expectDtype('conv2d', x, 'f32', 'x');
    expectDtype('conv2d', w, 'f32', 'weight');
    if (b) expectDtype('conv2d', b, 'f32', 'bias');
    const g = convGeometry(x.shape, w.shape, p, b?.shape ?? null);
    return { shape: [g.N, g.Cout, g.Ho, g.Wo], dtype: 'f32' };
  },
  forward(inputs, p, ctx) {
    const [x, w, b] = inputs;
    const g = convGeometry(x.shape, w.shape, p);
    const y = conv2dForwardRaw(x, w, b ?? null, g);
    if (ctx.needsGrad) ctx.save(x, w);
    return y;
  },
  backward: 'not-differentiable' as never,
});

/**
 * 2-D convolution. x [N, Cin, H, W], w [Cout, Cin / groups, kH, kW], bias [Cout] or null.
 * Output [N, Cout, Ho, Wo] with Ho = floor((H + top + bottom - dilation * (kH - 1) - 1) / stride) + 1.
 */
export function conv2d(x: Tensor, w: Tensor, bias: Tensor | null = null, o: Conv2dOptions = {}): Tensor {
  const p = normParams(o);
  return conv2dOp(bias ? [x, w, bias] : [x, w], p);
}
