// Dense matmul (compute bound) and an elementwise add (memory bound).
import * as rk from '../engine/index.ts';
import * as ops from './ops.ts';
import { compareSampled, matmulAt, randomData, sampleIndices, seededRandom } from './check.ts';
import type { Case } from './harness.ts';

function matmulCase(n: number, quick: boolean): Case {
  return {
    name: `matmul ${n}x${n}x${n}`,
    kind: 'compute',
    work: 2 * n ** 3,
    quick,
    maxRepeat: n >= 2048 ? 3 : undefined,
    needs: () => ops.missing('matmul'),
    torch: { op: 'matmul', M: n, K: n, N: n },
    async setup({ tf }) {
      const rng = seededRandom(n);
      const A = randomData(n * n, rng);
      const B = randomData(n * n, rng);
      const a = rk.tensor(A.f32, [n, n]);
      const b = rk.tensor(B.f32, [n, n]);
      const ta = tf?.tensor(A.f32, [n, n]);
      const tb = tf?.tensor(B.f32, [n, n]);
      return {
        roskd: { run: () => rk.tidy(() => void ops.matmul(a, b)) },
        tfjs: tf ? { run: () => void tf.matMul(ta!, tb!) } : undefined,
        async check() {
          const y = ops.matmul(a, b);
          const got = await y.toArray();
          y.dispose();
          const idx = sampleIndices(n * n, 256, rng);
          return compareSampled('C', got, idx, idx.map((f) => matmulAt(A.f64, B.f64, n, n, f)), 1e-3);
        },
        dispose() {
          a.dispose();
          b.dispose();
          ta?.dispose();
          tb?.dispose();
        },
      };
    },
  };
}

function addCase(n: number): Case {
  return {
    name: `add ${n >> 20}M elementwise`,
    kind: 'memory',
    work: 3 * 4 * n,
    quick: true,
    needs: () => ops.missing('add'),
    torch: { op: 'add', n },
    async setup({ tf }) {
      const rng = seededRandom(7);
      const A = randomData(n, rng);
      const B = randomData(n, rng);
      const a = rk.tensor(A.f32, [n]);
      const b = rk.tensor(B.f32, [n]);
      const ta = tf?.tensor(A.f32, [n]);
      const tb = tf?.tensor(B.f32, [n]);
      return {
        roskd: { run: () => rk.tidy(() => void rk.add(a, b)) },
        tfjs: tf ? { run: () => void tf.add(ta!, tb!) } : undefined,
        async check() {
          const y = rk.add(a, b);
          const got = await y.toArray();
          y.dispose();
          const idx = sampleIndices(n, 4096, rng);
          return compareSampled('a+b', got, idx, idx.map((i) => A.f64[i] + B.f64[i]), 1e-6);
        },
        dispose() {
          a.dispose();
          b.dispose();
          ta?.dispose();
          tb?.dispose();
        },
      };
    },
  };
}

export function basicCases(): Case[] {
  return [addCase(8 << 20), matmulCase(512, true), matmulCase(1024, false), matmulCase(2048, false)];
}
