/**
 * Reader for the two official CIFAR-100 distributions (Krizhevsky, "Learning Multiple Layers of Features from
 * Tiny Images", 2009; https://www.cs.toronto.edu/~kriz/cifar.html), streamed from the .tar.gz as published,
 * never unpacked to disk.
 *
 * Layouts, as the CIFAR page describes them:
 * - every image is 32×32 RGB stored as 3,072 bytes, channel-planar: the 1,024 red values of the rows
 *   top to bottom (each row left to right), then the 1,024 green, then the 1,024 blue;
 * - python version `cifar-100-python.tar.gz`: members `cifar-100-python/train` (50,000 images) and
 *   `cifar-100-python/test` (10,000), each a Python 2 pickle (protocol 2) of a dict with byte-string keys:
 *   `data` a uint8 numpy array of N rows × 3,072 (one image per row, planar as above), `fine_labels` and
 *   `coarse_labels` lists of N ints, plus `filenames` and `batch_label`; `cifar-100-python/meta` has the
 *   lists `fine_label_names` (100) and `coarse_label_names` (20);
 * - binary version `cifar-100-binary.tar.gz`: `cifar-100-binary/train.bin` and `test.bin`, a sequence of
 *   3,074-byte records <coarse label byte><fine label byte><3,072 pixel bytes>, and the name lists
 *   `fine_label_names.txt` and `coarse_label_names.txt`, one name per line.
 *
 * Both give the same result: NHWC uint8 pixels, the labels and the name lists.
 */
import { UserError } from '../../util/errors.ts';
import { PickleFormatError, PickleTuple, isNdArray, unpickle, type PickleValue } from './pickle.ts';
import { TarReadError, readTarMembers, sniffArchive } from './tar-members.ts';

export const CIFAR100_URL = 'https://www.cs.toronto.edu/~kriz/cifar.html';
export const CIFAR100_ARCHIVES = { python: 'cifar-100-python.tar.gz', binary: 'cifar-100-binary.tar.gz' } as const;
export const CIFAR100_IMAGE_SIZE = 32;
export const CIFAR100_IMAGE_BYTES = CIFAR100_IMAGE_SIZE * CIFAR100_IMAGE_SIZE * 3;
export const CIFAR100_BINARY_RECORD_BYTES = 2 + CIFAR100_IMAGE_BYTES;
export const CIFAR100_FINE_CLASSES = 100;
export const CIFAR100_COARSE_CLASSES = 20;
/** Images per part in the published archives (500 train and 100 test images per fine class). */
export const CIFAR100_PUBLISHED_COUNTS = { train: 50_000, test: 10_000 } as const;

export type Cifar100Kind = 'python' | 'binary';
export type Cifar100PartName = 'train' | 'test';

export interface Cifar100Part {
  readonly count: number;
  /** count × 32 × 32 × 3, NHWC, RGB. */
  readonly pixels: Uint8Array;
  /** Fine label (0..99) per image, an index into `fineLabelNames`. */
  readonly fineLabels: Uint8Array;
  /** Coarse label (0..19) per image, an index into `coarseLabelNames`. */
  readonly coarseLabels: Uint8Array;
}

export interface Cifar100 {
  readonly kind: Cifar100Kind;
  readonly file: string;
  /** SHA-256 of the archive file. */
  readonly sha256: string;
  readonly train: Cifar100Part;
  readonly test: Cifar100Part;
  readonly fineLabelNames: readonly string[];
  readonly coarseLabelNames: readonly string[];
}

const PYTHON_DIR = 'cifar-100-python';
const BINARY_DIR = 'cifar-100-binary';
const PYTHON_MEMBERS = { train: `${PYTHON_DIR}/train`, test: `${PYTHON_DIR}/test`, meta: `${PYTHON_DIR}/meta` } as const;
const BINARY_MEMBERS = {
  train: `${BINARY_DIR}/train.bin`,
  test: `${BINARY_DIR}/test.bin`,
  fine: `${BINARY_DIR}/fine_label_names.txt`,
  coarse: `${BINARY_DIR}/coarse_label_names.txt`,
} as const;
const WANTED = new Set<string>([...Object.values(PYTHON_MEMBERS), ...Object.values(BINARY_MEMBERS)]);

const EXPECTED = `the official CIFAR-100 archive, ${CIFAR100_ARCHIVES.python} (python version) or ${CIFAR100_ARCHIVES.binary} (binary version), from ${CIFAR100_URL}`;

function wrongArchive(file: string, problem: string): UserError {
  return new UserError(`${file}: ${problem}`, `give the path of ${EXPECTED}, as downloaded (do not unpack it)`);
}

function brokenArchive(file: string, problem: string): UserError {
  return new UserError(`${file}: ${problem}`, `download ${EXPECTED} again (the file is damaged or incomplete), and give its path`);
}

/**
 * Read a CIFAR-100 archive of either kind (detected from its member names).
 * Throws `UserError` naming the file (and member) for a wrong kind of archive, a truncated archive or
 * member, a record count that is not whole, a label out of range or malformed name lists.
 */
export async function readCifar100(file: string): Promise<Cifar100> {
  let tar;
  try {
    if ((await sniffArchive(file)) === 'other') throw wrongArchive(file, 'is neither a gzip-compressed nor a plain tar archive');
    tar = await readTarMembers(file, (p) => WANTED.has(p));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && !(err instanceof UserError))
      throw new UserError(`cannot read ${file} (${code})`, `check that the path is right and the file is readable; expected ${EXPECTED}`);
    if (!(err instanceof TarReadError)) throw err;
    if (err.reason === 'io')
      throw new UserError(`cannot read ${file} (${err.detail})`, `check that the path is right and the file is readable; expected ${EXPECTED}`);
    throw brokenArchive(file, `not a readable .tar.gz, or truncated (${err.detail})`);
  }
  const { paths, members, sha256 } = tar;
  const has = (m: string): boolean => members.has(m);

  const python = Object.values(PYTHON_MEMBERS);
  const binary = Object.values(BINARY_MEMBERS);
  if (python.some(has) && binary.some(has))
    throw wrongArchive(file, 'holds both the python and the binary CIFAR-100 members; it is not one of the published archives');
  if (python.some(has) || binary.some(has)) {
    const expected = python.some(has) ? python : binary;
    const missing = expected.filter((m) => !has(m));
    if (missing.length > 0) throw brokenArchive(file, `member${missing.length > 1 ? 's' : ''} ${missing.join(', ')} missing`);
    const parts = python.some(has) ? readPythonParts(file, members) : readBinaryParts(file, members);
    return { kind: python.some(has) ? 'python' : 'binary', file, sha256, ...parts };
  }
  if (paths.some((p) => /^cifar-10-batches-(py|bin)\//.test(p))) {
    throw wrongArchive(file, 'is a CIFAR-10 archive (cifar-10-batches-*), not CIFAR-100');
  }
  const shown = paths.slice(0, 3).join(', ') + (paths.length > 3 ? `, … (${paths.length} files)` : '');
  throw wrongArchive(file, `is not a CIFAR-100 archive: it has no ${PYTHON_MEMBERS.train} or ${BINARY_MEMBERS.train} (it holds ${shown})`);
}

interface Parts {
  train: Cifar100Part;
  test: Cifar100Part;
  fineLabelNames: string[];
  coarseLabelNames: string[];
}

// ---------------------------------------------------------------------------------------------- binary

function readBinaryParts(file: string, members: ReadonlyMap<string, Buffer>): Parts {
  const fineLabelNames = parseNameList(file, BINARY_MEMBERS.fine, members.get(BINARY_MEMBERS.fine)!.toString('utf8'), CIFAR100_FINE_CLASSES);
  const coarseLabelNames = parseNameList(file, BINARY_MEMBERS.coarse, members.get(BINARY_MEMBERS.coarse)!.toString('utf8'), CIFAR100_COARSE_CLASSES);
  const part = (member: string): Cifar100Part => {
    const bytes = members.get(member)!;
    if (bytes.length % CIFAR100_BINARY_RECORD_BYTES !== 0) {
      throw brokenArchive(
        file,
        `member ${member} has ${bytes.length} bytes, not a whole number of ${CIFAR100_BINARY_RECORD_BYTES}-byte records (${Math.floor(bytes.length / CIFAR100_BINARY_RECORD_BYTES)} records and ${bytes.length % CIFAR100_BINARY_RECORD_BYTES} bytes left over)`,
      );
    }
    const count = bytes.length / CIFAR100_BINARY_RECORD_BYTES;
    const coarseLabels = new Uint8Array(count);
    const fineLabels = new Uint8Array(count);
    const pixels = new Uint8Array(count * CIFAR100_IMAGE_BYTES);
    for (let i = 0; i < count; i++) {
      const at = i * CIFAR100_BINARY_RECORD_BYTES;
      coarseLabels[i] = bytes[at]!;
      fineLabels[i] = bytes[at + 1]!;
      planarImageToHwc(bytes, at + 2, pixels, i * CIFAR100_IMAGE_BYTES);
    }
    checkLabels(file, member, fineLabels, CIFAR100_FINE_CLASSES, 'fine');
    checkLabels(file, member, coarseLabels, CIFAR100_COARSE_CLASSES, 'coarse');
    return { count, pixels, fineLabels, coarseLabels };
  };
  return { train: part(BINARY_MEMBERS.train), test: part(BINARY_MEMBERS.test), fineLabelNames, coarseLabelNames };
}

function parseNameList(file: string, member: string, text: string, expected: number): string[] {
  const names = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  checkNames(file, member, names, expected);
  return names;
}

// ---------------------------------------------------------------------------------------------- python

function readPythonParts(file: string, members: ReadonlyMap<string, Buffer>): Parts {
  const meta = pickleDict(file, PYTHON_MEMBERS.meta, members.get(PYTHON_MEMBERS.meta)!);
  const fineLabelNames = stringList(file, PYTHON_MEMBERS.meta, meta, 'fine_label_names');
  const coarseLabelNames = stringList(file, PYTHON_MEMBERS.meta, meta, 'coarse_label_names');
  checkNames(file, PYTHON_MEMBERS.meta, fineLabelNames, CIFAR100_FINE_CLASSES, 'fine_label_names');
  checkNames(file, PYTHON_MEMBERS.meta, coarseLabelNames, CIFAR100_COARSE_CLASSES, 'coarse_label_names');
  const part = (member: string): Cifar100Part => {
    const dict = pickleDict(file, member, members.get(member)!);
    const data = dict.get('data');
    if (!isNdArray(data)) throw brokenArchive(file, `member ${member} has no uint8 array under key 'data'`);
    if (data.shape.length !== 2 || data.shape[1] !== CIFAR100_IMAGE_BYTES) {
      throw brokenArchive(file, `member ${member}: 'data' has shape (${data.shape.join(', ')}), expected (N, ${CIFAR100_IMAGE_BYTES})`);
    }
    const count = data.shape[0]!;
    const fineLabels = labelList(file, member, dict, 'fine_labels', count, CIFAR100_FINE_CLASSES);
    const coarseLabels = labelList(file, member, dict, 'coarse_labels', count, CIFAR100_COARSE_CLASSES);
    return { count, pixels: planarToNhwc(data.data, count), fineLabels, coarseLabels };
  };
  return { train: part(PYTHON_MEMBERS.train), test: part(PYTHON_MEMBERS.test), fineLabelNames, coarseLabelNames };
}

function pickleDict(file: string, member: string, bytes: Buffer): Map<string, PickleValue> {
  let value: PickleValue;
  try {
    value = unpickle(bytes);
  } catch (err) {
    if (err instanceof PickleFormatError) throw brokenArchive(file, `member ${member} is not a CIFAR-100 pickle, or is truncated: ${err.message}`);
    throw err;
  }
  if (!(value instanceof Map))
    throw brokenArchive(file, `member ${member} holds a pickled ${value instanceof PickleTuple ? 'tuple' : typeof value}, expected a dict`);
  return value;
}

function stringList(file: string, member: string, dict: Map<string, PickleValue>, key: string): string[] {
  const list = dict.get(key);
  if (!Array.isArray(list)) throw brokenArchive(file, `member ${member} has no list under key '${key}'`);
  return list.map((x, i) => {
    if (x instanceof Uint8Array) return new TextDecoder('utf-8').decode(x);
    if (typeof x === 'string') return x;
    throw brokenArchive(file, `member ${member}: ${key}[${i}] is not a string`);
  });
}

function labelList(file: string, member: string, dict: Map<string, PickleValue>, key: string, count: number, classes: number): Uint8Array {
  const list = dict.get(key);
  if (!Array.isArray(list)) throw brokenArchive(file, `member ${member} has no list under key '${key}'`);
  if (list.length !== count) throw brokenArchive(file, `member ${member}: '${key}' has ${list.length} labels for ${count} images`);
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const v = list[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= classes) {
      throw brokenArchive(file, `member ${member}: ${key}[${i}] is ${JSON.stringify(v)}, outside 0..${classes - 1}`);
    }
    out[i] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- shared

function checkLabels(file: string, member: string, labels: Uint8Array, classes: number, what: string): void {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! >= classes) throw brokenArchive(file, `member ${member}: record ${i} has ${what} label ${labels[i]}, outside 0..${classes - 1}`);
  }
}

function checkNames(file: string, member: string, names: string[], expected: number, key?: string): void {
  const what = key ? `'${key}' in ${member}` : member;
  if (names.length !== expected) throw brokenArchive(file, `${what} lists ${names.length} names, expected ${expected}`);
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw brokenArchive(file, `${what} lists ${JSON.stringify(n)} twice`);
    seen.add(n);
  }
}

/** count images × 3,072 bytes channel-planar (R plane, G plane, B plane) → count × 32 × 32 × 3 (NHWC). */
export function planarToNhwc(planar: Uint8Array, count: number): Uint8Array {
  const out = new Uint8Array(count * CIFAR100_IMAGE_BYTES);
  for (let n = 0; n < count; n++) planarImageToHwc(planar, n * CIFAR100_IMAGE_BYTES, out, n * CIFAR100_IMAGE_BYTES);
  return out;
}

/** One image: 3,072 planar bytes at `src[from]` → 32 × 32 × 3 interleaved bytes at `dst[to]`. */
function planarImageToHwc(src: Uint8Array, from: number, dst: Uint8Array, to: number): void {
  const plane = CIFAR100_IMAGE_SIZE * CIFAR100_IMAGE_SIZE;
  for (let p = 0; p < plane; p++) {
    const o = to + p * 3;
    dst[o] = src[from + p]!;
    dst[o + 1] = src[from + plane + p]!;
    dst[o + 2] = src[from + 2 * plane + p]!;
  }
}
