import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { resolve as resolveModule } from 'import-meta-resolve';
import * as tf from '@tensorflow/tfjs-core';
import '../builtin.ts';
import { UserError } from '../util/errors.ts';
import { withRegistrationOrigin } from '../util/plugin-origin.ts';
import { packageRoot } from '../util/package-root.ts';
import { checkoutCommit } from '../util/git-commit.ts';
import { ENGINE_REVISION } from '../backend/engine-revision.ts';
import { portablePath } from '../util/portable-path.ts';
import { learners } from '../learners/registry.ts';
import { backbones } from '../backbones/registry.ts';
import { wrappers } from '../methods/registry.ts';
import { transformSets } from '../transforms/registry.ts';
import { datasetProviders } from '../data/providers/registry.ts';
import type { Registry } from '../util/registry.ts';

/** A loaded plugin as a result records it: which module, which version of its package, which exact file. */
export interface LoadedPlugin {
  /** The module as given (`./my-head.ts`, `fewshot-plugin-x`). */
  module: string;
  /** The file it resolved to, relative to the working directory when under it. */
  file?: string;
  /** name@version of the nearest package.json above the file, when there is one. */
  package?: string;
  /** sha256 of the module's file. */
  sha256?: string;
  /** What it registered, by kind. */
  registered: Record<RegistryKind, string[]>;
}

export type RegistryKind = 'learners' | 'backbones' | 'wrappers' | 'transformSets' | 'datasets';

const registries: Record<RegistryKind, Pick<Registry<object>, 'ids' | 'origin'>> = { learners, backbones, wrappers, transformSets, datasets: datasetProviders };

/** The plain method's wrapper has the id '' and is listed as `(plain)`. */
const listedName = (id: string) => id || '(plain)';

function registeredNames(): Record<RegistryKind, string[]> {
  return Object.fromEntries(Object.entries(registries).map(([kind, registry]) => [kind, registry.ids().map(listedName)])) as Record<RegistryKind, string[]>;
}

const loaded: (LoadedPlugin & { absoluteFile?: string })[] = [];

/** The plugins loaded so far in this process, in load order. */
export function loadedPlugins(): readonly LoadedPlugin[] {
  return loaded.map(({ absoluteFile, ...p }) => ({ ...p, file: absoluteFile }));
}

/** The plugins as a result or checkpoint records them (no absolute paths). */
export function pluginRecords(cwd = process.cwd()): LoadedPlugin[] {
  return loaded.map(({ absoluteFile, ...p }) => ({ ...p, ...(absoluteFile ? { file: portablePath(absoluteFile, cwd) } : {}) }));
}

/** Where each registered name came from: BUILTIN_ORIGIN or the plugin module that registered it. */
export function registrationOrigins(kind: RegistryKind, name: string): string {
  return registries[kind].origin(name === '(plain)' ? '' : name);
}

/** The nearest package.json above `file` (its path and content), if any. */
function nearestPackageJson(file: string): { file: string; pkg?: { name?: string; version?: string; type?: string } } | undefined {
  let dir = path.dirname(file);
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        return { file: manifest, pkg: JSON.parse(readFileSync(manifest, 'utf8')) };
      } catch {
        return { file: manifest };
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function nearestPackage(file: string): string | undefined {
  const pkg = nearestPackageJson(file)?.pkg;
  return pkg ? `${pkg.name ?? '(unnamed)'}@${pkg.version ?? '(no version)'}` : undefined;
}

/**
 * Why a plugin file that registered nothing may have been loaded as CommonJS: a `.ts`/`.js` file is ESM only
 * under a package.json with `"type": "module"`; as CommonJS its `import … from 'fewshot'` becomes a require of
 * a second copy of fewshot with registries of its own, so its registrations land there. Undefined when the
 * file is an ES module (`.mts`/`.mjs`, or under `"type": "module"`).
 */
function commonJsCause(file: string | undefined): { problem: string; fix: string } | undefined {
  if (!file || !/\.(ts|tsx|js|jsx)$/.test(file) || !existsSync(file) || !/['"]fewshot['"]/.test(readFileSync(file, 'utf8'))) return undefined;
  const near = nearestPackageJson(file);
  if (near?.pkg?.type === 'module') return undefined;
  const where = near ? `its nearest package.json, ${near.file}, has no "type": "module"` : 'no package.json above it says "type": "module"';
  const mts = file.replace(/\.(ts|tsx|js|jsx)$/, (ext) => (ext.startsWith('.t') ? '.mts' : '.mjs'));
  return {
    problem: `${file} was loaded as CommonJS (${where}), so its import of 'fewshot' loaded a second copy with its own registries`,
    fix: near
      ? `add "type": "module" to ${near.file}, or rename the plugin to ${path.basename(mts)}`
      : `rename the plugin to ${path.basename(mts)}, or put a package.json with "type": "module" beside it`,
  };
}

/**
 * The file a plugin module names, resolved once: a path against the working folder; a package name from the
 * working folder (a package installed in the user's project) by Node's ESM rules, then its CommonJS rules (a
 * package that exports only `require`), then from fewshot's own folder (a package installed beside a global
 * fewshot). The file found is the one hashed, recorded and imported, so a second copy elsewhere never runs
 * in its place.
 */
function resolvePluginFile(m: string, cwd: string): string | undefined {
  if (m.startsWith('.') || path.isAbsolute(m)) return path.resolve(cwd, m);
  const fromCwd = path.join(cwd, 'noop.js');
  const attempts = [
    () => fileURLToPath(resolveModule(m, pathToFileURL(fromCwd).href)),
    () => createRequire(fromCwd).resolve(m),
    () => fileURLToPath(import.meta.resolve(m)),
  ];
  for (const attempt of attempts) {
    try {
      return attempt();
    } catch {
      // not found this way (or not a file, e.g. a node: built-in): try the next
    }
  }
  return undefined;
}

/**
 * Import plugin modules; each registers its heads/backbones/wrappers/dataset providers at import time,
 * attributed to the module (errors and `fewshot list` name it). A module given twice is loaded once.
 */
export async function loadPlugins(modules: string[] = [], cwd = process.cwd()): Promise<void> {
  for (const m of modules) {
    if (loaded.some((p) => p.module === m)) continue;
    const file = resolvePluginFile(m, cwd);
    if (!file) {
      throw new UserError(
        `cannot find plugin package "${m}" from ${cwd} (nor from fewshot's own folder)`,
        `install it in your project (npm install ${m}), or pass the plugin's file as a path (./my-plugin.ts)`,
      );
    }
    const spec = pathToFileURL(file).href;
    const before = registeredNames();
    try {
      await withRegistrationOrigin(m, () => import(spec));
    } catch (err) {
      if (err instanceof UserError) throw err;
      const e = err as Error;
      const frame = (e.stack ?? '')
        .split('\n')
        .find((l) => /^\s+at /.test(l))
        ?.trim()
        .slice(0, 200);
      throw new UserError(
        `cannot load plugin "${m}": ${String(e.message).split('\n').slice(0, 2).join(' ').slice(0, 400)}${frame ? ` (${frame})` : ''}`,
        'pass a path to a .ts/.js module (or a package name) that calls registerHead / registerBackbone / registerWrapper / registerDatasetProvider',
      );
    }
    const after = registeredNames();
    const registered = Object.fromEntries((Object.keys(after) as RegistryKind[]).map((k) => [k, after[k].filter((n) => !before[k].includes(n))])) as Record<
      RegistryKind,
      string[]
    >;
    if (Object.values(registered).every((names) => names.length === 0)) {
      const cjs = commonJsCause(file);
      if (cjs) throw new UserError(`plugin "${m}" registered nothing: ${cjs.problem}`, cjs.fix);
      throw new UserError(
        `plugin "${m}" registered nothing (no learner, backbone, wrapper, transformation set or dataset provider)`,
        "call registerHead / registerBackbone / … at import time, importing them from 'fewshot' (a second copy of fewshot — e.g. its sources required from a CommonJS file — has its own registries)",
      );
    }
    let sha256: string | undefined;
    if (file && existsSync(file)) sha256 = createHash('sha256').update(readFileSync(file)).digest('hex');
    loaded.push({
      module: m,
      absoluteFile: file,
      registered,
      ...(file ? { package: nearestPackage(file) } : {}),
      ...(sha256 ? { sha256 } : {}),
    });
  }
}

let cached: Record<string, string> | undefined;
/**
 * Versions recorded in results: fewshot, tfjs, node, the commit the code came from, how it was run
 * (`source`) and the numerics revision of the kernels (`engineRevision`, backend/engine-revision.ts). From a git checkout of fewshot itself the commit is read from git (`+dirty` when src/ has
 * uncommitted changes); from an installed package it is the commit the package was built from
 * (dist/build-info.json, written by `npm run build`). A git repository *around* an installed package (the
 * user's project) says nothing about fewshot's code, so git is asked only when the package root is the top
 * of its own checkout.
 */
export function softwareVersions(): Record<string, string> {
  if (cached) return cached;
  const root = packageRoot();
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  const fromGit = checkoutCommit(root);
  let commit = fromGit ?? 'unknown';
  if (!fromGit) {
    try {
      commit = (JSON.parse(readFileSync(path.join(root, 'dist', 'build-info.json'), 'utf8')) as { commit?: string }).commit ?? 'unknown';
    } catch {
      /* a package built without build-info */
    }
  }
  cached = {
    fewshot: pkg.version,
    tfjs: tf.version_core,
    node: process.version,
    commit,
    source: fromGit ? 'git checkout' : 'package',
    engineRevision: String(ENGINE_REVISION),
  };
  return cached;
}
