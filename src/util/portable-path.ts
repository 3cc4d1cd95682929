import os from 'node:os';
import path from 'node:path';
import { packageRoot } from './package-root.ts';

/*
 * Results are committed and shared, so they must not hold the absolute paths of the machine that wrote them
 * (/home/alice/…, /tmp/…). A path is recorded relative to the working directory when it lies under it, as
 * `<fewshot>/…` when it lies in the fewshot package (the committed episode files of an installed package),
 * as `<tmp>/…` under the temp folder, and relative to the working directory otherwise.
 */

export const PACKAGE_MARK = '<fewshot>';
export const TMP_MARK = '<tmp>';

function under(p: string, dir: string): boolean {
  const rel = path.relative(dir, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** One absolute path made portable (a relative path is returned as it is). */
// System locations say nothing about the user or the machine's layout: kept as they are.
const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib64', '/etc', '/opt', '/proc', '/dev'];

export function portablePath(p: string, cwd = process.cwd()): string {
  if (!path.isAbsolute(p) || SYSTEM_DIRS.some((d) => under(p, d))) return p;
  if (under(p, cwd)) return path.relative(cwd, p) || '.';
  let root: string | undefined;
  try {
    root = packageRoot();
  } catch {
    root = undefined;
  }
  if (root && under(p, root)) return path.posix.join(PACKAGE_MARK, path.relative(root, p).split(path.sep).join('/'));
  const tmp = os.tmpdir();
  if (under(p, tmp)) return path.posix.join(TMP_MARK, path.relative(tmp, p).split(path.sep).join('/'));
  return path.relative(cwd, p);
}

// An absolute path inside free text: a "/" not preceded by a word character, ".", ")" or "/" (so "a/b",
// "s/√n" and "./x" are left alone), then path characters. file:// URLs are covered through their path.
const ABSOLUTE_IN_TEXT = /(?<![\w.)/:\\])\/(?:[\w.@+~-]+\/)*[\w.@+~-]+\/?|file:\/\/(\/[^\s'"()<>,;]+)/g;

/** Every absolute path inside a string made portable (the backend detail line, a command line). */
export function portableText(text: string, cwd = process.cwd()): string {
  return text.replace(ABSOLUTE_IN_TEXT, (m: string, fileUrlPath?: string) => portablePath(fileUrlPath ?? m, cwd));
}

/** A JSON-like value with every string passed through `portableText`. */
export function portableValue<T>(value: T, cwd = process.cwd()): T {
  if (typeof value === 'string') return portableText(value, cwd) as T;
  if (Array.isArray(value)) return value.map((v) => portableValue(v, cwd)) as T;
  if (value && typeof value === 'object' && [Object.prototype, null].includes(Object.getPrototypeOf(value))) {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, portableValue(v, cwd)])) as T;
  }
  return value;
}

/** The inverse of `portablePath`: a recorded path back to an absolute one on this machine. */
export function resolvePortablePath(p: string, cwd = process.cwd()): string {
  if (p === PACKAGE_MARK || p.startsWith(`${PACKAGE_MARK}/`)) return path.join(packageRoot(), p.slice(PACKAGE_MARK.length));
  if (p === TMP_MARK || p.startsWith(`${TMP_MARK}/`)) return path.join(os.tmpdir(), p.slice(TMP_MARK.length));
  return path.resolve(cwd, p);
}
