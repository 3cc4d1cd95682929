// Runs after `tsc` in `npm run build` (and so in `prepack`): records which commit the compiled package was built
// from in dist/build-info.json, so results written by an installed package (no git checkout around it) still say
// where their code came from.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const git = (...args) => execFileSync('git', args, { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
let commit = 'unknown';
try {
  commit = git('rev-parse', '--short', 'HEAD');
  if (git('status', '--porcelain', '--untracked-files=no', 'src')) commit += '+dirty';
} catch {
  /* built outside a git checkout (e.g. from an unpacked tarball) */
}
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
writeFileSync(path.join(root, 'dist', 'build-info.json'), JSON.stringify({ package: `${pkg.name}@${pkg.version}`, commit }, null, 2) + '\n');
