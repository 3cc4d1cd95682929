import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/backend/select.ts';
import { ClassifierMethod, type ClassifierVariant } from '../src/methods/classifier.ts';
import type { EpisodeImages } from '../src/episodes/images.ts';
import { expandImages } from '../src/transforms/expand.ts';
import { getTransformSet } from '../src/transforms/registry.ts';
import '../src/builtin.ts';
import { flattenBackbone } from './fixtures/models.ts';

test.before(async () => {
  await selectBackend('cpu');
});

/*
 * The SLA classification head on a tiny input against a plain-array reference: the backbone is the identity
 * (flattened pixels), so every joint logit, the joint labels y·M + j, SLA+AG, SLA+SI, the losses and SLA+SD's single
 * head are recomputed here with loops over numbers and compared with the method's tensors.
 */
const S = 4;
const C = 3;
const B = 2;
const LABELS = Int32Array.from([2, 0]);

function images(): tf.Tensor4D {
  return tf.tensor4d(
    Array.from({ length: B * S * S * 3 }, (_, i) => Math.sin(i * 1.7) * 0.8),
    [B, S, S, 3],
  );
}

function make(variant: ClassifierVariant, slaLoss: 'mean' | 'sum' = 'mean', kind: 'linear' | 'cosine' = 'linear'): ClassifierMethod {
  return new ClassifierMethod({
    variant,
    backbone: flattenBackbone,
    imageSize: S,
    classes: C,
    head: { kind, scale: 10 },
    transformSet: getTransformSet('rotation'),
    options: { slaLoss, beta: 1, temperature: 1 },
    seed: 3,
  });
}

const rows = (t: tf.Tensor): number[][] => t.arraySync() as number[][];

/** Plain logits z·W + b of rows z. */
function linear(z: number[][], w: number[][], b: number[]): number[][] {
  return z.map((r) => b.map((bk, k) => r.reduce((a, v, i) => a + v * w[i][k], bk)));
}
const logSoftmax = (r: number[]) => {
  const m = Math.max(...r);
  const lse = m + Math.log(r.reduce((a, v) => a + Math.exp(v - m), 0));
  return r.map((v) => v - lse);
};
const ce = (logits: number[][], labels: number[]) => -logits.reduce((a, r, i) => a + logSoftmax(r)[labels[i]], 0) / logits.length;

function close(t: import('ava').ExecutionContext, actual: number[][], expected: number[][], tol = 1e-4): void {
  t.is(actual.length, expected.length);
  actual.forEach((r, i) => r.forEach((v, k) => t.true(Math.abs(v - expected[i][k]) < tol, `[${i}][${k}] ${v} vs ${expected[i][k]}`)));
}

function batchOf(x: tf.Tensor4D): EpisodeImages {
  return { supportImages: tf.zeros([0, S, S, 3]) as tf.Tensor4D, supportLabels: new Int32Array(0), queryImages: x, queryLabels: LABELS, way: C };
}

test('SLA head: C·M outputs, joint labels y·M + j, SLA+AG and SLA+SI against a plain-array reference', (t) => {
  const method = make('sla');
  const m = 4;
  t.is(method.head.outputs, C * m);
  const x = images();
  const expanded = rows(tf.reshape(expandImages(getTransformSet('rotation'), x), [B * m, -1]));
  // Row b·M + 0 is the untransformed image b.
  close(t, [expanded[0], expanded[m]], rows(tf.reshape(x, [B, -1])), 1e-7);
  const joint = linear(expanded, rows(method.head.weight), Array.from(method.head.bias!.dataSync()));
  close(t, rows(method.jointLogits(x)), joint);
  const ag = Array.from({ length: B }, (_, b) =>
    Array.from({ length: C }, (_, i) => {
      let s = 0;
      for (let j = 0; j < m; j++) s += joint[b * m + j][i * m + j];
      return s / m;
    }),
  );
  const si = Array.from({ length: B }, (_, b) => Array.from({ length: C }, (_, i) => joint[b * m][i * m]));
  const scores = method.scores(x);
  t.deepEqual(Object.keys(scores).sort(), ['ag', 'si']);
  close(t, rows(scores.ag), ag);
  close(t, rows(scores.si), si);
  // Joint labels: copy j of image b is class (y_b, j) = y_b·M + j; the loss is the mean CE over all B·M copies.
  const jointLabels = Array.from({ length: B * m }, (_, r) => LABELS[Math.floor(r / m)] * m + (r % m));
  t.deepEqual(jointLabels, [8, 9, 10, 11, 0, 1, 2, 3]);
  const loss = ce(joint, jointLabels);
  t.true(Math.abs(method.trainLoss(batchOf(x)).dataSync()[0] - loss) < 1e-4);
  // --sla-loss sum (the authors' --with-large-loss): the same mean CE × M.
  const large = make('sla', 'sum');
  const largeJoint = linear(expanded, rows(large.head.weight), Array.from(large.head.bias!.dataSync()));
  t.true(Math.abs(large.trainLoss(batchOf(x)).dataSync()[0] - m * ce(largeJoint, jointLabels)) < 1e-3);
});

test('SLA+SD: single head on the identity copies, loss = joint CE + CE(single) + KL(AG ‖ single); sd/ag/si scores', (t) => {
  const method = make('sla-sd');
  const m = 4;
  const x = images();
  const expanded = rows(tf.reshape(expandImages(getTransformSet('rotation'), x), [B * m, -1]));
  const joint = linear(expanded, rows(method.head.weight), Array.from(method.head.bias!.dataSync()));
  const single = linear([expanded[0], expanded[m]], rows(method.singleHead!.weight), Array.from(method.singleHead!.bias!.dataSync()));
  const ag = [0, 1].map((b) => Array.from({ length: C }, (_, i) => [0, 1, 2, 3].reduce((a, j) => a + joint[b * m + j][i * m + j], 0) / m));
  const jointLabels = Array.from({ length: B * m }, (_, r) => LABELS[Math.floor(r / m)] * m + (r % m));
  const kl =
    ag.reduce((a, row, b) => {
      const p = logSoftmax(row);
      const q = logSoftmax(single[b]);
      return a + p.reduce((s, lp, k) => s + Math.exp(lp) * (lp - q[k]), 0);
    }, 0) / B;
  const expected = ce(joint, jointLabels) + ce(single, Array.from(LABELS)) + kl;
  t.true(Math.abs(method.trainLoss(batchOf(x)).dataSync()[0] - expected) < 1e-4);
  const scores = method.scores(x);
  t.deepEqual(Object.keys(scores).sort(), ['ag', 'sd', 'si']);
  close(t, rows(scores.sd), single);
  close(t, rows(scores.ag), ag);
});

test('DA and MT: every copy keeps its class label; MT adds the M-way transformation CE; plain C-way inference', (t) => {
  const m = 4;
  const x = images();
  const expanded = rows(tf.reshape(expandImages(getTransformSet('rotation'), x), [B * m, -1]));
  const da = make('da');
  t.is(da.head.outputs, C);
  const daLogits = linear(expanded, rows(da.head.weight), Array.from(da.head.bias!.dataSync()));
  const repeated = Array.from({ length: B * m }, (_, r) => LABELS[Math.floor(r / m)]);
  t.true(Math.abs(da.trainLoss(batchOf(x)).dataSync()[0] - ce(daLogits, repeated)) < 1e-4);
  close(t, rows(da.scores(x).plain), [daLogits[0], daLogits[m]]);
  const mt = make('mt');
  const mtLogits = linear(expanded, rows(mt.head.weight), Array.from(mt.head.bias!.dataSync()));
  const tLogits = linear(expanded, rows(mt.transformHead!.weight), Array.from(mt.transformHead!.bias!.dataSync()));
  const transformLabels = Array.from({ length: B * m }, (_, r) => r % m);
  t.true(Math.abs(mt.trainLoss(batchOf(x)).dataSync()[0] - (ce(mtLogits, repeated) + ce(tLogits, transformLabels))) < 1e-4);
});

test('cosine head: scale · cos(z, w_k), no bias', (t) => {
  const method = make('plain', 'mean', 'cosine');
  t.is(method.head.bias, undefined);
  const x = images();
  const z = rows(tf.reshape(x, [B, -1]));
  const w = rows(method.head.weight);
  const norm = (v: number[]) => Math.sqrt(v.reduce((a, e) => a + e * e, 0));
  const expected = z.map((r) =>
    Array.from({ length: C }, (_, k) => {
      const col = w.map((wr) => wr[k]);
      return (10 * r.reduce((a, v, i) => a + v * col[i], 0)) / (norm(r) * norm(col));
    }),
  );
  close(t, rows(method.scores(x).plain), expected);
});
