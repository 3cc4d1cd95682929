import test from 'ava';
import {
  CIFAR_FS_NORMALIZATION,
  MINI_IMAGENET_NORMALIZATION,
  gatherImages,
  gatherPixels,
  normalizePixels,
  parseSha256Sums,
  parseSplitCsv,
  resizeAreaRgb,
  type PixelStore,
} from '../src/data/index.ts';
import { UserError } from '../src/util/errors.ts';

test('normalisation constants are docs/reference.md §4.6 mini-ImageNet mean/std over 255', (t) => {
  t.deepEqual(
    MINI_IMAGENET_NORMALIZATION.mean.map((m) => +(m * 255).toFixed(8)),
    [120.39586422, 115.59361427, 104.54012653],
  );
  t.deepEqual(
    MINI_IMAGENET_NORMALIZATION.std.map((s) => +(s * 255).toFixed(8)),
    [70.68188272, 68.27635443, 72.54505529],
  );
  t.deepEqual(
    CIFAR_FS_NORMALIZATION.mean.map((m) => +(m * 255).toFixed(8)),
    [129.37731888, 124.10583864, 112.47758569],
  );
});

/** Two 2×2 images whose 24 bytes cover many values, incl. 0 and 255. */
function tinyStore(): PixelStore {
  const pixels = new Uint8Array(3 * 2 * 2 * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37 + 11) % 256;
  pixels[0] = 0;
  pixels[13] = 255;
  return { imageSize: 2, numItems: 3, pixels };
}

test('gatherImages gives exactly float32((v/255 − mean_c)/std_c), items in the requested order', (t) => {
  const store = tinyStore();
  const items = [2, 0, 2];
  const out = gatherImages(store, items);
  t.is(out.length, 3 * 12);
  const { mean, std } = MINI_IMAGENET_NORMALIZATION;
  for (let i = 0; i < items.length; i++) {
    for (let p = 0; p < 12; p++) {
      const v = store.pixels[items[i] * 12 + p];
      const c = p % 3;
      t.is(out[i * 12 + p], Math.fround((v / 255 - mean[c]) / std[c]), `item ${i} byte ${p}`);
    }
  }
  t.true(Math.abs(out[12 + 0] - (0 - mean[0]) / std[0]) < 1e-6, 'value 0 in channel R');
  t.deepEqual(Array.from(normalizePixels(store.pixels.subarray(24, 36))), Array.from(out.subarray(0, 12)));
  const other = gatherImages(store, [1], CIFAR_FS_NORMALIZATION);
  t.is(other[0], Math.fround((store.pixels[12] / 255 - CIFAR_FS_NORMALIZATION.mean[0]) / CIFAR_FS_NORMALIZATION.std[0]));
});

test('gatherPixels copies raw bytes; bad item indices are RangeErrors', (t) => {
  const store = tinyStore();
  t.deepEqual(Array.from(gatherPixels(store, Int32Array.from([1]))), Array.from(store.pixels.subarray(12, 24)));
  t.throws(() => gatherImages(store, [0, 3]), { instanceOf: RangeError, message: /item index 3 at position 1/ });
  t.throws(() => gatherPixels(store, [-1]), { instanceOf: RangeError });
  t.throws(() => gatherImages(store, [0.5]), { instanceOf: RangeError });
});

test('resizeAreaRgb: exact area weights on a 3→2 example, constants stay constant, stripes average out', (t) => {
  // One row of 3 grey pixels → 2: out0 = (2·a + b)/3, out1 = (b + 2·c)/3.
  const row = new Uint8Array([30, 30, 30, 90, 90, 90, 240, 240, 240]);
  const tall = new Uint8Array(3 * 3 * 3);
  for (let y = 0; y < 3; y++) tall.set(row, y * 9);
  const out = resizeAreaRgb(tall, 3, 3, 2, 2);
  t.deepEqual(Array.from(out.subarray(0, 6)), [50, 50, 50, 190, 190, 190]);
  const constant = new Uint8Array(84 * 84 * 3).fill(201);
  t.true(resizeAreaRgb(constant, 84, 84, 32, 32).every((v) => v === 201));
  // 1-pixel black/white columns: area averaging (antialiased) gives mid-grey everywhere, within 1/2.625 of a column.
  const stripes = new Uint8Array(84 * 84 * 3);
  for (let y = 0; y < 84; y++) for (let x = 0; x < 84; x++) stripes.fill(x % 2 ? 255 : 0, (y * 84 + x) * 3, (y * 84 + x) * 3 + 3);
  const small = resizeAreaRgb(stripes, 84, 84, 32, 32);
  t.true(small.every((v) => Math.abs(v - 127.5) <= 255 / 2.625 / 2 + 0.5));
  t.throws(() => resizeAreaRgb(new Uint8Array(5), 2, 2, 1, 1));
});

test('parseSplitCsv: groups rows by class in first-appearance order, handles CRLF and BOM', (t) => {
  const text = '\uFEFFfilename,label\r\na1.jpg,A\r\nb1.jpg,B\r\na2.jpg,A\r\nc1.jpg,C\r\n\r\n';
  const s = parseSplitCsv(text, 'test', 'x/test.csv');
  t.deepEqual(s.classes, ['A', 'B', 'C']);
  t.deepEqual(s.filenames, ['a1.jpg', 'a2.jpg', 'b1.jpg', 'c1.jpg']);
  t.deepEqual(s.itemsPerClass, [2, 1, 1]);
  t.deepEqual(s.classOffsets, [0, 2, 3]);
  t.deepEqual(Array.from(s.labels), [0, 0, 1, 2]);
});

test('parseSplitCsv accepts quoted fields (csv-parse): a quoted but valid row is the same row', (t) => {
  const s = parseSplitCsv('filename,label\n"a1.jpg","A"\na2.jpg,"A"\n"b1.jpg",B\n', 'train', 'x/train.csv');
  t.deepEqual(s.filenames, ['a1.jpg', 'a2.jpg', 'b1.jpg']);
  t.deepEqual(s.classes, ['A', 'B']);
  t.throws(() => parseSplitCsv('filename,label\n"a1.jpg,A\n', 'train', 'x/train.csv'), { instanceOf: UserError, message: /not valid CSV/ });
});

test('parseSplitCsv rejects bad input with UserErrors naming the line', (t) => {
  const bad: [string, RegExp][] = [
    ['', /is empty/],
    ['name,label\na.jpg,A\n', /header `name,label`/],
    ['filename,label\n', /no rows/],
    ['filename,label\na.jpg,A\na.jpg,B\n', /a\.jpg twice \(lines 2 and 3\)/],
    ['filename,label\na.jpg,A,extra\n', /line 2 is not/],
    ['filename,label\nimages/a.jpg,A\n', /line 2 is not/],
    ['filename,label\na.jpg,\n', /line 2 is not/],
  ];
  for (const [text, message] of bad) t.throws(() => parseSplitCsv(text, 'val', 'd/val.csv'), { instanceOf: UserError, message }, JSON.stringify(text));
});

test('parseSha256Sums reads sha256sum output (text and binary mode) and rejects junk', (t) => {
  const h = 'ab'.repeat(32);
  const sums = parseSha256Sums(`${h}  images-val.tar.gz\n${h.toUpperCase()} *test.csv\n`, 'SHA256SUMS');
  t.deepEqual(
    [...sums],
    [
      ['images-val.tar.gz', h],
      ['test.csv', h],
    ],
  );
  t.throws(() => parseSha256Sums('abc  x\n', 'SHA256SUMS'), { instanceOf: UserError, message: /line 1/ });
});
