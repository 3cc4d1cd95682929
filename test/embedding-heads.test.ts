import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { ProtoNetHead } from '../src/learners/protonet/index.ts';
import { aggregateJointLogits, jointLabels } from '../src/methods/aggregate.ts';
import { aggregateJoint, logisticRegression, scoreQueries, type EmbeddedTask } from '../src/eval/embedding-heads.ts';
import { mulberry32 } from '../src/util/prng.ts';

test.before(async () => {
  await tf.setBackend('cpu');
});

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number) => a.length === b.length && Array.from(a).every((v, i) => Math.abs(v - b[i]) <= tol);

function randomTask(seed: number, way: number, shot: number, nQuery: number, dim: number): EmbeddedTask {
  const r = mulberry32(seed);
  return {
    support: Float64Array.from({ length: way * shot * dim }, () => r() * 2 - 1),
    supportLabels: Int32Array.from({ length: way * shot }, (_, i) => i % way),
    query: Float64Array.from({ length: nQuery * dim }, () => r() * 2 - 1),
    dim,
    way,
  };
}

test('the protonet head equals the episodic ProtoNet head (tfjs) on the same embeddings', (t) => {
  const task = randomTask(1, 5, 3, 7, 16);
  const ours = scoreQueries('protonet', task);
  const theirs = tf.tidy(() =>
    new ProtoNetHead()
      .logits(
        {
          support: tf.tensor2d(Float32Array.from(task.support), [15, 16]),
          supportLabels: task.supportLabels,
          query: tf.tensor2d(Float32Array.from(task.query), [7, 16]),
          way: 5,
        },
        'eval',
      )
      .dataSync(),
  );
  t.true(close(ours, theirs, 1e-4), `${ours.slice(0, 5)} vs ${theirs.slice(0, 5)}`);
});

test('the protonet and cosine heads against a hand-worked 2-way example', (t) => {
  // class 0: (1,0), (3,0) → mean (2,0); class 1: (0,2), (0,4) → mean (0,3). Normalised: class 0 (1,0), class 1 (0,1).
  const task: EmbeddedTask = { support: [1, 0, 3, 0, 0, 2, 0, 4], supportLabels: Int32Array.from([0, 0, 1, 1]), query: [2, 1, 1, 1], dim: 2, way: 2 };
  t.deepEqual(Array.from(scoreQueries('protonet', task)), [-1, -(4 + 4), -(1 + 1), -(1 + 4)]);
  const cos = scoreQueries('cosine', task);
  t.true(close(cos, [2 / Math.sqrt(5), 1 / Math.sqrt(5), 1 / Math.SQRT2, 1 / Math.SQRT2], 1e-12), `${cos}`);
});

test("the cosine head uses the mean of normalised support rows, so a support row's length does not matter", (t) => {
  const task = randomTask(2, 3, 2, 4, 8);
  const scaled = { ...task, support: Float64Array.from(task.support, (v, i) => v * (1 + Math.floor(i / 8) * 3)) };
  t.true(close(scoreQueries('cosine', task), scoreQueries('cosine', scaled), 1e-12));
  // and a query's length neither: cosine logits are in [−1, 1]
  const s = scoreQueries('cosine', task);
  t.true(s.every((v) => v >= -1 - 1e-12 && v <= 1 + 1e-12));
});

test('logistic regression reaches the optimum: the primal gradient (plain arrays, explicit W) is zero at its solution', (t) => {
  const task = randomTask(3, 5, 5, 10, 32);
  const fit = logisticRegression(task);
  t.true(fit.gradientNorm <= 1e-6, `‖∇‖ = ${fit.gradientNorm} after ${fit.iterations} iterations`);
  // Reference: the objective (1/n)ΣCE + λ/2‖W‖² written directly on W and b, λ = 1/n (C = 1).
  const n = 25;
  const dim = 32;
  const x = Array.from({ length: n }, (_, i) => {
    const row = Array.from(task.support).slice(i * dim, (i + 1) * dim);
    const norm = Math.hypot(...row);
    return row.map((v) => v / norm);
  });
  const gW = new Float64Array(5 * dim);
  const gB = new Float64Array(5);
  for (let i = 0; i < n; i++) {
    const z = Array.from({ length: 5 }, (_, c) => fit.bias[c] + x[i].reduce((s, v, k) => s + v * fit.weights[c * dim + k], 0));
    const e = z.map((v) => Math.exp(v - Math.max(...z)));
    const sum = e.reduce((a, b) => a + b, 0);
    for (let c = 0; c < 5; c++) {
      const g = (e[c] / sum - (task.supportLabels[i] === c ? 1 : 0)) / n;
      gB[c] += g;
      for (let k = 0; k < dim; k++) gW[c * dim + k] += g * x[i][k];
    }
  }
  for (let k = 0; k < gW.length; k++) gW[k] += (1 / n) * fit.weights[k];
  const norm = Math.hypot(...gW, ...gB);
  t.true(norm < 1e-5, `primal ‖∇‖ = ${norm}`);
  // the query logits are W·q̂ + b of that solution (q̂ the normalised query)
  for (let q = 0; q < 10; q++) {
    const row = Array.from(task.query).slice(q * dim, (q + 1) * dim);
    const norm2 = Math.hypot(...row);
    for (let c = 0; c < 5; c++) {
      const z = fit.bias[c] + row.reduce((s, v, k) => s + (v / norm2) * fit.weights[c * dim + k], 0);
      t.true(Math.abs(fit.logits[q * 5 + c] - z) < 1e-9);
    }
  }
});

test("logistic regression matches scikit-learn's LogisticRegression (C=1, multinomial) probabilities", (t) => {
  // test/fixtures/logreg-sklearn.py printed these with scikit-learn 1.2.1 (lbfgs, tol 1e-12).
  const task: EmbeddedTask = {
    support: [1.0, 0.2, 0.0, 0.5, 0.8, 0.1, 0.3, 0.4, 0.0, 1.0, 0.2, 0.1, 0.2, 0.9, 0.0, 0.3, 0.1, 0.3, 1.0, 0.0, 0.4, 0.0, 0.7, 0.2],
    supportLabels: Int32Array.from([0, 0, 1, 1, 2, 2]),
    query: [0.9, 0.3, 0.1, 0.4, 0.3, 0.3, 0.3, 0.3, 0.0, 0.5, 0.6, 0.0],
    dim: 4,
    way: 3,
  };
  const expected = [
    0.499064059711, 0.261168971459, 0.23976696883, 0.34986847371, 0.318183647968, 0.331947878322, 0.185746137256, 0.376549191778, 0.437704670966,
  ];
  const logits = scoreQueries('logreg', task);
  const probs: number[] = [];
  for (let q = 0; q < 3; q++) {
    const e = [0, 1, 2].map((c) => Math.exp(logits[q * 3 + c]));
    const s = e[0] + e[1] + e[2];
    probs.push(...e.map((v) => v / s));
  }
  t.true(close(probs, expected, 1e-5), `${probs.map((p) => p.toFixed(6))}`);
});

test('SLA+AG over joint logits equals methods/aggregate.ts (tfjs) on the same N·M-way fit', (t) => {
  // 3-way, M = 4 copies: support labels expanded to joint labels, the head fitted on the 12 joint classes.
  const m = 4;
  const way = 3;
  const base = randomTask(4, way, 2, 5, 6);
  const joint: EmbeddedTask = {
    support: Float64Array.from({ length: way * 2 * m * 6 }, (_, i) => Math.sin(i * 1.7)),
    supportLabels: jointLabels(base.supportLabels, m),
    query: Float64Array.from({ length: 5 * m * 6 }, (_, i) => Math.cos(i * 0.9)),
    dim: 6,
    way: way * m,
  };
  for (const head of ['protonet', 'cosine', 'logreg'] as const) {
    const logits = scoreQueries(head, joint);
    const ours = aggregateJoint(logits, 5, way, m);
    const theirs = tf.tidy(() => aggregateJointLogits(tf.tensor2d(Float32Array.from(logits), [5 * m, way * m]), m).dataSync());
    t.true(close(ours, theirs, 1e-5), head);
  }
  t.throws(() => aggregateJoint(new Float64Array(10), 5, way, m), { message: /not \[5·4 × 3·4\]/ });
});

test('malformed tasks are refused: a class without support, a label out of range, ragged rows', (t) => {
  const task = randomTask(5, 3, 1, 2, 4);
  t.throws(() => scoreQueries('protonet', { ...task, way: 4 }), { message: /class 3 has no support example/ });
  t.throws(() => scoreQueries('cosine', { ...task, supportLabels: Int32Array.from([0, 1, 5]) }), { message: /outside \[0, 3\)/ });
  t.throws(() => scoreQueries('logreg', { ...task, query: new Float64Array(7) }), { message: /not rows of 4/ });
});
