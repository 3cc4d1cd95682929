import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { crashPoint } from './fault.ts';
import { UserError } from './errors.ts';
import { withWritePath } from './fs-errors.ts';

/**
 * Crash-proof writes. Every writer here keeps, at every instant, a complete copy on disk that the
 * next start finds — whatever instant a SIGKILL or power cut hits (tested by crashing at each named
 * crash point, see util/fault.ts and test/fault-injection.slow.test.ts).
 */

async function fsyncPath(p: string): Promise<void> {
  const handle = await fs.open(p, 'r').catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on directories; the renames are still atomic there.
  } finally {
    await handle.close();
  }
}

const tempSuffix = () => randomBytes(6).toString('hex');

/**
 * Write a file so that readers see either the old content or the complete new one, never a
 * half-written file: write to a temp file in the same directory, fsync, then rename over the target.
 */
export async function writeFileAtomic(target: string, data: string | Uint8Array, crashTag?: string): Promise<void> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  const tmp = `${target}.${tempSuffix()}.tmp`;
  try {
    const handle = await fs.open(tmp, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (crashTag) crashPoint(`${crashTag}:written`, tmp);
    await fs.rename(tmp, target);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw withWritePath(err, target);
  }
}

/**
 * Versioned directories behind an atomically swapped symlink.
 *
 * `target` (e.g. `runs/x/last`) is a symlink to a sibling `.last.v<N>` holding one complete copy.
 * An update builds `.last.<hex>.tmp/`, fsyncs it, renames it to `.last.v<N+1>` (a name that only
 * ever holds complete copies), writes a new symlink `.last.<hex>.lnk` and renames it over `target`
 * — rename(2) replaces the old link in one step — and only then deletes older versions. So a kill
 * before the link swap leaves the old copy in place, after it the new one; no instant has neither.
 * Readers just open `target/...` (the OS follows the link), so `fewshot eval runs/x/best` works.
 *
 * Why a symlink rather than a pointer file: every reader and every user command (`ls runs/x/best`,
 * `fewshot eval runs/x/best`) keeps treating `target` as a directory. Committed results must stay
 * plain files in git, so they use `writeFilesAtomic` instead.
 */
const VERSION_RE = /^\.(.+)\.v(\d+)$/;

function versionName(base: string, n: number): string {
  return `.${base}.v${n}`;
}

async function listVersions(parent: string, base: string): Promise<{ name: string; n: number }[]> {
  const names = await fs.readdir(parent).catch(() => [] as string[]);
  return names
    .map((name) => ({ name, m: VERSION_RE.exec(name) }))
    .filter((x): x is { name: string; m: RegExpExecArray } => x.m !== null && x.m[1] === base)
    .map((x) => ({ name: x.name, n: Number(x.m[2]) }))
    .sort((a, b) => a.n - b.n);
}

function isTempOf(name: string, base: string): boolean {
  return name.startsWith(`.${base}.`) && /\.[0-9a-f]{12}\.(tmp|lnk|tmp\.old)$/.test(name);
}

export interface RecoverOptions {
  /** Remove temp leftovers only when older than this (ms); 0 = remove all (the caller holds a lock). */
  staleTempAgeMs?: number;
}

/**
 * Bring `target` back to a consistent state after a crash: remove temp leftovers; if the link is
 * missing or dangling, or a newer complete version exists (a kill between "version renamed" and
 * "link swapped"), point it at the newest complete version; delete versions the link does not use.
 * A legacy plain directory at `target` (written by older fewshot) is left as it is.
 * Returns what it did, for the caller to report.
 */
export async function recoverDir(target: string, options: RecoverOptions = {}): Promise<string[]> {
  const parent = path.dirname(path.resolve(target));
  const base = path.basename(target);
  const actions: string[] = [];
  const staleAge = options.staleTempAgeMs ?? 0;
  for (const name of await fs.readdir(parent).catch(() => [] as string[])) {
    if (!isTempOf(name, base)) continue;
    const full = path.join(parent, name);
    const st = await fs.lstat(full).catch(() => undefined);
    // staleAge 0 means every temp (no age test: a temp made within this millisecond has an mtime a fraction of a
    // millisecond ahead of Date.now(), which truncates, and would be kept).
    if (st && (staleAge <= 0 || Date.now() - st.mtimeMs >= staleAge)) {
      await fs.rm(full, { recursive: true, force: true });
      actions.push(`removed temp ${name}`);
    }
  }
  const versions = await listVersions(parent, base);
  const st = await fs.lstat(path.join(parent, base)).catch(() => undefined);
  if (st?.isDirectory()) return actions; // legacy plain directory: not ours to touch
  // A link checked out as a plain file (git with core.symlinks=false, FAT/exFAT, sync tools) holds the link's target.
  const plain = st?.isFile() ? await linkStandIn(parent, base, st.size) : undefined;
  if (st && !st.isSymbolicLink() && plain === undefined) {
    throw new UserError(
      `${path.join(parent, base)} is neither a link to a version folder nor a plain file naming one (${st.isFile() ? `a ${st.size}-byte file` : 'not a file'})`,
      `restore it from where it came from (with symbolic links: git config core.symlinks true), or move it away to start this ${base} afresh; nothing was changed`,
    );
  }
  const current = plain ?? (st ? await fs.readlink(path.join(parent, base)).catch(() => undefined) : undefined);
  const newest = versions.at(-1);
  if (newest && (current !== newest.name || plain !== undefined)) {
    await swapLink(parent, base, newest.name);
    actions.push(
      plain !== undefined
        ? `${base} was a plain file naming ${plain} (a copy without symbolic links); linked to ${newest.name} again`
        : current
          ? `${base} moved from ${current} to the newer complete ${newest.name}`
          : `${base} restored to ${newest.name}`,
    );
  } else if (plain !== undefined) {
    throw new UserError(
      `${path.join(parent, base)} is a plain file naming ${plain}, which is not there (a copy without symbolic links that lost its version folders)`,
      `copy the run folder again with its hidden ${versionName(base, 1).replace(/1$/, '<N>')} folders, or move ${path.join(parent, base)} away to start afresh; nothing was changed`,
    );
  }
  const keep = newest?.name ?? current;
  for (const v of versions) {
    if (v.name !== keep) {
      await fs.rm(path.join(parent, v.name), { recursive: true, force: true });
    }
  }
  return actions;
}

/**
 * The version a plain file at `<parent>/<base>` names, if it is a link's stand-in: what git writes for a symbolic
 * link where it cannot make one is a small file holding the target, here `.<base>.v<N>`.
 */
async function linkStandIn(parent: string, base: string, size: number): Promise<string | undefined> {
  if (size > 256) return undefined;
  const text = (await fs.readFile(path.join(parent, base), 'utf8').catch(() => '')).trim();
  const m = VERSION_RE.exec(text);
  return m && m[1] === base ? text : undefined;
}

/**
 * Where to read a versioned directory (`runs/x/last`): the directory itself, or — where it is a link's plain-file
 * stand-in (see linkStandIn) naming a version folder that is there — that folder. Readers follow it; the next
 * writer under the run lock (recoverDir) makes it a link again.
 */
export async function followVersionedDir(target: string): Promise<string> {
  const st = await fs.lstat(target).catch(() => undefined);
  if (!st?.isFile()) return target;
  const parent = path.dirname(path.resolve(target));
  const named = await linkStandIn(parent, path.basename(target), st.size);
  if (!named) return target;
  const dir = path.join(path.dirname(target), named);
  return (await fs.stat(dir).then(
    (d) => d.isDirectory(),
    () => false,
  ))
    ? dir
    : target;
}

async function swapLink(parent: string, base: string, versionDir: string, crashTag?: string): Promise<void> {
  const lnk = path.join(parent, `.${base}.${tempSuffix()}.lnk`);
  try {
    await fs.symlink(versionDir, lnk);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EINVAL') throw err;
    throw new UserError(
      `cannot make the symbolic link ${path.join(parent, base)} → ${versionDir} (${code}): the file system of ${parent} has no symbolic links (FAT/exFAT?)`,
      'keep runs on a file system with symbolic links (ext4, APFS, NTFS with developer mode), e.g. --runs <folder there>',
    );
  }
  if (crashTag) crashPoint(`${crashTag}:link-made`);
  await fs.rename(lnk, path.join(parent, base));
  await fsyncPath(parent);
}

/**
 * Atomically replace a whole directory (scheme above): `build` fills a temp folder, which becomes the
 * new version only when complete. `crashTag` names this writer's crash points (`<tag>:built`,
 * `<tag>:versioned`, `<tag>:link-made`, `<tag>:swapped`).
 */
export async function replaceDirAtomic(target: string, build: (tmpDir: string) => Promise<void>, crashTag?: string): Promise<void> {
  const parent = path.dirname(path.resolve(target));
  const base = path.basename(target);
  await fs.mkdir(parent, { recursive: true });
  const tmp = path.join(parent, `.${base}.${tempSuffix()}.tmp`);
  await fs.mkdir(tmp);
  try {
    await build(tmp);
    for (const name of await fs.readdir(tmp)) await fsyncPath(path.join(tmp, name));
    await fsyncPath(tmp);
    if (crashTag) crashPoint(`${crashTag}:built`);
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw withWritePath(err, tmp);
  }
  const versions = await listVersions(parent, base);
  const next = versionName(base, (versions.at(-1)?.n ?? 0) + 1);
  await fs.rename(tmp, path.join(parent, next));
  await fsyncPath(parent);
  if (crashTag) crashPoint(`${crashTag}:versioned`);
  const st = await fs.lstat(path.join(parent, base)).catch(() => undefined);
  if (st && !st.isSymbolicLink()) {
    // A plain directory from older fewshot: move it aside as version 0 of nothing — the new version
    // is complete already, so a kill right here leaves no link but a complete newest version, which
    // recoverDir links.
    await fs.rm(path.join(parent, base), { recursive: true, force: true });
  }
  await swapLink(parent, base, next, crashTag);
  if (crashTag) crashPoint(`${crashTag}:swapped`);
  for (const v of versions) await fs.rm(path.join(parent, v.name), { recursive: true, force: true });
}

/**
 * Replace a set of plain files in `dir` (no symlinks: used for committed results) so that a kill at
 * any instant leaves either the old set or the new one discoverable. The files are staged complete in
 * `.<dir>.<hex>.tmp/` (`order` gives the write order; the last one — result.json — marks the stage
 * complete), the stage is renamed to `.<dir>.<hex>.ready` (the commit point: a journal), then each file
 * is renamed into `dir` in order and the journal removed. A kill while moving leaves a `.ready`
 * journal, which `recoverFiles` (run by every reader and writer first) rolls forward.
 */
export async function writeFilesAtomic(dir: string, files: [name: string, data: string | Uint8Array][], crashTag?: string): Promise<void> {
  const parent = path.dirname(path.resolve(dir));
  const base = path.basename(dir);
  await fs.mkdir(dir, { recursive: true });
  await recoverFiles(dir);
  const tmp = path.join(parent, `.${base}.${tempSuffix()}.tmp`);
  await fs.mkdir(tmp);
  try {
    for (const [name, data] of files) {
      await fs.writeFile(path.join(tmp, name), data);
      await fsyncPath(path.join(tmp, name));
    }
    await fsyncPath(tmp);
    // Inside the try: an injected write error here (FEWSHOT_CRASH_AT=result:staged@ENOSPC) cleans up like a real one.
    if (crashTag) crashPoint(`${crashTag}:staged`, path.join(tmp, files.at(-1)?.[0] ?? ''));
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw withWritePath(err, tmp);
  }
  const ready = tmp.replace(/\.tmp$/, '.ready');
  await fs.writeFile(path.join(tmp, '.order'), files.map(([n]) => n).join('\n'));
  await fs.rename(tmp, ready);
  await fsyncPath(parent);
  if (crashTag) crashPoint(`${crashTag}:committed`);
  await rollForward(ready, dir, crashTag);
}

async function rollForward(ready: string, dir: string, crashTag?: string): Promise<void> {
  const order = (await fs.readFile(path.join(ready, '.order'), 'utf8')).split('\n').filter(Boolean);
  for (const name of order) {
    const from = path.join(ready, name);
    if (
      await fs.stat(from).then(
        () => true,
        () => false,
      )
    ) {
      await fs.rename(from, path.join(dir, name));
      if (crashTag) crashPoint(`${crashTag}:moved-${name}`);
    }
  }
  await fsyncPath(dir);
  await fs.rm(ready, { recursive: true, force: true });
}

/** Finish an interrupted `writeFilesAtomic` on `dir` (roll its journal forward) and drop unfinished stages. */
export async function recoverFiles(dir: string): Promise<void> {
  const parent = path.dirname(path.resolve(dir));
  const base = path.basename(dir);
  const names = await fs.readdir(parent).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.startsWith(`.${base}.`) && /\.[0-9a-f]{12}\.ready$/.test(n)).sort()) {
    await fs.mkdir(dir, { recursive: true });
    await rollForward(path.join(parent, name), dir);
  }
  for (const name of names.filter((n) => isTempOf(n, base))) {
    const full = path.join(parent, name);
    const st = await fs.stat(full).catch(() => undefined);
    // Unfinished stages: a writer still running may own a fresh one, so only old ones go.
    if (st && Date.now() - st.mtimeMs > 10 * 60 * 1000) await fs.rm(full, { recursive: true, force: true });
  }
}
