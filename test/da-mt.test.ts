import test, { type ExecutionContext } from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/backend/select.ts';
import type { FewShotHead } from '../src/learners/contract.ts';
import { ProtoNetHead } from '../src/learners/protonet/index.ts';
import type { EpisodeImages } from '../src/episodes/images.ts';
import { DaMethod, daWrapper } from '../src/methods/da.ts';
import { MtMethod, mtWrapper } from '../src/methods/mt.ts';
import { resolveMethodName } from '../src/methods/registry.ts';
import { expandImages } from '../src/transforms/expand.ts';
import { getTransformSet } from '../src/transforms/registry.ts';
import { UserError } from '../src/util/errors.ts';
import '../src/builtin.ts';
import { flattenBackbone, protonetHead } from './fixtures/models.ts';

test.before(async () => {
  await selectBackend('cpu');
});

const SIDE = 4;
const DIM = SIDE * SIDE * 3;

function protonet(extra: Partial<FewShotHead> = {}): FewShotHead {
  return protonetHead(true, extra);
}

function toyEpisode(seed = 1): EpisodeImages {
  return {
    supportImages: tf.randomNormal([4, SIDE, SIDE, 3], 0, 1, 'float32', seed) as tf.Tensor4D,
    supportLabels: new Int32Array([1, 0, 1, 0]),
    queryImages: tf.randomNormal([6, SIDE, SIDE, 3], 0, 1, 'float32', seed + 50) as tf.Tensor4D,
    queryLabels: new Int32Array([0, 0, 1, 1, 0, 1]),
    way: 2,
  };
}
const disposeEpisode = (ep: EpisodeImages) => tf.dispose([ep.supportImages, ep.queryImages]);

const create = (wrapper: typeof daWrapper, head: FewShotHead, options: Record<string, unknown> = {}, seed = 0) =>
  wrapper.create({ backbone: flattenBackbone, head, way: 2, imageSize: SIDE, seed, options });

// ---------- independent reference on plain arrays ----------

function rowsOf(t: tf.Tensor): number[][] {
  const flat = Array.from(t.dataSync());
  const d = flat.length / t.shape[0];
  return Array.from({ length: t.shape[0] }, (_, i) => flat.slice(i * d, (i + 1) * d));
}

/** ProtoNet with distances divided by the dimension (normalizeByDim), as the fixture head does. */
function protoLogits(support: number[][], labels: ArrayLike<number>, query: number[][], way: number): number[][] {
  const d = support[0].length;
  const protos = Array.from({ length: way }, () => new Array(d).fill(0));
  const counts = new Array(way).fill(0);
  support.forEach((v, i) => {
    counts[labels[i]]++;
    v.forEach((x, k) => (protos[labels[i]][k] += x));
  });
  protos.forEach((p, c) => p.forEach((_, k) => (p[k] /= counts[c])));
  return query.map((q) => protos.map((p) => -q.reduce((s, x, k) => s + (x - p[k]) ** 2, 0) / d));
}

function meanCrossEntropy(logits: number[][], labels: ArrayLike<number>, smoothing = 0): number {
  let total = 0;
  logits.forEach((row, r) => {
    const max = Math.max(...row);
    const logZ = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
    row.forEach((x, c) => (total -= (c === labels[r] ? 1 - smoothing : smoothing / (row.length - 1)) * (x - logZ)));
  });
  return total / logits.length;
}

function close(t: ExecutionContext, actual: number, expected: number, tol = 1e-4, what = '') {
  t.true(Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)), `${what} ${actual} vs ${expected}`);
}

/** DA reference: every copy keeps its label; prototypes average all copies; CE over all expanded queries. */
function daReference(ep: EpisodeImages, transform: string, smoothing = 0): number {
  const set = getTransformSet(transform);
  const m = set.transforms.length;
  const support = rowsOf(expandImages(set, ep.supportImages));
  const query = rowsOf(expandImages(set, ep.queryImages));
  const supportLabels = support.map((_, r) => ep.supportLabels[Math.floor(r / m)]);
  const queryLabels = query.map((_, r) => ep.queryLabels[Math.floor(r / m)]);
  return meanCrossEntropy(protoLogits(support, supportLabels, query, ep.way), queryLabels, smoothing);
}

// ---------- DA ----------

test('DA loss: transformed copies keep their label, prototypes over all copies, mean CE over all copies', (t) => {
  const ep = toyEpisode();
  for (const transform of ['rotation', 'color_perm']) {
    close(t, create(daWrapper, protonet(), { transform }).trainLoss(ep).dataSync()[0], daReference(ep, transform), 1e-4, transform);
  }
  close(
    t,
    create(daWrapper, protonet({ labelSmoothing: 0.2 }))
      .trainLoss(ep)
      .dataSync()[0],
    daReference(ep, 'rotation', 0.2),
    1e-4,
    'smoothed',
  );
  disposeEpisode(ep);
});

test('DA/MT inference: the head fitted on the untransformed support scores the untransformed queries', (t) => {
  // With a flatten backbone, prototypes over rotated copies differ from the untransformed ones, so this pins
  // that inference does not expand.
  const ep = toyEpisode(3);
  const expected = protoLogits(rowsOf(ep.supportImages), ep.supportLabels, rowsOf(ep.queryImages), 2);
  for (const wrapper of [daWrapper, mtWrapper]) {
    const method = create(wrapper, protonet());
    t.deepEqual(method.inferenceModes, ['plain']);
    const out = method.predict(ep);
    t.deepEqual(Object.keys(out), ['plain']);
    out.plain.arraySync().forEach((row, i) => row.forEach((v, j) => close(t, v, expected[i][j], 1e-4, `${method.id} [${i},${j}]`)));
    tf.dispose(Object.values(out));
  }
  disposeEpisode(ep);
});

// ---------- MT ----------

test('MT adds a seeded M-way linear head [d, M] + bias to the trainable variables', (t) => {
  const mt = create(mtWrapper, protonet(), {}, 7) as MtMethod;
  const again = create(mtWrapper, protonet(), {}, 7) as MtMethod;
  const other = create(mtWrapper, protonet(), {}, 8) as MtMethod;
  t.deepEqual(mt.transformWeight.shape, [DIM, 4]);
  t.deepEqual(mt.transformBias.shape, [4]);
  t.true(mt.trainableVariables().includes(mt.transformWeight));
  t.true(mt.trainableVariables().includes(mt.transformBias));
  t.deepEqual(Array.from(mt.transformWeight.dataSync()), Array.from(again.transformWeight.dataSync()));
  t.notDeepEqual(Array.from(mt.transformWeight.dataSync()), Array.from(other.transformWeight.dataSync()));
  const bound = 1 / Math.sqrt(DIM);
  t.true(Array.from(mt.transformWeight.dataSync()).every((v) => Math.abs(v) <= bound));
  t.is((create(mtWrapper, protonet(), { transform: 'color_perm3' }) as MtMethod).transformWeight.shape[1], 3);
  t.regex(mt.transformWeight.name, /^method\/mt\/transform_head\/weight#/);
});

test('MT loss = DA loss + CE of the transformation head on every expanded support and query row', (t) => {
  const ep = toyEpisode(5);
  const mt = create(mtWrapper, protonet()) as MtMethod;
  const set = getTransformSet('rotation');
  const rows = rowsOf(expandImages(set, tf.concat([ep.supportImages, ep.queryImages])));
  const w = mt.transformWeight.arraySync() as number[][];
  const b = Array.from(mt.transformBias.dataSync());
  const transformLogits = rows.map((x) => b.map((bj, j) => bj + x.reduce((s, xk, k) => s + xk * w[k][j], 0)));
  const expected =
    daReference(ep, 'rotation') +
    meanCrossEntropy(
      transformLogits,
      rows.map((_, r) => r % 4),
    );
  close(t, mt.trainLoss(ep).dataSync()[0], expected, 1e-4);
  disposeEpisode(ep);
});

test('MT gradients reach the transformation head, and it learns to predict rotations', (t) => {
  const ep = toyEpisode(9);
  const mt = create(mtWrapper, protonet()) as MtMethod;
  const { value, grads } = tf.variableGrads(() => mt.trainLoss(ep), mt.trainableVariables());
  t.true(tf.max(tf.abs(grads[mt.transformWeight.name])).dataSync()[0] > 0);
  t.true(tf.max(tf.abs(grads[mt.transformBias.name])).dataSync()[0] > 0);
  tf.dispose([value, ...Object.values(grads)]);
  const first = mt.trainLoss(ep).dataSync()[0];
  const optimizer = tf.train.adam(0.05);
  for (let i = 0; i < 20; i++) tf.dispose(optimizer.minimize(() => mt.trainLoss(ep), true, mt.trainableVariables()) ?? []);
  const last = mt.trainLoss(ep).dataSync()[0];
  // Only the transformation head trains here (flatten backbone, fixed ProtoNet), so the drop is its CE.
  t.true(last < first - 0.5, `${first} → ${last}`);
  optimizer.dispose();
  disposeEpisode(ep);
});

// ---------- options, bad input, registry, leaks ----------

test('DA/MT options, describe() and bad input', (t) => {
  t.like(create(daWrapper, protonet()).describe(), { wrapper: 'da', transform: 'rotation', transformCount: 4, inferenceModes: ['plain'] });
  t.like(create(mtWrapper, protonet(), { transform: 'rotation2' }).describe(), { wrapper: 'mt', transform: 'rotation2', transformCount: 2 });
  t.is(create(daWrapper, protonet()).id, 'protonet-da');
  t.throws(() => create(daWrapper, protonet(), { slaLoss: 'sum' }), { instanceOf: UserError, message: /invalid options for method wrapper "da"/ });
  t.throws(() => create(mtWrapper, protonet(), { transform: 'nope' }), { instanceOf: UserError, message: /unknown transform set "nope"/ });
  t.throws(() => create(daWrapper, protonet({ maxWay: 1 })), { instanceOf: UserError, message: /at most 1 classes/ });
  const nonSquare = { ...toyEpisode(), supportImages: tf.zeros([4, 4, 6, 3]) as tf.Tensor4D, queryImages: tf.zeros([6, 4, 6, 3]) as tf.Tensor4D };
  t.throws(() => create(daWrapper, protonet()).trainLoss(nonSquare), { instanceOf: UserError, message: /square/ });
  disposeEpisode(nonSquare);
  t.is(resolveMethodName('protonet-da').wrapper.suffix, 'da');
  t.is(resolveMethodName('protonet-mt').wrapper.suffix, 'mt');
});

test('DA/MT: no tensor leaks from trainLoss, predict and a gradient step', (t) => {
  const ep = toyEpisode();
  // A learnable-scale ProtoNet so DA has a trainable variable even on the parameter-free backbone.
  const scaled = () => new ProtoNetHead({ normalizeByDim: true, learnableScale: true });
  for (const method of [create(daWrapper, scaled()) as DaMethod, create(mtWrapper, scaled()) as MtMethod]) {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      method.trainLoss(ep);
      method.predict(ep);
    });
    const { value, grads } = tf.variableGrads(() => method.trainLoss(ep), method.trainableVariables());
    tf.dispose([value, ...Object.values(grads)]);
    t.is(tf.memory().numTensors, before, method.id);
  }
  disposeEpisode(ep);
});
