// `npm run web`: builds the static site web/ -> web/dist (or the folder given as the first
// argument): app.js bundled by esbuild for the browser (no Node module may get in), index.html,
// style.css and the demo (a small student trained on the synthetic phantoms, and images).
import { build, type Plugin } from 'esbuild';
import { builtinModules } from 'node:module';
import { cpSync, mkdirSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Fails the build on any Node built-in, naming the importer. */
export const noNode: Plugin = {
  name: 'no-node-builtins',
  setup(b) {
    const names = new Set(builtinModules);
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.path.startsWith('node:') || names.has(args.path.split('/')[0]))
        return { errors: [{ text: `web bundle: ${args.importer} imports the Node module "${args.path}"` }] };
      return undefined;
    });
  },
};

export interface WebBuild {
  dir: string;
  bytes: number;
  inputs: string[];
}

export async function buildWeb(out = join(root, 'web/dist'), opts: { minify?: boolean } = {}): Promise<WebBuild> {
  const dir = resolve(out);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const r = await build({
    entryPoints: [join(root, 'web/src/main.ts')],
    absWorkingDir: root,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: opts.minify ?? true,
    sourcemap: false,
    outfile: join(dir, 'app.js'),
    metafile: true,
    logLevel: 'silent',
    // pngjs' browserify bundle: the same decoder as in Node, with its own zlib and Buffer
    alias: { pngjs: 'pngjs/browser.js' },
    plugins: [noNode],
  });
  for (const f of ['index.html', 'style.css']) cpSync(join(root, 'web', f), join(dir, f));
  cpSync(join(root, 'web/demo'), join(dir, 'demo'), { recursive: true });
  const images = readdirSync(join(root, 'web/demo/images')).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort();
  writeFileSync(join(dir, 'demo/images.json'), JSON.stringify(images));
  return { dir, bytes: statSync(join(dir, 'app.js')).size, inputs: Object.keys(r.metafile.inputs) };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const t0 = performance.now();
  const b = await buildWeb(process.argv[2]);
  console.log(`web: built ${b.dir} (app.js ${(b.bytes / 1024).toFixed(0)} KiB minified, ${b.inputs.length} source files) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log('serve it with `npm run web:serve` (or any static file server)');
}
