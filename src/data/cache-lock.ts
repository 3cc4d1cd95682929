import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { acquireRunLock, type LockHolder } from '../util/lock.ts';
import { UserError } from '../util/errors.ts';
import { recoverDir } from '../util/atomic.ts';
import { readCacheManifest, type CacheManifest } from './cache.ts';

/**
 * One prepare per cache folder. The cache itself is replaced as a whole (a link to a complete version, see
 * replaceDirAtomic), so its lock is a file beside it, `.<name>.lock`, removed when the prepare ends. A second
 * prepare of the same cache on this machine waits for the first; when that one built the same request in
 * the meantime, the second reuses its cache instead of decoding every image again.
 */

/** What a prepare builds: a finished cache with these is the same cache. */
export interface PrepareRequest {
  dataset: string;
  imageSize: number;
  provider?: { id: string; options: Record<string, unknown> };
  /** The dataset's source (folder, CSV or archive) as the manifest records it. */
  sourcePath: string;
}

export interface CacheLockOptions {
  signal?: AbortSignal;
  /** Called once when another process holds the lock and this one waits for it. */
  onWait?: (holder: LockHolder) => void;
  /** Poll interval while waiting (ms). */
  pollMs?: number;
}

/**
 * Temp folders of a killed prepare (`.<name>.<hex>.tmp`, up to a whole cache) are removed by the next prepare
 * once older than this: a prepare of an older fewshot (which takes no lock) could still be writing a fresh one.
 */
export const STALE_PREPARE_TEMP_AGE_MS = 60 * 60 * 1000;

export function cacheLockPath(cacheDir: string): string {
  const abs = path.resolve(cacheDir);
  return path.join(path.dirname(abs), `.${path.basename(abs)}.lock`);
}

async function readHolder(file: string): Promise<LockHolder | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as LockHolder;
  } catch {
    return undefined;
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  const canon = (v: unknown): unknown =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, canon((v as Record<string, unknown>)[k])]),
        )
      : Array.isArray(v)
        ? v.map(canon)
        : v;
  return JSON.stringify(canon(a)) === JSON.stringify(canon(b));
}

/**
 * Run `build` holding the cache's lock, after recovering what a killed prepare left (see recoverDir). If this
 * process had to wait and the holder swapped in a cache of the same request while it waited, that cache is
 * returned and `build` is not run.
 */
export async function withPrepareLock(
  cacheDir: string,
  request: PrepareRequest,
  options: CacheLockOptions,
  build: () => Promise<CacheManifest>,
): Promise<CacheManifest> {
  const lockFile = cacheLockPath(cacheDir);
  let waited = false;
  // The cache as it stood when this process began to wait: a different one afterwards was made meanwhile.
  let before: CacheManifest | undefined;
  let lock;
  for (;;) {
    try {
      lock = await acquireRunLock(path.dirname(lockFile), 'cache', path.basename(lockFile));
      break;
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      const holder = await readHolder(lockFile);
      if (holder && holder.host !== os.hostname()) {
        throw new UserError(
          `the image cache ${cacheDir} is being prepared by process ${holder.pid} on ${holder.host} (started ${holder.startedAt})`,
          `wait for it to finish; delete ${lockFile} only if that process is certainly gone`,
        );
      }
      if (!waited) {
        before = await readCacheManifest(cacheDir).catch(() => undefined);
        if (holder) options.onWait?.(holder);
      }
      waited = true;
      options.signal?.throwIfAborted();
      await sleep(options.pollMs ?? 250, undefined, { signal: options.signal }).catch(() => options.signal?.throwIfAborted());
    }
  }
  try {
    if (waited) {
      const made = await readCacheManifest(cacheDir).catch(() => undefined);
      const sameRequest =
        made &&
        (before === undefined || made.createdAt !== before.createdAt || made.cacheFingerprint !== before.cacheFingerprint) &&
        made.dataset === request.dataset &&
        made.imageSize === request.imageSize &&
        made.source.path === request.sourcePath &&
        sameJson(made.provider, request.provider);
      if (sameRequest) return made;
    }
    await recoverDir(cacheDir, { staleTempAgeMs: STALE_PREPARE_TEMP_AGE_MS });
    return await build();
  } finally {
    await lock.release();
  }
}
