import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { Parser, type ReadEntry } from 'tar';

export interface TarMembers {
  /** Every regular-file path in the archive, in archive order, with a leading `./` removed. */
  readonly paths: readonly string[];
  /** The bytes of the wanted members found (path as in `paths`). */
  readonly members: ReadonlyMap<string, Buffer>;
  /** SHA-256 of the archive file as read (compressed bytes). */
  readonly sha256: string;
}

/** Why reading an archive failed: `io` (cannot open/read the file) or `broken` (not a tar(.gz), or truncated). */
export class TarReadError extends Error {
  constructor(
    readonly reason: 'io' | 'broken',
    readonly detail: string,
  ) {
    super(detail);
    this.name = 'TarReadError';
  }
}

export function normalizeMemberPath(p: string): string {
  return p.replace(/^(\.\/)+/, '');
}

/** First bytes of a gzip stream, and of the `ustar` magic of a tar header at offset 257. */
export async function sniffArchive(file: string): Promise<'gzip' | 'tar' | 'other'> {
  const fh = await fs.open(file, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
    if (bytesRead >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
    return 'other';
  } finally {
    await fh.close();
  }
}

/** One regular file of an archive as it streams past: read its bytes from `entry`, or leave it (it is drained). */
export type TarFileVisitor = (memberPath: string, entry: ReadEntry) => void;

/**
 * Stream a .tar or .tar.gz file (never unpacked to disk) past `onFile`, once per regular-file member, hashing the
 * file's bytes on the way. `betweenChunks` runs after each 1 MiB read (a consumer's backpressure); what it throws
 * is rethrown unchanged. A file that cannot be read is a `TarReadError('io')`. A member whose bytes fall short of
 * the size in its header, a gzip stream that ends early, or a file that is not a tar at all is a
 * `TarReadError('broken')` that names the member the stream ended in.
 */
export async function streamTarFiles(file: string, onFile: TarFileVisitor, betweenChunks?: () => Promise<void>): Promise<{ sha256: string; files: number }> {
  const hash = createHash('sha256');
  let files = 0;
  let parseError: Error | undefined;
  let ended = false;
  // The last member seen and how many of its bytes arrived, so that a stream ending inside it is named.
  let last: { path: string; size: number; got: number } | undefined;
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry: ReadEntry) => {
      if (entry.type !== 'File' && entry.type !== 'OldFile') {
        entry.resume();
        return;
      }
      files++;
      const memberPath = normalizeMemberPath(entry.path);
      const seen = { path: memberPath, size: entry.size, got: 0 };
      last = seen;
      // This listener also drains a member `onFile` leaves unread.
      entry.on('data', (c: Buffer) => (seen.got += c.length));
      entry.on('end', () => {
        if (entry.size !== undefined && seen.got !== entry.size) parseError ??= new Error(`member ${memberPath} has ${seen.got} of its ${entry.size} bytes`);
      });
      onFile(memberPath, entry);
    },
  });
  parser.on('error', (err: Error) => (parseError ??= err));
  parser.on('end', () => (ended = true));

  let consumerError: { error: unknown } | undefined;
  try {
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer);
      parser.write(chunk as Buffer);
      if (parseError) break;
      if (betweenChunks) {
        try {
          await betweenChunks();
        } catch (error) {
          consumerError = { error };
          break;
        }
      }
    }
    if (!parseError && !consumerError) parser.end();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TarReadError('io', typeof code === 'string' ? code : String(err));
  }
  if (consumerError) throw consumerError.error;
  // The parser finishes synchronously after end() unless decompression is still pending.
  for (let i = 0; !parseError && !ended && i < 1000; i++) await new Promise((r) => setImmediate(r));
  if (parseError) {
    const inside = last && last.got < last.size ? `inside member ${last.path} (${last.got} of ${last.size} bytes): ` : '';
    throw new TarReadError('broken', inside + parseError.message);
  }
  if (!ended) throw new TarReadError('broken', 'the archive ended early');
  return { sha256: hash.digest('hex'), files };
}

/** Stream a .tar or .tar.gz file and keep the bytes of the members `wants` accepts (errors as `streamTarFiles`). */
export async function readTarMembers(file: string, wants: (memberPath: string) => boolean): Promise<TarMembers> {
  const paths: string[] = [];
  const members = new Map<string, Buffer>();
  const { sha256 } = await streamTarFiles(file, (memberPath, entry) => {
    paths.push(memberPath);
    if (!wants(memberPath)) return;
    const chunks: Buffer[] = [];
    entry.on('data', (c: Buffer) => chunks.push(c));
    entry.on('end', () => {
      const bytes = Buffer.concat(chunks);
      if (entry.size === undefined || bytes.length === entry.size) members.set(memberPath, bytes);
    });
  });
  if (paths.length === 0) throw new TarReadError('broken', 'no files in it: not a tar archive');
  return { paths, members, sha256 };
}
