import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.ts';

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** `sha256sum` output: `<64 hex>  <name>` (or `<hex> *<name>` for binary mode), one file a line. */
export function parseSha256Sums(text: string, where: string): Map<string, string> {
  const sums = new Map<string, string>();
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '' || line.startsWith('#')) return;
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    if (!m) {
      throw new UserError(
        `${where} line ${i + 1} is not \`<sha256>  <file>\``,
        `restore ${path.basename(where)} from the dataset download, or delete it to skip the checksum check`,
      );
    }
    sums.set(path.basename(m[2].trim()), m[1].toLowerCase());
  });
  return sums;
}

/** The checksums listed beside the dataset, or an empty map when there is no SHA256SUMS. */
export async function readSha256Sums(dir: string): Promise<Map<string, string>> {
  const file = path.join(dir, 'SHA256SUMS');
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return new Map();
  }
  return parseSha256Sums(text, file);
}

export function checksumMismatch(file: string, expected: string, actual: string): UserError {
  return new UserError(
    `${file} does not match SHA256SUMS (expected ${expected}, got ${actual}): the file is corrupt, truncated or a different version`,
    `download ${path.basename(file)} again (or fix SHA256SUMS if you changed the file on purpose), then run \`fewshot data prepare\` again`,
  );
}
