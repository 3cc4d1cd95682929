import test, { type ExecutionContext } from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/backend/select.ts';
import type { Backbone } from '../src/backbones/contract.ts';
import type { FewShotHead } from '../src/learners/contract.ts';
import type { EpisodeImages } from '../src/episodes/images.ts';
import { aggregateJointLogits, identityRows, jointLabels, repeatLabels, singleInferenceLogits, transformLabels } from '../src/methods/aggregate.ts';
import { distillationKl, stopGradient } from '../src/methods/distill.ts';
import { SlaMethod, slaWrapper } from '../src/methods/sla.ts';
import { SlaSdMethod, slaSdWrapper } from '../src/methods/sla-sd.ts';
import { resolveMethodName } from '../src/methods/registry.ts';
import { expandImages } from '../src/transforms/expand.ts';
import { getTransformSet } from '../src/transforms/registry.ts';
import { UserError } from '../src/util/errors.ts';
import '../src/builtin.ts';
import { TinyConvBackbone, flattenBackbone, protonetHead } from './fixtures/models.ts';

test.before(async () => {
  await selectBackend('cpu');
});

// ---------- fixtures ----------

function protonet(extra: Partial<FewShotHead> = {}): FewShotHead {
  return protonetHead(false, extra);
}

/** 2-way episode on 4×4 images with shuffled labels. */
function toyEpisode(seed = 1, side = 4): EpisodeImages {
  return {
    supportImages: tf.randomNormal([4, side, side, 3], 0, 1, 'float32', seed) as tf.Tensor4D,
    supportLabels: new Int32Array([1, 0, 0, 1]),
    queryImages: tf.randomNormal([4, side, side, 3], 0, 1, 'float32', seed + 100) as tf.Tensor4D,
    queryLabels: new Int32Array([0, 1, 1, 0]),
    way: 2,
  };
}

function disposeEpisode(ep: EpisodeImages) {
  tf.dispose([ep.supportImages, ep.queryImages]);
}

const makeSla = (head: FewShotHead, options: Record<string, unknown> = {}, backbone: Backbone = flattenBackbone) =>
  slaWrapper.create({ backbone, head, way: 2, imageSize: 4, seed: 0, options }) as SlaMethod;
const makeSd = (head: FewShotHead, options: Record<string, unknown> = {}, backbone: Backbone = flattenBackbone) =>
  slaSdWrapper.create({ backbone, head, way: 2, imageSize: 4, seed: 0, options }) as SlaSdMethod;

// ---------- independent JS reference: ProtoNet + cross-entropy on plain arrays ----------

function rowsOf(t: tf.Tensor): number[][] {
  const [n] = t.shape;
  const flat = Array.from(t.dataSync());
  const d = flat.length / n;
  return Array.from({ length: n }, (_, i) => flat.slice(i * d, (i + 1) * d));
}

function protoLogits(support: number[][], supportLabels: ArrayLike<number>, query: number[][], way: number): number[][] {
  const d = support[0].length;
  const protos = Array.from({ length: way }, () => new Array(d).fill(0));
  const counts = new Array(way).fill(0);
  support.forEach((v, i) => {
    counts[supportLabels[i]]++;
    v.forEach((x, k) => (protos[supportLabels[i]][k] += x));
  });
  protos.forEach((p, c) => p.forEach((_, k) => (p[k] /= counts[c])));
  return query.map((q) => protos.map((p) => -q.reduce((s, x, k) => s + (x - p[k]) ** 2, 0)));
}

function meanCrossEntropy(logits: number[][], labels: ArrayLike<number>, smoothing = 0): number {
  let total = 0;
  logits.forEach((row, r) => {
    const max = Math.max(...row);
    const logZ = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
    row.forEach((x, c) => {
      const target = c === labels[r] ? 1 - smoothing : smoothing / (row.length - 1);
      total -= target * (x - logZ);
    });
  });
  return total / logits.length;
}

function close(t: ExecutionContext, actual: number, expected: number, tol = 1e-4, what = '') {
  t.true(Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)), `${what} ${actual} vs ${expected}`);
}

function closeMatrix(t: ExecutionContext, actual: number[][], expected: number[][], tol = 1e-4) {
  t.is(actual.length, expected.length);
  actual.forEach((row, i) => row.forEach((v, j) => close(t, v, expected[i][j], tol, `[${i},${j}]`)));
}

// ---------- pure helpers on hand-built values ----------

test('joint, repeated and transformation labels follow the image-major / class-major layout', (t) => {
  t.deepEqual(Array.from(jointLabels(new Int32Array([2, 0, 1]), 4)), [8, 9, 10, 11, 0, 1, 2, 3, 4, 5, 6, 7]);
  t.deepEqual(Array.from(repeatLabels(new Int32Array([2, 0]), 3)), [2, 2, 2, 0, 0, 0]);
  t.deepEqual(Array.from(transformLabels(2, 3)), [0, 1, 2, 0, 1, 2]);
});

test('SLA+AG averages logit[b·M+j, i·M+j] over j on pre-softmax logits; SLA+SI takes row b·M, column i·M', (t) => {
  const m = 3;
  const batch = 2;
  const way = 2;
  // logit[r][c] = 100·r + c: every entry is distinct, so a wrong row/column shows.
  const values = Array.from({ length: batch * m }, (_, r) => Array.from({ length: way * m }, (_, c) => 100 * r + c));
  const logits = tf.tensor2d(values);
  // b=0, i=1: mean(l[0][3], l[1][4], l[2][5]) = mean(3, 104, 205) = 104; b=1, i=0: mean(l[3][0], l[4][1], l[5][2]) = 401.
  const ag = aggregateJointLogits(logits, m).arraySync();
  t.deepEqual(ag, [
    [101, 104],
    [401, 404],
  ]);
  t.deepEqual(singleInferenceLogits(logits, m).arraySync(), [
    [0, 3],
    [300, 303],
  ]);
  t.deepEqual(
    identityRows(
      tf.tensor2d([
        [1, 2],
        [3, 4],
        [5, 6],
        [7, 8],
      ]),
      2,
    ).arraySync(),
    [
      [1, 2],
      [5, 6],
    ],
  );
  // AG on logits, not probabilities: adding a per-row constant (softmax-invariant) shifts s by its mean over j.
  const shifted: tf.Tensor2D = tf.add(logits, tf.tensor2d([[10], [20], [30], [0], [0], [0]]));
  t.deepEqual(aggregateJointLogits(shifted, m).arraySync()[0], [121, 124]);
  t.throws(() => aggregateJointLogits(tf.zeros([5, 6]) as tf.Tensor2D, m), { message: /divisible/ });
});

test('stopGradient passes the value and blocks the gradient', (t) => {
  const x = tf.tensor1d([1, -2, 3]);
  const value = stopGradient(x);
  t.deepEqual(Array.from(value.dataSync()), [1, -2, 3]);
  // d/dx Σ stop(x)·x = x (not 2x).
  const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(stopGradient(v), v)))(x);
  t.deepEqual(Array.from(g.dataSync()), [1, -2, 3]);
});

test('distillation KL is T²·batchmean KL(softmax(teacher/T) ‖ softmax(student/T))', (t) => {
  const teacher = [
    [0, Math.log(3)],
    [1, 2],
  ];
  const student = [
    [0, 0],
    [2, -1],
  ];
  for (const temperature of [1, 2]) {
    const softmax = (row: number[]) => {
      const e = row.map((x) => Math.exp(x / temperature));
      const z = e.reduce((a, b) => a + b);
      return e.map((x) => x / z);
    };
    let expected = 0;
    teacher.forEach((row, r) => {
      const p = softmax(row);
      const q = softmax(student[r]);
      p.forEach((pi, i) => (expected += pi * Math.log(pi / q[i])));
    });
    expected = (expected / teacher.length) * temperature * temperature;
    close(t, distillationKl(tf.tensor2d(teacher), tf.tensor2d(student), temperature).dataSync()[0], expected, 1e-5, `T=${temperature}`);
  }
  // Row 0 at T=1 by hand: 0.25·ln(0.5) + 0.75·ln(1.5) = 0.130812...
  close(t, distillationKl(tf.tensor2d([teacher[0]]), tf.tensor2d([student[0]]), 1).dataSync()[0], 0.25 * Math.log(0.5) + 0.75 * Math.log(1.5), 1e-5);
  t.is(distillationKl(tf.tensor2d(teacher), tf.tensor2d(teacher), 3).dataSync()[0], 0);
});

// ---------- the SLA method against the independent reference ----------

for (const transform of ['rotation', 'color_perm3']) {
  test(`SLA joint loss equals the reference NM-way ProtoNet CE (${transform}, mean / sum / label smoothing)`, (t) => {
    const ep = toyEpisode();
    const set = getTransformSet(transform);
    const m = set.transforms.length;
    const support = rowsOf(expandImages(set, ep.supportImages));
    const query = rowsOf(expandImages(set, ep.queryImages));
    // Reference: prototype per (class, j) = mean of t_j(x) over the class's shots; query row b·M+j targets y_b·M+j.
    const supportJoint = support.map((_, r) => ep.supportLabels[Math.floor(r / m)] * m + (r % m));
    const queryJoint = query.map((_, r) => ep.queryLabels[Math.floor(r / m)] * m + (r % m));
    const logits = protoLogits(support, supportJoint, query, ep.way * m);
    const expectedMean = meanCrossEntropy(logits, queryJoint);

    const mean = makeSla(protonet(), { transform });
    close(t, mean.trainLoss(ep).dataSync()[0], expectedMean, 1e-4, 'mean');
    const sum = makeSla(protonet(), { transform, slaLoss: 'sum' });
    close(t, sum.trainLoss(ep).dataSync()[0], expectedMean * m, 1e-4, 'sum');
    const smoothed = makeSla(protonet({ labelSmoothing: 0.1 }), { transform });
    close(t, smoothed.trainLoss(ep).dataSync()[0], meanCrossEntropy(logits, queryJoint, 0.1), 1e-4, 'smoothed');
    disposeEpisode(ep);
  });
}

test('SLA predict: with an isometric backbone, AG and SI both equal plain ProtoNet on the untransformed images', (t) => {
  // Rotations and channel permutations permute pixels, so ‖t_j(q) − mean t_j(x)‖ = ‖q − mean x‖ for every j:
  // AG, SI and plain ProtoNet must agree exactly; a wrong joint label or column would break this.
  const ep = toyEpisode(7);
  const plain = protoLogits(rowsOf(ep.supportImages), ep.supportLabels, rowsOf(ep.queryImages), 2);
  for (const transform of ['rotation', 'rot_color_perm12']) {
    const method = makeSla(protonet(), { transform });
    t.deepEqual(method.inferenceModes, ['ag', 'si']);
    const out = method.predict(ep);
    t.deepEqual(Object.keys(out), ['ag', 'si']);
    closeMatrix(t, out.ag.arraySync(), plain);
    closeMatrix(t, out.si.arraySync(), plain);
    tf.dispose(Object.values(out));
  }
  disposeEpisode(ep);
});

test('SLA+AG differs from SLA+SI once the backbone is not rotation-equivariant', (t) => {
  const ep = toyEpisode(3);
  const method = makeSla(protonet(), {}, new TinyConvBackbone(5));
  const out = method.predict(ep);
  const ag = out.ag.dataSync();
  const si = out.si.dataSync();
  t.deepEqual(out.ag.shape, [4, 2]);
  t.true(ag.some((v, i) => Math.abs(v - si[i]) > 1e-3));
  // SI is still the j=0 / identity-column slice of the joint logits.
  const { logits } = method.jointForward(ep, 'eval');
  closeMatrix(t, out.si.arraySync(), singleInferenceLogits(logits, 4).arraySync());
  disposeEpisode(ep);
});

// ---------- SLA+SD ----------

test('SLA+SD loss: with an isometric backbone, single = AG, so loss = SLA loss + β·CE(plain ProtoNet)', (t) => {
  const ep = toyEpisode(11);
  const plain = protoLogits(rowsOf(ep.supportImages), ep.supportLabels, rowsOf(ep.queryImages), 2);
  const slaLoss = makeSla(protonet()).trainLoss(ep).dataSync()[0];
  const sd = makeSd(protonet());
  close(t, sd.trainLoss(ep).dataSync()[0], slaLoss + meanCrossEntropy(plain, ep.queryLabels), 1e-4);
  const sdBeta = makeSd(protonet(), { beta: 0.5, temperature: 3 });
  close(t, sdBeta.trainLoss(ep).dataSync()[0], slaLoss + 0.5 * meanCrossEntropy(plain, ep.queryLabels), 1e-4);
  t.deepEqual(sd.inferenceModes, ['sd', 'ag', 'si']);
  const out = sd.predict(ep);
  t.deepEqual(Object.keys(out), ['sd', 'ag', 'si']);
  closeMatrix(t, out.sd.arraySync(), plain);
  disposeEpisode(ep);
});

test('SLA+SD gradients treat the AG teacher as a constant', (t) => {
  const ep = toyEpisode(5);
  const backbone = new TinyConvBackbone(9);
  const sd = makeSd(protonet(), { temperature: 2 }, backbone);
  const vars = backbone.trainableVariables();
  const gradsOf = (f: () => tf.Scalar) => {
    const { value, grads } = tf.variableGrads(f, vars);
    const out = { value: value.dataSync()[0], grads: vars.map((v) => Array.from(grads[v.name].dataSync())) };
    tf.dispose([value, ...Object.values(grads)]);
    return out;
  };
  const manual = (detach: boolean) => () =>
    tf.tidy(() => {
      const forward = sd.jointForward(ep, 'train');
      const single = sd.singleLogits(forward, ep, 'train');
      const ag = aggregateJointLogits(forward.logits, 4);
      // Independent detach: a fresh tensor from the values has no path to the variables.
      const teacher = detach ? tf.tensor2d(Array.from(ag.dataSync()), ag.shape) : ag;
      const joint = tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(jointLabels(ep.queryLabels, 4), 'int32'), 8), forward.logits);
      const ce = tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(ep.queryLabels, 'int32'), 2), single);
      return tf.addN([joint, ce, distillationKl(teacher, single, 2)]) as tf.Scalar;
    });
  const actual = gradsOf(() => sd.trainLoss(ep));
  const detached = gradsOf(manual(true));
  const attached = gradsOf(manual(false));
  close(t, actual.value, detached.value, 1e-4, 'loss');
  actual.grads.forEach((g, k) => g.forEach((v, i) => close(t, v, detached.grads[k][i], 1e-3, `grad ${k}[${i}]`)));
  // The test can fail: without the detach the gradients differ.
  const maxDiff = Math.max(...attached.grads.flatMap((g, k) => g.map((v, i) => Math.abs(v - detached.grads[k][i]))));
  t.true(maxDiff > 1e-4, `attached vs detached max diff ${maxDiff}`);
  disposeEpisode(ep);
});

// ---------- options, bad input, registry ----------

test('wrapper options are validated with defaults recorded in describe()', (t) => {
  const sla = makeSla(protonet());
  t.like(sla.describe(), {
    wrapper: 'sla',
    head: 'protonet',
    backbone: 'flatten',
    transform: 'rotation',
    transformCount: 4,
    slaLoss: 'mean',
    inferenceModes: ['ag', 'si'],
  });
  t.deepEqual(sla.describe().transforms, ['identity', 'rot90', 'rot180', 'rot270']);
  t.like(makeSd(protonet(), { transform: 'color_perm3', slaLoss: 'sum' }).describe(), {
    wrapper: 'sla-sd',
    transform: 'color_perm3',
    transformCount: 3,
    slaLoss: 'sum',
    beta: 1,
    temperature: 1,
    inferenceModes: ['sd', 'ag', 'si'],
  });
  t.is(sla.id, 'protonet-sla');
  t.throws(() => makeSla(protonet(), { slaLoss: 'max' }), { instanceOf: UserError, message: /slaLoss/ });
  t.throws(() => makeSla(protonet(), { temperature: 2 }), { instanceOf: UserError, message: /temperature/ });
  t.throws(() => makeSd(protonet(), { temperature: 0 }), { instanceOf: UserError, message: /temperature/ });
  const err = t.throws(() => makeSla(protonet(), { transform: 'rotate' }), { instanceOf: UserError });
  t.regex(err!.message, /unknown transform set "rotate"[\s\S]*rotation, rotation2/);
});

test('a head whose maxWay is below N·M is refused at create, before any compute', (t) => {
  const before = tf.memory().numTensors;
  const small = protonet({ maxWay: 10 });
  const err = t.throws(() => slaWrapper.create({ backbone: flattenBackbone, head: small, way: 5, imageSize: 4, seed: 0, options: {} }), {
    instanceOf: UserError,
  });
  t.regex(err!.message, /at most 10 classes.*needs 20/);
  t.throws(() => slaSdWrapper.create({ backbone: flattenBackbone, head: small, way: 3, imageSize: 4, seed: 0, options: {} }), { instanceOf: UserError });
  t.is(tf.memory().numTensors, before);
  // 5 × 2 (rotation2) = 10 fits.
  t.notThrows(() => slaWrapper.create({ backbone: flattenBackbone, head: small, way: 5, imageSize: 4, seed: 0, options: { transform: 'rotation2' } }));
});

test('non-square images with a quarter-turn set: UserError before compute, no tensors left', (t) => {
  const sla = makeSla(protonet());
  const ep: EpisodeImages = { ...toyEpisode(), supportImages: tf.zeros([4, 4, 6, 3]), queryImages: tf.zeros([4, 4, 6, 3]) };
  const before = tf.memory().numTensors;
  t.throws(() => sla.trainLoss(ep), { instanceOf: UserError, message: /square/ });
  t.throws(() => sla.predict(ep), { instanceOf: UserError, message: /square/ });
  t.is(tf.memory().numTensors, before);
  disposeEpisode(ep);
});

test('method names resolve to the SLA wrappers', (t) => {
  t.is(resolveMethodName('protonet-sla').wrapper.suffix, 'sla');
  t.is(resolveMethodName('protonet-sla-sd').wrapper.suffix, 'sla-sd');
  t.is(resolveMethodName('protonet-sla').headId, 'protonet');
});

test('no tensor leaks: trainLoss and predict inside tidy, and a full gradient step', (t) => {
  const ep = toyEpisode();
  const backbone = new TinyConvBackbone(2);
  for (const method of [makeSla(protonet(), {}, backbone), makeSd(protonet(), {}, backbone)]) {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      method.trainLoss(ep);
    });
    tf.tidy(() => {
      method.predict(ep);
    });
    const preds = method.predict(ep);
    tf.dispose(Object.values(preds));
    const { value, grads } = tf.variableGrads(() => method.trainLoss(ep), method.trainableVariables());
    tf.dispose([value, ...Object.values(grads)]);
    t.is(tf.memory().numTensors, before, method.id);
  }
  disposeEpisode(ep);
});
