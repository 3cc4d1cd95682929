import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/*
 * Where fewshot's own files live, independent of the current folder: the package root is the nearest folder
 * above this module with a package.json named "fewshot". It is the same folder whether this module runs from
 * src/util/ (a source checkout, under tsx) or dist/util/ (the compiled, installed package), so code that needs
 * a file shipped with the package (the committed episode files, package.json) finds it from either.
 */

let cachedRoot: string | undefined;

/** Absolute path of the fewshot package (the repository root in a checkout, node_modules/fewshot when installed). */
export function packageRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'fewshot') {
      cachedRoot = dir;
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`fewshot: no package.json named "fewshot" above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** The folder of committed episode files that ships with the package (`<package root>/episodes`). */
export function packagedEpisodesDir(): string {
  return path.join(packageRoot(), 'episodes');
}

/** name and version from the package's own package.json. */
export function packageInfo(): { name: string; version: string } {
  const pkg = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { name: string; version: string };
  return { name: pkg.name, version: pkg.version };
}
