// Run by `npm install` / `npm ci` in a checkout (the "prepare" script): links node_modules/fewshot to this
// repository, so the plugins under plugins/ (each its own package) resolve `import … from 'fewshot'` to this
// checkout exactly as an installed plugin resolves it to the installed package. Nothing else changes.
import { existsSync, lstatSync, mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const link = path.join(root, 'node_modules', 'fewshot');
let present = false;
try {
  present = lstatSync(link) !== undefined;
} catch {
  /* absent */
}
if (!present && existsSync(path.join(root, 'src', 'index.ts'))) {
  mkdirSync(path.dirname(link), { recursive: true });
  symlinkSync('..', link, process.platform === 'win32' ? 'junction' : 'dir');
  console.log('linked node_modules/fewshot -> .');
}
