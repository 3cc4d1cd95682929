import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
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
export async function readTarMembers(file: string, wants: (memberPath: string) => boolean): Promise<TarMembers> {
  const hash = createHash('sha256');
  const paths: string[] = [];
  const members = new Map<string, Buffer>();
  let parseError: Error | undefined;
  let ended = false;
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry: ReadEntry) => {
      if (entry.type !== 'File' && entry.type !== 'OldFile') {
        entry.resume();
        return;
      }
      const memberPath = normalizeMemberPath(entry.path);
      paths.push(memberPath);
      if (!wants(memberPath)) {
        entry.resume();
        return;
      }
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
  if (parseError) throw new TarReadError('broken', parseError.message);
  if (!ended) throw new TarReadError('broken', 'the archive ended early');
  if (paths.length === 0) throw new TarReadError('broken', 'no files in it: not a tar archive');
  return { paths, members, sha256: hash.digest('hex') };
}
