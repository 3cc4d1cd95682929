import { promises as fs, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { UserError } from './errors.ts';

/**
 * One process per run folder. The lock file `<dir>/.lock` holds the holder's pid, host and start
 * time. It is created atomically and exclusively: the content is written to a temp file first, then
 * hard-linked to `.lock` — link(2) fails with EEXIST if a lock exists, so no reader ever sees a
 * half-written lock and two starters cannot both win. A lock whose process is gone (same host, pid
 * not alive) is stale and taken over; a live holder's details are shown in the refusal.
 */
export interface LockHolder {
  pid: number;
  host: string;
  startedAt: string;
  command: string;
}

export interface RunLock {
  holder: LockHolder;
  /** The stale lock this one replaced, if any (the caller says so). */
  tookOverFrom?: LockHolder;
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readHolder(file: string): Promise<LockHolder | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as LockHolder;
  } catch {
    return undefined;
  }
}

/** `fileName`: the lock file in `dir` (`.lock` for run folders; a cache, replaced as a whole, is locked beside it). */
export async function acquireRunLock(dir: string, what = 'run', fileName = '.lock'): Promise<RunLock> {
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, fileName);
  const holder: LockHolder = { pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString(), command: process.argv.slice(2).join(' ') };
  const tmp = path.join(dir, `${fileName}.${randomBytes(6).toString('hex')}.tmp`);
  await fs.writeFile(tmp, JSON.stringify(holder));
  let tookOverFrom: LockHolder | undefined;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await fs.link(tmp, file);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 3) throw err;
      }
      const other = await readHolder(file);
      if (other && other.host === holder.host && other.pid === process.pid) break; // already ours (re-entrant)
      if (other && (other.host !== holder.host || alive(other.pid))) {
        throw new UserError(
          `${what} folder ${dir} is in use by process ${other.pid} on ${other.host} (started ${other.startedAt}: fewshot ${other.command})`,
          other.host === holder.host
            ? `wait for it to finish, stop it (kill ${other.pid}), or give this run another --name`
            : `it runs on another machine; wait for it, or give this run another --name (delete ${file} only if that process is certainly gone)`,
        );
      }
      // Stale (the process is gone) or unreadable: move it aside atomically so only one taker wins, then retry.
      tookOverFrom = other;
      const aside = `${file}.${randomBytes(6).toString('hex')}.stale`;
      await fs.rename(file, aside).catch(() => undefined);
      await fs.rm(aside, { force: true });
    }
  } finally {
    await fs.rm(tmp, { force: true });
  }
  const removeSync = () => {
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  };
  process.once('exit', removeSync);
  return {
    holder,
    tookOverFrom,
    release: async () => {
      process.removeListener('exit', removeSync);
      const current = await readHolder(file);
      if (current?.pid === process.pid && current.host === holder.host) await fs.rm(file, { force: true });
    },
  };
}
