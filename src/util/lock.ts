import { promises as fs, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { UserError } from './errors.ts';
import { crashPoint } from './fault.ts';

/**
 * One process per run folder. The lock file `<dir>/.lock` holds the holder's pid, host and start
 * time. It is created atomically and exclusively: the content is written to a temp file first, then
 * hard-linked to `.lock` — link(2) fails with EEXIST if a lock exists, so no reader ever sees a
 * half-written lock and two starters cannot both win. A lock whose process is gone (same host, pid
 * not alive) is stale and taken over (one taker at a time: removeStaleLock); a live holder's details are
 * shown in the refusal (a RunInUseError: the run is in progress elsewhere).
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

/** A run folder held by another live process: the run is in progress elsewhere (not failed). */
export class RunInUseError extends UserError {
  constructor(
    problem: string,
    fix: string,
    readonly dir: string,
    /** The live holder, when read (a parent told by its child's exit code knows only that it was refused). */
    readonly holder?: LockHolder,
  ) {
    super(problem, fix);
    this.name = 'RunInUseError';
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const isCode = (err: unknown, ...codes: string[]) => codes.includes((err as NodeJS.ErrnoException).code ?? '');

/**
 * Remove the stale lock `file` (its holder is gone), safely against other takers. Deciding from a read and then
 * renaming the path would race: a second taker that read the same stale holder could rename away the lock the first
 * taker has just made (both would then "hold" the run). So a takeover is itself exclusive: the taker links a marker
 * named after the stale lock file's inode, `.lock.<inode>.takeover`, and only then — with the marker held, which no
 * other taker of that same lock file can — checks again that the file is still that inode and still stale. Only the
 * marker's holder removes that file, so the check stays true until its rename. Returns whether it removed it; on
 * false the caller just tries again (another taker removed it, or the file is now a live lock).
 */
async function removeStaleLock(dir: string, file: string, me: LockHolder): Promise<boolean> {
  const st = await fs.stat(file).catch(() => undefined);
  if (!st) return false;
  const marker = `${file}.${st.ino}.takeover`;
  const mine = `${marker}.${randomBytes(6).toString('hex')}.tmp`;
  await fs.writeFile(mine, JSON.stringify(me));
  try {
    await fs.link(mine, marker);
  } catch (err) {
    if (!isCode(err, 'EEXIST')) throw err;
    const taker = await readHolder(marker);
    if (taker && taker.host === me.host && !alive(taker.pid)) {
      // A taker killed mid-takeover left its marker: move it aside and try again. Should a live taker's marker have
      // replaced it meanwhile (the same race one level up, and only after such a kill), it is put back.
      const aside = `${marker}.${randomBytes(6).toString('hex')}.stale`;
      if (
        await fs.rename(marker, aside).then(
          () => true,
          () => false,
        )
      ) {
        const moved = await readHolder(aside);
        if (moved && (moved.pid !== taker.pid || moved.startedAt !== taker.startedAt)) await fs.link(aside, marker).catch(() => undefined);
        await fs.rm(aside, { force: true });
      }
    }
    return false; // another taker is doing it (or was): the caller reads the lock again
  } finally {
    await fs.rm(mine, { force: true });
  }
  try {
    const now = await fs.stat(file).catch(() => undefined);
    const holder = await readHolder(file);
    if (!now || now.ino !== st.ino || (holder && (holder.host !== me.host || alive(holder.pid)))) return false;
    const aside = `${file}.${randomBytes(6).toString('hex')}.stale`;
    await fs.rename(file, aside);
    await fs.rm(aside, { force: true });
    return true;
  } finally {
    await fs.rm(marker, { force: true });
  }
}

/** `fileName`: the lock file in `dir` (`.lock` for run folders; a cache, replaced as a whole, is locked beside it). */
export async function acquireRunLock(dir: string, what = 'run', fileName = '.lock'): Promise<RunLock> {
  crashPoint('lock:acquire');
  const file = path.join(dir, fileName);
  const holder: LockHolder = { pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString(), command: process.argv.slice(2).join(' ') };
  let tookOverFrom: LockHolder | undefined;
  // The last "missing" error, kept as the cause: Node's recursive mkdir reports a read-only or forbidden parent as
  // ENOENT too, and the CLI tells such a refused folder from a race by asking again (util/fs-errors.ts).
  let lastMissing: unknown;
  for (let attempt = 0; ; attempt++) {
    if (attempt > 20) throw new Error(`could not take the lock ${file}: it kept changing (${attempt} attempts)`, { cause: lastMissing });
    // The folder is made again on every attempt: a new run that failed removes its empty folder (trainer.ts), which
    // may happen between our mkdir and our link (then ENOENT, and we start over).
    const tmp = path.join(dir, `${fileName}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(tmp, JSON.stringify(holder));
      await fs.link(tmp, file);
      break;
    } catch (err) {
      if (isCode(err, 'ENOENT')) {
        lastMissing = err;
        continue;
      }
      if (!isCode(err, 'EEXIST')) throw err;
    } finally {
      await fs.rm(tmp, { force: true });
    }
    const other = await readHolder(file);
    if (other && other.host === holder.host && other.pid === process.pid) break; // already ours (re-entrant)
    if (other && (other.host !== holder.host || alive(other.pid))) {
      throw new RunInUseError(
        `${what} folder ${dir} is in use by process ${other.pid} on ${other.host} (started ${other.startedAt}: fewshot ${other.command})`,
        other.host === holder.host
          ? `wait for it to finish, stop it (kill ${other.pid}), or give this run another --name`
          : `it runs on another machine; wait for it, or give this run another --name (delete ${file} only if that process is certainly gone)`,
        dir,
        other,
      );
    }
    // Stale (the process is gone) or unreadable: remove it exclusively (removeStaleLock), then link ours again.
    crashPoint('lock:stale-read');
    // ENOENT: the folder or a file went away under us (a failed new run removed its folder): start over.
    const removed = await removeStaleLock(dir, file, holder).catch((err) => (isCode(err, 'ENOENT') ? false : Promise.reject(err)));
    if (removed) tookOverFrom = other;
    else await sleep(5 + Math.random() * 20);
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
