// The bench's PyTorch training-step column: results land on their rows, a parameter-count
// mismatch replaces the PyTorch time by an error, and the table shows PyTorch's images/s and
// roskd/PyTorch for training rows. When /usr/bin/python3 has torch and torchvision, one real
// (tiny) training step runs through the embedded script and its parameter count must equal ours.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { attachTorch, runTorch, type TorchResult } from '../bench/torch.ts';
import { markdown, type Report } from '../bench/report.ts';
import type { Row } from '../bench/harness.ts';
import { gpuInit, rk } from './helpers.ts';
import { createModel } from '../models/index.ts';

const trainRow = (name: string, ms: number, params: number): Row => ({
  name,
  kind: 'train',
  work: 64,
  status: 'ok',
  roskd: { basis: 'wall', medianMs: ms, minMs: ms, wallMedianMs: ms, samples: [ms] },
  throughput: 64 / (ms / 1e3),
  unit: 'img/s',
  extra: { params },
});

test('results land on their rows; a parameter-count mismatch becomes an error', () => {
  const rows = [trainRow('a', 500, 1000), trainRow('b', 400, 2000), trainRow('c', 300, 5)];
  const res: TorchResult = {
    version: 'x',
    threads: 2,
    rows: { a: { medianMs: 1000, minMs: 900, cpuMs: 1800, threads: 2, params: 1000 }, b: { medianMs: 100, minMs: 90, cpuMs: 150, threads: 2, params: 2001 } },
  };
  const errors = attachTorch(rows, res);
  assert.equal(rows[0].torch, res.rows.a);
  assert.equal(rows[1].torch, { error: 'parameter count differs: roskd 2000, PyTorch 2001' });
  assert.is(rows[2].torch, undefined);
  assert.equal(errors, ['  ERROR b: PyTorch column: parameter count differs: roskd 2000, PyTorch 2001']);
});

test('the table gives PyTorch images/s and roskd/PyTorch for training rows', () => {
  const rows = [trainRow('train step m', 500, 10), trainRow('train step n', 400, 20)];
  rows[0].torch = { medianMs: 2000, minMs: 1900, cpuMs: 3000, threads: 2, params: 10 };
  rows[1].torch = { error: 'parameter count differs: roskd 20, PyTorch 21' };
  const rep: Report = {
    date: 'd',
    adapter: { vendor: 'v', architecture: 'a', device: '', description: 'desc', backend: 'vulkan', features: [] },
    peer: null,
    torch: { version: '1.13', threads: 2 },
    options: { quick: false, repeat: 1, warmup: 0, filter: null, tfjs: false },
    ceilings: { gflops: 1, gbs: 1, detail: { fma: [] } } as unknown as Report['ceilings'],
    rows,
  };
  const md = markdown(rep);
  assert.ok(md.includes('| PyTorch CPU ms (wall) | PyTorch img/s | roskd/PyTorch |'), md);
  // roskd 64 / 0.5 s = 128 img/s; PyTorch 64 / 2 s = 32 img/s; ratio 4
  const m = md.split('\n').find((l) => l.startsWith('| train step m '))!;
  assert.match(m, /\| 128 img\/s \|.*\| 2000 \/ 1900 \| 32\.0 \| 4\.00 \| ok \|/);
  const n = md.split('\n').find((l) => l.startsWith('| train step n '))!;
  assert.match(n, /error: parameter count differs: roskd 20, PyTorch 21 \|\s+\|\s+\| ok/);
  assert.ok(md.includes('(training steps: 2)'));
});

const haveTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch, torchvision'], { stdio: 'ignore', timeout: 60_000 }).status === 0;

test('a real PyTorch training step (tiny DenseNet) reports the parameter count of our model', async () => {
  if (!haveTorch) return console.log('  skipped: /usr/bin/python3 cannot import torch and torchvision');
  await gpuInit();
  const spec = { op: 'train', model: 'densenet121', width: 0.125, batch: 4, px: 8, inChannels: 1, classes: 2, T: 4, alpha: 0.7, lr: 0.01, momentum: 0.9, weightDecay: 5e-4, threads: 1 } as const;
  const res = runTorch([{ name: 'tiny', spec, repeat: 1, warmup: 0 }], 240_000);
  assert.ok(res, 'the python process ran');
  const t = res!.rows.tiny;
  assert.ok('medianMs' in t, JSON.stringify(t));
  if (!('medianMs' in t)) return;
  assert.ok(t.medianMs > 0 && t.cpuMs >= 0 && t.threads === 1);
  const m = createModel('densenet121', { width: 0.125, smallInput: true, inChannels: 1, numClasses: 2 });
  assert.is(t.params, m.parameters().reduce((a: number, p: rk.Tensor) => a + p.size, 0));
  m.dispose();
});

test.run();
