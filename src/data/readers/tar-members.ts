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

/**
 * Stream a .tar or .tar.gz file (never unpacked to disk) and keep the bytes of the members `wants` accepts.
 * A member whose bytes fall short of the size in its header, a gzip stream that ends early, or a file
 * that is not a tar at all is a `TarReadError('broken')`.
 */
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

export async function readTarMembers(file: string, wants: (memberPath: string) => boolean): Promise<TarMembers> {
  const hash = createHash('sha256');
  const paths: string[] = [];
  const members = new Map<string, Buffer>();
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
      const memberPath = normalizeMemberPath(entry.path);
      paths.push(memberPath);
      const seen = { path: memberPath, size: entry.size, got: 0 };
      last = seen;
      entry.on('data', (c: Buffer) => (seen.got += c.length));
      if (!wants(memberPath)) return; // the data listener above drains it
      const chunks: Buffer[] = [];
      let got = 0;
      entry.on('data', (c: Buffer) => {
        chunks.push(c);
        got += c.length;
      });
      entry.on('end', () => {
        if (entry.size !== undefined && got !== entry.size) {
          parseError ??= new Error(`member ${memberPath} has ${got} of its ${entry.size} bytes`);
          return;
        }
        members.set(memberPath, Buffer.concat(chunks, got));
      });
    },
  });
  parser.on('error', (err: Error) => (parseError ??= err));
  parser.on('end', () => (ended = true));

  try {
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer);
      parser.write(chunk as Buffer);
      if (parseError) break;
    }
    if (!parseError) parser.end();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TarReadError('io', typeof code === 'string' ? code : String(err));
  }
  // The parser finishes synchronously after end() unless decompression is still pending.
  for (let i = 0; !parseError && !ended && i < 1000; i++) await new Promise((r) => setImmediate(r));
  if (parseError) {
    const inside = last && last.got < last.size ? `inside member ${last.path} (${last.got} of ${last.size} bytes): ` : '';
    throw new TarReadError('broken', inside + parseError.message);
  }
  if (!ended) throw new TarReadError('broken', 'the archive ended early');
  if (paths.length === 0) throw new TarReadError('broken', 'no files in it: not a tar archive');
  return { paths, members, sha256: hash.digest('hex') };
}
