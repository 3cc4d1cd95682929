import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.ts';

/**
 * A write refused by the file system — full, over quota, read-only, not permitted — is the machine's state, not a
 * bug in fewshot: it becomes a UserError (exit 2) naming the folder and what to do. Every writer is crash-proof
 * (util/atomic.ts), so what is on disk stays complete and the same command resumes once the cause is fixed.
 */
const CAUSES: Record<string, { what: string; fix: string }> = {
  ENOSPC: {
    what: 'no space left on device',
    fix: 'free space on that disk (`df -h` shows it) or point the folder (--runs, --results, --cache) to another disk',
  },
  EDQUOT: {
    what: 'disk quota exceeded',
    fix: 'delete files you no longer need there (or ask for a larger quota), or point the folder (--runs, --results, --cache) elsewhere',
  },
  EROFS: { what: 'read-only file system', fix: 'point the folder (--runs, --results, --cache) to a writable place, or remount that file system read-write' },
  EACCES: {
    what: 'permission denied',
    fix: 'make the folder writable for you (`ls -ld` shows its owner and mode), or point it (--runs, --results, --cache) to a folder you own',
  },
  EPERM: {
    what: 'operation not permitted',
    fix: 'make the folder writable for you (`ls -ld` shows its owner and mode), or point it (--runs, --results, --cache) to a folder you own',
  },
};

/** Syscalls whose `path` is itself a folder (for the others it is a file in one). */
const FOLDER_SYSCALLS = new Set(['mkdir', 'rmdir', 'scandir', 'opendir', 'mkdtemp']);

/** The folder a user knows: the one a writer's stage (`.<name>.<hex>.tmp`, `.ready`, `.lnk`, `.<name>.v<N>`) stands for. */
const STAGE = /^\.(.+)\.(?:[0-9a-f]{12}\.(?:tmp|ready|lnk)|v\d+)$/;

function userFolder(p: string, isFolder: boolean): string {
  let dir = isFolder || STAGE.test(path.basename(p)) ? p : path.dirname(p);
  for (let m; (m = STAGE.exec(path.basename(dir))); ) dir = path.join(path.dirname(dir), m[1]);
  const relative = path.relative(process.cwd(), dir);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : dir;
}

/**
 * Node reports no path for a failed write(2) (only for open, mkdir, rename, ...): writers put theirs on the error
 * (a file, or a writer's stage folder) so the message can name the folder. Returns `err`.
 */
export function withWritePath(err: unknown, file: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (e instanceof Error && e.code && e.path === undefined) e.path = file;
  return err;
}

/**
 * Node's recursive mkdir (fs.mkdir(p, { recursive: true })) reports a folder the file system refuses — read-only,
 * not permitted — as ENOENT. Asked again without recursion, for the first missing folder, it says why.
 */
function refusedMkdir(e: NodeJS.ErrnoException): NodeJS.ErrnoException | undefined {
  if (e.code !== 'ENOENT' || e.syscall !== 'mkdir' || !e.path) return undefined;
  let dir = path.resolve(e.path);
  while (path.dirname(dir) !== dir && !existsSync(path.dirname(dir))) dir = path.dirname(dir);
  try {
    mkdirSync(dir);
    rmdirSync(dir);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && code in CAUSES ? (err as NodeJS.ErrnoException) : undefined;
  }
}

/** The UserError for a refused write (looked for in `err` and its causes), or undefined for any other error. */
export function diskErrorOf(err: unknown): UserError | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = (e as Error & { cause?: unknown }).cause, depth++) {
    e = refusedMkdir(e as NodeJS.ErrnoException) ?? e;
    const code = (e as NodeJS.ErrnoException).code;
    const cause = code ? CAUSES[code] : undefined;
    if (!cause) continue;
    const { path: p, syscall } = e as NodeJS.ErrnoException;
    const where = p ? ` in ${userFolder(p, FOLDER_SYSCALLS.has(syscall ?? ''))}` : ' (the file system did not say where)';
    return new UserError(
      `cannot write${where}: ${cause.what} (${code}${syscall ? ` on ${syscall}` : ''})`,
      `${cause.fix}, then run the same command again (every checkpoint, result and cache on disk is complete; a training resumes from its last checkpoint)`,
    );
  }
  return undefined;
}
