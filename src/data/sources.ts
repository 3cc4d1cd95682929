import { promises as fs } from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.ts';
import { checksumMismatch, sha256File } from './checksums.ts';
import { streamTarFiles, TarReadError } from './readers/tar-members.ts';

/**
 * Runs async tasks with at most `limit` in flight. The producer awaits `capacity()` before reading
 * more input, which is what bounds memory; the first task failure stops everything: `capacity()`
 * and `drain()` rethrow it once all in-flight tasks have settled (so no task outlives a failed prepare).
 */
export class TaskPool {
  private inFlight = 0;
  private failure: { error: unknown } | undefined;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly limit: number,
    private readonly signal?: AbortSignal,
  ) {}

  submit(task: () => Promise<void>): void {
    if (this.failure) return;
    this.inFlight++;
    task().then(
      () => this.settle(),
      (error) => {
        this.failure ??= { error };
        this.settle();
      },
    );
  }

  private settle(): void {
    this.inFlight--;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private async waitUntil(done: () => boolean): Promise<void> {
    while (!done()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Resolves when another task may start; rejects with the first failure (or the abort reason). */
  async capacity(): Promise<void> {
    if (this.signal?.aborted) this.failure ??= { error: this.signal.reason };
    await this.waitUntil(() => this.inFlight < this.limit || this.failure !== undefined);
    if (this.failure) {
      await this.waitUntil(() => this.inFlight === 0);
      throw this.failure.error;
    }
  }

  /** Resolves when every submitted task has finished; rejects with the first failure. */
  async drain(): Promise<void> {
    await this.waitUntil(() => this.inFlight === 0);
    if (this.failure) throw this.failure.error;
  }

  /** Record a failure from outside the pool (e.g. the reader) and wait for in-flight tasks to settle. */
  async abort(error: unknown): Promise<never> {
    this.failure ??= { error };
    await this.waitUntil(() => this.inFlight === 0);
    throw this.failure.error;
  }
}

/** Processes one image's file bytes (hash, decode, store); runs as a pool task. */
export type ImageSink = (filename: string, bytes: Uint8Array, origin: string) => Promise<void>;

/** Read `images/<filename>` for each wanted file from an unpacked folder. */
export async function readImagesFromFolder(imagesDir: string, filenames: Iterable<string>, pool: TaskPool, sink: ImageSink): Promise<void> {
  for (const filename of filenames) {
    await pool.capacity();
    pool.submit(async () => {
      const file = path.join(imagesDir, filename);
      let bytes: Buffer;
      try {
        bytes = await fs.readFile(file);
      } catch {
        throw new UserError(
          `image ${filename} is listed in the split CSVs but ${file} is missing or unreadable`,
          `put all 60,000 mini-ImageNet images in ${imagesDir} (or remove the images/ folder to read the .tar.gz archives instead), then run \`fewshot data prepare\` again`,
        );
      }
      await sink(filename, bytes, file);
    });
  }
}

export interface ArchiveReadResult {
  sha256: string;
  /** Regular-file entries seen, wanted or not. */
  entries: number;
}

function archiveBroken(file: string, reason: string, checksumNote: string): UserError {
  return new UserError(
    `archive ${file} is corrupt or truncated (${reason})${checksumNote}`,
    `download ${path.basename(file)} again (check it with \`sha256sum -c SHA256SUMS\`), then run \`fewshot data prepare\` again`,
  );
}

/**
 * Stream one .tar.gz archive (never unpacked to disk) and hand every wanted image to `sink`,
 * hashing the compressed bytes on the way so SHA256SUMS is checked without a second read.
 * Entries match by base name, so `images/<file>`, `./images/<file>` and `<file>` all work.
 */
export async function readImagesFromArchive(
  file: string,
  expectedSha256: string | undefined,
  wants: (filename: string) => boolean,
  pool: TaskPool,
  sink: ImageSink,
): Promise<ArchiveReadResult> {
  // Name the real cause when we can: a checksum mismatch says "this is not the file you think it is".
  const brokenArchive = async (reason: string): Promise<UserError> => {
    if (!expectedSha256) return archiveBroken(file, reason, '');
    const actual = await sha256File(file);
    return actual !== expectedSha256 ? checksumMismatch(file, expectedSha256, actual) : archiveBroken(file, reason, ' although it matches SHA256SUMS');
  };

  let read: { sha256: string; files: number };
  try {
    read = await streamTarFiles(
      file,
      (memberPath, entry) => {
        const filename = path.posix.basename(memberPath);
        if (!wants(filename)) return;
        const chunks: Buffer[] = [];
        entry.on('data', (c: Buffer) => chunks.push(c));
        entry.on('end', () => pool.submit(() => sink(filename, Buffer.concat(chunks), `${path.basename(file)}:${entry.path}`)));
      },
      // Failures of pool tasks (bad images) and aborts arrive here, after the in-flight tasks settled.
      () => pool.capacity(),
    );
  } catch (err) {
    if (err instanceof TarReadError && err.reason === 'io') {
      return pool.abort(
        new UserError(`cannot read archive ${file} (${err.detail})`, 'check that the file exists and is readable, then run `fewshot data prepare` again'),
      );
    }
    if (err instanceof TarReadError) return pool.abort(await brokenArchive(err.detail));
    return pool.abort(err);
  }
  if (expectedSha256 && read.sha256 !== expectedSha256) return pool.abort(checksumMismatch(file, expectedSha256, read.sha256));
  return { sha256: read.sha256, entries: read.files };
}
