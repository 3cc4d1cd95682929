import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import '../builtin.ts';
import { UserError } from '../util/errors.ts';

/** Import plugin modules; each registers its heads/backbones/wrappers/dataset providers at import time. */
export async function loadPlugins(modules: string[] = []): Promise<void> {
  for (const m of modules) {
    const spec = m.startsWith('.') || path.isAbsolute(m) ? pathToFileURL(path.resolve(m)).href : m;
    try {
      await import(spec);
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(
        `cannot load plugin "${m}": ${(err as Error).message.split('\n')[0]}`,
        'pass a path to a .ts/.js module (or a package name) that calls registerHead / registerBackbone / registerWrapper / registerDatasetProvider',
      );
    }
  }
}

let cached: Record<string, string> | undefined;
/** Versions recorded in results: fewshot, tfjs, node, and the git commit the code ran from. */
export function softwareVersions(): Record<string, string> {
  if (cached) return cached;
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', 'src'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    if (dirty) commit += '+dirty';
  } catch {
    /* not a git checkout */
  }
  cached = { fewshot: pkg.version, tfjs: tf.version_core, node: process.version, commit };
  return cached;
}
