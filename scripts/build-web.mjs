// Builds the browser page (src/browser/main.ts + web/) into dist/web (or the folder given as the first
// argument): one minified ES-module bundle of the library core and the page, the wasm backend's binaries,
// the HTML/CSS and the offline service worker. Run by `npm run build` (and so `prepack`); `fewshot serve`
// serves the result.
//
// No Node built-ins reach the bundle: esbuild's browser platform fails the build on any `node:` import or
// on sharp. Two modules are swapped for browser versions, and only these:
//   src/tf-gradients.ts  -> src/browser/gradients.ts   (tfjs-core's ESM gradient registration)
//   node:worker_threads  -> src/browser/node-unavailable.ts (the Node training kernels' helper thread)
// and csv-parse's Node entry is replaced by its own browser build (csv-parse/browser/esm/sync, which brings the
// Buffer it needs).
import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const BROWSER_SWAPS = {
  tfGradients: path.join(root, 'src', 'browser', 'gradients.ts'),
  workerThreads: path.join(root, 'src', 'browser', 'node-unavailable.ts'),
};

/** Build the page into `outDir`; returns the files written (relative) and the bundle's esbuild metafile. */
export async function buildWebPage(outDir = path.join(root, 'dist', 'web')) {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const result = await esbuild.build({
    entryPoints: [path.join(root, 'src', 'browser', 'main.ts')],
    outfile: path.join(outDir, 'app.js'),
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: false,
    legalComments: 'linked',
    metafile: true,
    logLevel: 'warning',
    define: {
      __FEWSHOT_VERSION__: JSON.stringify(pkg.version),
      // The shared modules read a few FEWSHOT_* switches from process.env in Node; the page has none.
      'process.env': '{}',
    },
    alias: { 'csv-parse/sync': 'csv-parse/browser/esm/sync' },
    plugins: [
      {
        name: 'fewshot-browser-swaps',
        setup(build) {
          build.onResolve({ filter: /(^|\/)tf-gradients\.ts$/ }, () => ({ path: BROWSER_SWAPS.tfGradients }));
          build.onResolve({ filter: /^node:worker_threads$/ }, () => ({ path: BROWSER_SWAPS.workerThreads }));
          build.onResolve({ filter: /^sharp$/ }, (args) => ({ errors: [{ text: `sharp must not reach the browser bundle (imported by ${args.importer})` }] }));
        },
      },
    ],
  });
  const wasmDir = path.join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
  const wasmFiles = readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'));
  for (const f of wasmFiles) copyFileSync(path.join(wasmDir, f), path.join(outDir, f));
  for (const f of ['index.html', 'style.css']) copyFileSync(path.join(root, 'web', f), path.join(outDir, f));
  const assets = ['./', 'index.html', 'style.css', 'app.js', ...wasmFiles];
  const buildId = createHash('sha256');
  for (const f of assets.slice(1)) buildId.update(readFileSync(path.join(outDir, f)));
  const sw = readFileSync(path.join(root, 'web', 'sw.js'), 'utf8')
    .replace('__BUILD_ID__', buildId.digest('hex').slice(0, 16))
    .replace('__ASSETS__', JSON.stringify(assets));
  writeFileSync(path.join(outDir, 'sw.js'), sw);
  const files = readdirSync(outDir).sort();
  const sizes = Object.fromEntries(files.map((f) => [f, statSync(path.join(outDir, f)).size]));
  return { outDir, files, sizes, metafile: result.metafile };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { outDir, sizes } = await buildWebPage(process.argv[2] ? path.resolve(process.argv[2]) : undefined);
  const total = Object.values(sizes).reduce((a, b) => a + b, 0);
  console.log(
    `browser page built in ${path.relative(process.cwd(), outDir) || '.'}: ${Object.entries(sizes)
      .map(([f, n]) => `${f} ${(n / 1024).toFixed(0)} KiB`)
      .join(', ')} (${(total / 1024 / 1024).toFixed(2)} MiB)`,
  );
}
