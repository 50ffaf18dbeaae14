// `npm run web:serve`: serves the built site (web/dist, or the folder given) on 127.0.0.1 (a
// secure context, so WebGPU is allowed) and prints the URL. PORT=<n> picks the port (default 8765).
import { createServer, type Server } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json', '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.safetensors': 'application/octet-stream' };

/** A static file server for `dir` on 127.0.0.1 (port 0: any free port). */
export function serveStatic(dir: string, port = 0): Promise<Server> {
  const base = resolve(dir);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let f = join(base, normalize(decodeURIComponent(url.pathname)));
    if (f !== base && !f.startsWith(base + sep)) return void res.writeHead(403).end();
    if (existsSync(f) && statSync(f).isDirectory()) f = join(f, 'index.html');
    if (!existsSync(f)) return void res.writeHead(404).end('not found');
    res.writeHead(200, { 'content-type': TYPES[extname(f).toLowerCase()] ?? 'application/octet-stream', 'cache-control': 'no-cache' }).end(readFileSync(f));
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => ok(server));
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = resolve(process.argv[2] ?? fileURLToPath(new URL('../web/dist', import.meta.url)));
  if (!existsSync(join(dir, 'index.html'))) {
    console.error(`error: ${dir} has no index.html: run \`npm run web\` first`);
    process.exit(1);
  }
  const port = Number(process.env.PORT ?? 8765);
  serveStatic(dir, port).then(
    () => console.log(`serving ${dir} at http://127.0.0.1:${port}/ (Ctrl-C stops)`),
    (e: Error) => {
      console.error(`error: cannot listen on 127.0.0.1:${port}: ${e.message} (PORT=<n> picks another)`);
      process.exit(1);
    },
  );
}
