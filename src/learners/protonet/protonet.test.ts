import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { ProtoNetHead } from './index.ts';
import { crossEntropy } from '../../losses/cross-entropy.ts';

test.before(async () => {
  await tf.setBackend('cpu');
});

test('ProtoNet logits are minus squared distances to class means', (t) => {
  const head = new ProtoNetHead({ normalizeByDim: false, learnableScale: false, labelSmoothing: 0 });
  const support = tf.tensor2d([
    [0, 0],
    [2, 0],
    [10, 10],
    [10, 12],
  ]);
  const query = tf.tensor2d([
    [1, 0],
    [10, 11],
    [4, 4],
  ]);
  const labels = new Int32Array([0, 0, 1, 1]);
  const logits = head.logits({ support, supportLabels: labels, query, way: 2 }, 'eval').arraySync();
  // prototypes (1,0) and (10,11)
  const expected = [
    [0, -(81 + 121)],
    [-(81 + 121), 0],
    [-(9 + 16), -(36 + 49)],
  ];
  logits.forEach((row, i) => row.forEach((v, j) => t.true(Math.abs(v - expected[i][j]) < 1e-4, `${i},${j}: ${v} vs ${expected[i][j]}`)));
});

test('MetaOptNet-protocol ProtoNet divides by the dimension and has a learnable scale', (t) => {
  const head = new ProtoNetHead({ normalizeByDim: true, learnableScale: true, labelSmoothing: 0 });
  t.is(head.variables().length, 1);
  const support = tf.tensor2d([
    [0, 0],
    [4, 0],
  ]);
  const query = tf.tensor2d([[0, 0]]);
  const l = head.logits({ support, supportLabels: new Int32Array([0, 1]), query, way: 2 }, 'eval').arraySync()[0];
  t.true(Math.abs(l[1] - -16 / 2) < 1e-5);
});

test('ProtoNet gradient w.r.t. the query matches finite differences', (t) => {
  const head = new ProtoNetHead({ normalizeByDim: false, learnableScale: false, labelSmoothing: 0 });
  const support = tf.tensor2d([
    [0.1, 0.3],
    [0.5, -0.2],
    [1.0, 0.7],
    [-0.4, 0.2],
  ]);
  const labels = new Int32Array([0, 1, 2, 0]);
  const qv = [0.2, -0.1];
  const f = (q: tf.Tensor) =>
    crossEntropy(head.logits({ support, supportLabels: labels, query: tf.reshape(q, [1, 2]) as tf.Tensor2D, way: 3 }, 'train'), new Int32Array([1]));
  const g = tf.grad(f)(tf.tensor1d(qv)).arraySync() as number[];
  const h = 1e-3;
  for (let k = 0; k < 2; k++) {
    const plus = [...qv];
    plus[k] += h;
    const minus = [...qv];
    minus[k] -= h;
    const fd = ((f(tf.tensor1d(plus)).arraySync() as number) - (f(tf.tensor1d(minus)).arraySync() as number)) / (2 * h);
    t.true(Math.abs(fd - g[k]) < 1e-3, `dim ${k}: ${g[k]} vs fd ${fd}`);
  }
});

test('cross-entropy with label smoothing puts ε/(N−1) on wrong classes', (t) => {
  const logits = tf.tensor2d([[2, 0, -1]]);
  const lp = tf.logSoftmax(logits).arraySync()[0];
  const eps = 0.1;
  const expected = -((1 - eps) * lp[0] + (eps / 2) * (lp[1] + lp[2]));
  const got = crossEntropy(logits as tf.Tensor2D, new Int32Array([0]), eps).arraySync() as number;
  t.true(Math.abs(got - expected) < 1e-6);
  t.true(Math.abs((crossEntropy(logits as tf.Tensor2D, new Int32Array([0])).arraySync() as number) + lp[0]) < 1e-6);
});
