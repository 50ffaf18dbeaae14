// Kernel uniforms by name: the struct layout parser (WGSL uniform layout rules), the packer,
// and the errors a launch with a missing, unknown or mistyped field gets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuInit, rk } from './helpers.ts';
import { parseUniformLayout, packUniforms, UniformError } from '../engine/uniforms.ts';
import { dispatch, groupsFor, uniformLayout } from '../engine/program.ts';

await gpuInit();

const decl = (body: string) => `struct S { ${body} }\n@group(0) @binding(0) var<uniform> p: S;\n@group(0) @binding(1) var<storage, read_write> o: array<f32>;`;

test('layout follows WGSL uniform rules: vec2 8-aligned, vec3/vec4/array elements 16-aligned, size rounded to 16', () => {
  // offsets in bytes worked out by hand from the WGSL spec's alignment table
  const l = parseUniformLayout(decl('a: u32, b: vec2f, c: vec3<u32>, d: f32, e: array<vec4u, 2>, f: i32, g: array<f32, 3>'), 't')!;
  const at = Object.fromEntries(l.fields.map((f) => [f.name, f.offset * 4]));
  assert.equal(at, { a: 0, b: 8, c: 16, d: 28, e: 32, f: 64, g: 80 });
  assert.is(l.fields.find((f) => f.name === 'g')!.stride * 4, 16); // scalar array elements are 16 bytes apart in a uniform
  assert.is(l.words * 4, 128); // 80 + 3 * 16 = 128
  assert.is(l.struct, 'S');
  const k = parseUniformLayout('// comment: n: u32\nstruct P {\n  n: u32, // count\n  x: f32,\n}\n@group(0) @binding(0) var<uniform> p: P;', 't')!;
  assert.equal(k.fields.map((f) => [f.name, f.scalar]), [['n', 'u32'], ['x', 'f32']]);
  assert.is(k.words, 4);
  assert.is(parseUniformLayout('@group(0) @binding(1) var<storage, read_write> o: array<f32>;', 't'), null);
  assert.throws(() => parseUniformLayout(decl('m: mat2x2f'), 'kernel k'), /kernel k: uniform field m has type mat2x2f/);
});

test('packing writes each field at its offset with its type; unused vector/array words become 0', () => {
  const l = parseUniformLayout(decl('n: u32, alpha: f32, off: i32, ok: u32, v: vec2f, shape: array<vec4u, 2>'), 't')!;
  const data = new Uint32Array(64).fill(0xdeadbeef);
  const views = { u32: data, i32: new Int32Array(data.buffer), f32: new Float32Array(data.buffer) };
  packUniforms(l, { n: 7, alpha: 0.1, off: -3, ok: true, v: [1.5, -2], shape: [4, 5, 6] }, views, 16, 't');
  assert.is(data[16], 7);
  assert.is(views.f32[17], Math.fround(0.1));
  assert.is(views.i32[18], -3);
  assert.is(data[19], 1);
  assert.equal([views.f32[20], views.f32[21]], [1.5, -2]);
  assert.equal(Array.from(data.subarray(24, 32)), [4, 5, 6, 0, 0, 0, 0, 0]);
  assert.is(data[15], 0xdeadbeef); // nothing written before the slot...
  assert.is(data[32], 0xdeadbeef); // ...or after the layout's 16 words
});

test('a launch names the kernel and field when a uniform is missing, unknown or of the wrong kind', () => {
  const t = rk.zeros([8]);
  const fill = { name: 'fill', shader: 'fill', defines: { T: 'f32' } };
  const launch = (u: Record<string, unknown>) => () => dispatch(fill, u as never, [t.binding], groupsFor(8));
  assert.throws(launch({ n: 8 }), (e: Error) => e instanceof UniformError && /kernel fill \(shaders\/fill\.wgsl\): uniform value \(f32\) of struct Params is missing/.test(e.message));
  assert.throws(launch({ n: 8, value: 1, extra: 2 }), (e: Error) => e instanceof UniformError && /kernel fill .*unknown uniform extra \(struct Params has n, value\)/.test(e.message));
  assert.throws(launch({ n: 8.5, value: 1 }), /uniform n \(u32\) needs an integer in \[0, 2\^32\), got 8\.5/);
  assert.throws(launch({ n: -1, value: 1 }), /uniform n \(u32\) needs an integer/);
  assert.throws(launch({ n: 8, value: '1' }), /uniform value \(f32\) needs a number, got 1/);
  const fillI = { name: 'fill', shader: 'fill', defines: { T: 'i32' } };
  assert.throws(() => dispatch(fillI, { n: 8, value: 0.5 }, [t.binding], 1), /uniform value \(i32\) needs a 32-bit signed integer, got 0\.5/);
  assert.equal(uniformLayout(fillI)!.fields.map((f) => `${f.name}: ${f.type}`), ['n: u32', 'value: i32']);
  t.dispose();
});

test('float and negative integer uniforms reach the kernel without manual bit casts', async () => {
  const f = rk.full([5], -0.3);
  const i = rk.full([5], -7, 'i32');
  assert.equal(Array.from(await f.toArray()), new Array(5).fill(Math.fround(-0.3)));
  assert.equal(Array.from(await i.toArray()), new Array(5).fill(-7));
  f.dispose();
  i.dispose();
});

test.run();
