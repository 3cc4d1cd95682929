// Runs after `tsc` in `npm run build` (and so in `prepack`): records which commit the compiled package was built
// from in dist/build-info.json, so results written by an installed package (no git checkout around it) still say
// where their code came from. The commit is read by the same compiled code results use from a checkout.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkoutCommit } from '../dist/util/git-commit.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const commit = checkoutCommit(root) ?? 'unknown'; // built outside a git checkout (e.g. from an unpacked tarball)
writeFileSync(path.join(root, 'dist', 'build-info.json'), JSON.stringify({ package: `${pkg.name}@${pkg.version}`, commit }, null, 2) + '\n');
