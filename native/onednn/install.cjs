'use strict';
// Builds the addon with node-gyp: npm's bundled one (npm names it in npm_config_node_gyp for install scripts;
// rebuild by hand with `npm rebuild fewshot-onednn`), else a node-gyp on PATH. Uses the
// Node headers installed beside the running node when there are some (Debian's nodejs ships them in
// /usr/include/node), so no header download is needed; otherwise node-gyp fetches them. Exits non-zero when
// oneDNN's headers are missing: npm then drops this optional package and fewshot runs on plain wasm.
const { existsSync } = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const headerDirs = ['/usr/include', '/usr/local/include', ...(process.env.CPATH ?? '').split(':').filter(Boolean)];
if (!headerDirs.some((d) => existsSync(path.join(d, 'oneapi', 'dnnl', 'dnnl.hpp')))) {
  console.error('fewshot-onednn: oneDNN headers not found (Debian/Ubuntu: apt-get install libdnnl-dev); fewshot will run on plain wasm');
  process.exit(1);
}
const prefix = path.resolve(path.dirname(process.execPath), '..');
const args = ['rebuild'];
if (existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
const gyp = process.env.npm_config_node_gyp;
const r = gyp
  ? spawnSync(process.execPath, [gyp, ...args], { stdio: 'inherit' })
  : spawnSync('node-gyp', args, { stdio: 'inherit', shell: process.platform === 'win32' });
if (r.error) console.error(`fewshot-onednn: could not run node-gyp (${r.error.message}); rebuild with \`npm rebuild fewshot-onednn\``);
process.exit(r.status ?? 1);
