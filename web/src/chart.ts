// Live line charts on a canvas: one series per model, redrawn as points arrive.
const COLORS = ['#0b5cad', '#c2410c', '#15803d', '#7e22ce', '#b91c1c', '#0e7490', '#a16207', '#4d7c0f'];

export class LiveChart {
  private series = new Map<string, { x: number; y: number }[]>();
  private pending = false;
  constructor(private readonly canvas: HTMLCanvasElement, private readonly yLabel: string) {
    this.draw();
  }
  clear(): void {
    this.series.clear();
    this.draw();
  }
  add(name: string, x: number, y: number): void {
    if (!Number.isFinite(y)) return;
    let s = this.series.get(name);
    if (!s) this.series.set(name, (s = []));
    s.push({ x, y });
    if (!this.pending) {
      this.pending = true;
      requestAnimationFrame(() => {
        this.pending = false;
        this.draw();
      });
    }
  }
  draw(): void {
    const c = this.canvas;
    const g = c.getContext('2d')!;
    const W = c.width;
    const H = c.height;
    const L = 48, R = 110, T = 10, B = 28;
    g.fillStyle = '#fff';
    g.fillRect(0, 0, W, H);
    const pts = [...this.series.values()].flat();
    g.fillStyle = '#57606a';
    g.font = '12px system-ui, sans-serif';
    if (pts.length === 0) {
      g.fillText(`${this.yLabel}: no data yet`, L, H / 2);
      return;
    }
    const x0 = Math.min(...pts.map((p) => p.x));
    const x1 = Math.max(...pts.map((p) => p.x), x0 + 1);
    let y0 = Math.min(...pts.map((p) => p.y));
    let y1 = Math.max(...pts.map((p) => p.y));
    if (y1 - y0 < 1e-6) (y0 -= 0.5), (y1 += 0.5);
    const px = (x: number) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
    const py = (y: number) => H - B - ((y - y0) / (y1 - y0)) * (H - T - B);
    g.strokeStyle = '#d0d7de';
    g.beginPath();
    g.moveTo(L, T);
    g.lineTo(L, H - B);
    g.lineTo(W - R, H - B);
    g.stroke();
    g.fillText(y1.toFixed(3), 2, T + 10);
    g.fillText(y0.toFixed(3), 2, H - B);
    g.fillText(String(Math.round(x0)), L, H - 10);
    g.fillText(String(Math.round(x1)), W - R - 20, H - 10);
    [...this.series.entries()].forEach(([name, s], i) => {
      g.strokeStyle = g.fillStyle = COLORS[i % COLORS.length];
      g.lineWidth = 1.5;
      g.setLineDash(name.startsWith('teacher') ? [4, 3] : []);
      g.beginPath();
      s.forEach((p, k) => (k ? g.lineTo(px(p.x), py(p.y)) : g.moveTo(px(p.x), py(p.y))));
      if (s.length === 1) g.arc(px(s[0].x), py(s[0].y), 2, 0, 7);
      g.stroke();
      g.setLineDash([]);
      g.fillText(name, W - R + 6, T + 12 + i * 14);
    });
  }
}
