import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/backend/select.ts';
import { expandImages } from '../src/transforms/expand.ts';
import { getTransformSet, listTransformSets, registerTransformSet } from '../src/transforms/registry.ts';
import { rotateAndPermute } from '../src/transforms/builtin.ts';
import { UserError } from '../src/util/errors.ts';

test.before(async () => {
  await selectBackend('cpu');
});

/** docs/reference.md §1.2 pixel maps for a square side S, written out independently of src/transforms. */
function rotatedSource(k: number, s: number, h: number, w: number): [number, number] {
  switch (k) {
    case 0:
      return [h, w];
    case 1:
      return [w, s - 1 - h];
    case 2:
      return [s - 1 - h, s - 1 - w];
    case 3:
      return [s - 1 - w, h];
  }
  throw new Error(`bad k ${k}`);
}

const RGB = [0, 1, 2];
const RBG = [0, 2, 1];
const GRB = [1, 0, 2];
const GBR = [1, 2, 0];
const BRG = [2, 0, 1];
const BGR = [2, 1, 0];
const PERM6 = [RGB, RBG, GRB, GBR, BRG, BGR];
const PERM3 = [RGB, GBR, BRG];
const cross = (ks: number[], perms: number[][]) => ks.flatMap((k) => perms.map((p) => ({ k, p })));

/** Expected (rotation k, channel sources) per j for every built-in set, as docs/reference.md §1.2 lists them. */
const EXPECTED: Record<string, { k: number; p: number[] }[]> = {
  rotation: cross([0, 1, 2, 3], [RGB]),
  rotation2: cross([0, 2], [RGB]),
  color_perm: cross([0], PERM6),
  color_perm3: cross([0], PERM3),
  rot_color_perm6: cross([0, 2], PERM3),
  rot_color_perm12: cross([0, 1, 2, 3], PERM3),
  rot_color_perm24: cross([0, 1, 2, 3], PERM6),
};

/** A distinct value per (image, h, w, c), so any misplaced pixel shows. */
const valueOf = (b: number, h: number, w: number, c: number) => 1000 * b + 100 * h + 10 * w + c;

function handBuilt(batch: number, height: number, width: number): tf.Tensor4D {
  const data: number[] = [];
  for (let b = 0; b < batch; b++) for (let h = 0; h < height; h++) for (let w = 0; w < width; w++) for (let c = 0; c < 3; c++) data.push(valueOf(b, h, w, c));
  return tf.tensor4d(data, [batch, height, width, 3]);
}

test('the registry holds exactly the seven SLA sets with their M', (t) => {
  const sizes = Object.fromEntries(listTransformSets().map((s) => [s.name, s.transforms.length]));
  t.deepEqual(sizes, { rotation: 4, rotation2: 2, color_perm: 6, color_perm3: 3, rot_color_perm6: 6, rot_color_perm12: 12, rot_color_perm24: 24 });
  for (const set of listTransformSets()) {
    t.true(set.transforms[0].isIdentity, `${set.name} starts with the identity`);
    t.is(set.transforms.filter((x) => x.isIdentity).length, 1);
  }
});

test('rot90 is counter-clockwise like np.rot90 / torch.rot90(dims=(H, W))', (t) => {
  // Single-channel-like 2×2 image [[a, b], [c, d]] (channel 0 only): np.rot90 gives [[b, d], [a, c]].
  const img = tf.tensor4d([1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0, 0], [1, 2, 2, 3]);
  const out = getTransformSet('rotation').transforms[1].apply(img);
  t.deepEqual(
    Array.from(out.dataSync()).filter((_, i) => i % 3 === 0),
    [2, 4, 1, 3],
  );
  tf.dispose([img, out]);
});

for (const [name, expected] of Object.entries(EXPECTED)) {
  test(`${name}: every copy matches the reference pixel map, in order, image-major`, (t) => {
    const set = getTransformSet(name);
    const m = expected.length;
    t.is(set.transforms.length, m);
    const batch = 2;
    const side = 3;
    const images = handBuilt(batch, side, side);
    const out = expandImages(set, images);
    t.deepEqual(out.shape, [batch * m, side, side, 3]);
    const got = out.dataSync();
    let mismatches = 0;
    for (let b = 0; b < batch; b++) {
      for (let j = 0; j < m; j++) {
        const { k, p } = expected[j];
        for (let h = 0; h < side; h++) {
          for (let w = 0; w < side; w++) {
            const [sh, sw] = rotatedSource(k, side, h, w);
            for (let c = 0; c < 3; c++) {
              const row = b * m + j; // image-major
              const value = got[((row * side + h) * side + w) * 3 + c];
              if (value !== valueOf(b, sh, sw, p[c])) mismatches++;
            }
          }
        }
      }
    }
    t.is(mismatches, 0);
    tf.dispose([images, out]);
  });
}

test('expanding leaks no tensors', (t) => {
  const images = handBuilt(2, 4, 4);
  const before = tf.memory().numTensors;
  for (const set of listTransformSets()) tf.dispose(expandImages(set, images));
  t.is(tf.memory().numTensors, before);
  images.dispose();
});

test('quarter-turn sets refuse non-square images with a UserError, before any compute', (t) => {
  const images = handBuilt(1, 4, 6);
  for (const name of ['rotation', 'rot_color_perm12', 'rot_color_perm24']) {
    const before = tf.memory().numTensors;
    const err = t.throws(() => expandImages(getTransformSet(name), images), { instanceOf: UserError });
    t.regex(err!.message, /square/);
    t.is(tf.memory().numTensors, before);
  }
  images.dispose();
});

test('180° and colour sets work on non-square images', (t) => {
  const images = handBuilt(1, 2, 3);
  const out = expandImages(getTransformSet('rot_color_perm6'), images);
  t.deepEqual(out.shape, [6, 2, 3, 3]);
  const got = out.dataSync();
  // j = 4 is rot180 + GBR: out[h][w][c] = in[1-h][2-w][(1,2,0)[c]]
  const j = 4;
  const at = (h: number, w: number, c: number) => got[((j * 2 + h) * 3 + w) * 3 + c];
  t.is(at(0, 0, 0), valueOf(0, 1, 2, 1));
  t.is(at(1, 2, 2), valueOf(0, 0, 0, 0));
  t.is(at(0, 1, 1), valueOf(0, 1, 1, 2));
  tf.dispose([images, out]);
});

test('unknown transform set: UserError listing the names', (t) => {
  const err = t.throws(() => getTransformSet('rotate'), { instanceOf: UserError });
  t.regex(err!.message, /unknown transform set "rotate"/);
  t.regex(err!.message, /rotation, rotation2, color_perm, color_perm3, rot_color_perm6, rot_color_perm12, rot_color_perm24/);
});

test('registering a set that does not start with the identity is refused', (t) => {
  t.throws(() => registerTransformSet({ name: 'bad_set', description: '', transforms: [rotateAndPermute(1, [0, 1, 2]), rotateAndPermute(0, [0, 1, 2])] }), {
    instanceOf: UserError,
    message: /identity/,
  });
  t.throws(() => registerTransformSet({ name: 'rotation', description: '', transforms: getTransformSet('rotation').transforms }), {
    instanceOf: UserError,
    message: /twice/,
  });
});
