// Optional PyTorch CPU column: a separate /usr/bin/python3 process times the same ops on the
// same shapes after the GPU cases are done (so it never competes with them for the cores).
// Skipped silently when `import torch` fails. The script is embedded here so the bench stays
// within bench/*.ts. Training-step rows build torchvision's models with the builders of
// test/fixtures/torch/make_fixtures.py (the same ones the model parity tests are made from), so
// both sides train the same architecture; the row reports PyTorch's parameter count, which
// bench/run.ts compares with ours.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Row } from './harness.ts';

export type TorchSpec =
  | { op: 'matmul'; M: number; K: number; N: number }
  | { op: 'add'; n: number }
  | { op: 'conv'; part: 'fwd' | 'bwd_data' | 'bwd_weight'; N: number; Cin: number; H: number; W: number; Cout: number; k: number; stride: number; pad: number; groups: number }
  | { op: 'bn'; N: number; C: number; H: number; W: number }
  | { op: 'kd'; N: number; C: number; T: number; alpha: number }
  | { op: 'adamw'; sizes: number[] }
  | {
      op: 'train';
      model: string;
      width: number;
      batch: number;
      px: number;
      inChannels: number;
      classes: number;
      /** KD loss temperature and weight of the soft part */
      T: number;
      alpha: number;
      /** SGD with momentum and L2 weight decay */
      lr: number;
      momentum: number;
      weightDecay: number;
      /** torch.set_num_threads for this case (default: every core) */
      threads?: number;
    };

/**
 * Wall-clock median / min, the median CPU time of the python process (all its threads: on a
 * loaded machine wall time also counts waiting for a core), the thread count, and for training
 * steps the model's parameter count.
 */
export type TorchRow = { medianMs: number; minMs: number; cpuMs: number; threads: number; params?: number } | { error: string };

export interface TorchResult {
  version: string;
  threads: number;
  rows: Record<string, TorchRow>;
}

const PY = String.raw`
import sys, json, os, time, statistics
import torch
import torch.nn.functional as F
ALL_THREADS = os.cpu_count() or 1
torch.set_num_threads(ALL_THREADS)
req = json.load(sys.stdin)
g = torch.Generator().manual_seed(0)
def rn(*s): return torch.randn(*s, generator=g)

def kd_loss(zs, zt, y, T, al):
    ce = F.cross_entropy(zs, y)
    kl = F.kl_div(F.log_softmax(zs / T, 1), F.log_softmax(zt / T, 1), reduction='batchmean', log_target=True)
    return (1 - al) * ce + al * T * T * kl

def make(s):
    op = s['op']
    if op == 'matmul':
        a, b = rn(s['M'], s['K']), rn(s['K'], s['N'])
        return lambda: torch.mm(a, b)
    if op == 'add':
        a, b = rn(s['n']), rn(s['n'])
        return lambda: a + b
    if op == 'conv':
        x = rn(s['N'], s['Cin'], s['H'], s['W'])
        w = rn(s['Cout'], s['Cin'] // s['groups'], s['k'], s['k'])
        st, pd, gr = [s['stride']] * 2, [s['pad']] * 2, s['groups']
        if s['part'] == 'fwd':
            return lambda: F.conv2d(x, w, None, st, pd, 1, gr)
        gy = torch.randn_like(F.conv2d(x, w, None, st, pd, 1, gr))
        mask = [True, False, False] if s['part'] == 'bwd_data' else [False, True, False]
        return lambda: torch.ops.aten.convolution_backward(gy, x, w, None, st, pd, [1, 1], False, [0, 0], gr, mask)
    if op == 'bn':
        x = rn(s['N'], s['C'], s['H'], s['W']).requires_grad_()
        gam, bet = torch.ones(s['C'], requires_grad=True), torch.zeros(s['C'], requires_grad=True)
        rm, rv = torch.zeros(s['C']), torch.ones(s['C'])
        gy = torch.randn_like(x)
        def f():
            y = F.batch_norm(x, rm, rv, gam, bet, True, 0.1, 1e-5)
            return torch.autograd.grad(y, (x, gam, bet), gy)
        return f
    if op == 'kd':
        N, C, T, al = s['N'], s['C'], s['T'], s['alpha']
        zs, zt = rn(N, C).requires_grad_(), rn(N, C)
        y = torch.randint(0, C, (N,), generator=g)
        return lambda: torch.autograd.grad(kd_loss(zs, zt, y, T, al), zs)
    if op == 'adamw':
        ps = [rn(n).requires_grad_() for n in s['sizes']]
        for p in ps: p.grad = rn(p.numel())
        opt = torch.optim.AdamW(ps, lr=1e-3, weight_decay=1e-2)
        return opt.step
    if op == 'train':
        if req.get('fixtures') not in sys.path: sys.path.insert(0, req['fixtures'])
        import make_fixtures
        torch.manual_seed(0)
        m = make_fixtures.build(s['model'], s['width'], True, s['inChannels'], s['classes'])
        m.train()
        B, px, K = s['batch'], s['px'], s['classes']
        x, zt = rn(B, s['inChannels'], px, px), 3 * rn(B, K)
        y = torch.randint(0, K, (B,), generator=g)
        opt = torch.optim.SGD(m.parameters(), lr=s['lr'], momentum=s['momentum'], weight_decay=s['weightDecay'])
        def f():
            loss = kd_loss(m(x), zt, y, s['T'], s['alpha'])
            loss.backward()
            opt.step()
            opt.zero_grad()
        f.params = sum(p.numel() for p in m.parameters())
        return f
    raise ValueError('unknown op ' + op)

out = {'version': torch.__version__, 'threads': torch.get_num_threads(), 'rows': {}}
for c in req['cases']:
    try:
        torch.set_num_threads(c['spec'].get('threads') or ALL_THREADS)
        reps, warm = c['repeat'], c['warmup']
        f = make(c['spec'])
        for _ in range(warm): f()
        ts, cpu = [], []
        for _ in range(reps):
            t0, c0 = time.perf_counter(), time.process_time()
            f()
            ts.append((time.perf_counter() - t0) * 1e3); cpu.append((time.process_time() - c0) * 1e3)
        out['rows'][c['name']] = {'medianMs': statistics.median(ts), 'minMs': min(ts), 'cpuMs': statistics.median(cpu), 'threads': torch.get_num_threads(), **({'params': f.params} if hasattr(f, 'params') else {})}
    except Exception as e:
        out['rows'][c['name']] = {'error': str(e).split('\n')[0]}
print(json.dumps(out))
`;

const PYTHON = '/usr/bin/python3';

export function torchAvailable(): boolean {
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 });
  return r.status === 0;
}

const FIXTURES = fileURLToPath(new URL('../test/fixtures/torch/', import.meta.url));

export interface TorchCase {
  name: string;
  spec: TorchSpec;
  /** timed runs and untimed runs first (the roskd case's own budget) */
  repeat: number;
  warmup: number;
}

/** Times every case in one python process; null when it could not run. */
export function runTorch(cases: TorchCase[], timeoutMs: number): TorchResult | null {
  if (cases.length === 0) return null;
  const r = spawnSync(PYTHON, ['-c', PY], { input: JSON.stringify({ fixtures: FIXTURES, cases }), encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 << 20 });
  if (r.status !== 0) return null;
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as TorchResult;
  } catch {
    return null;
  }
}

/**
 * Puts each PyTorch result on its row. Both sides must train the same network: where a training
 * row's parameter counts differ, the PyTorch time is replaced by an error. Returns those errors.
 */
export function attachTorch(rows: Row[], res: TorchResult): string[] {
  const errors: string[] = [];
  for (const r of rows) {
    const t = res.rows[r.name];
    if (!t) continue;
    r.torch = t;
    const ours = r.extra?.params;
    if ('params' in t && typeof t.params === 'number' && typeof ours === 'number' && t.params !== ours) {
      r.torch = { error: `parameter count differs: roskd ${ours}, PyTorch ${t.params}` };
      errors.push(`  ERROR ${r.name}: PyTorch column: ${r.torch.error}`);
    }
  }
  return errors;
}
