import test from 'ava';
import { getLearner, selectBackend, tf } from 'fewshot';
import { RelationNetHead, relationNetConfigSchema } from './index.ts';

test.before(async () => {
  await selectBackend('cpu');
});

const support = [
  [1, 0, 2, -1],
  [0.5, 1, -1, 0],
  [-1, 2, 0, 1],
  [2, 2, 1, 0.5],
  [0, -1, 1, 2],
  [1, 1, -2, 0],
];
const labels = Int32Array.from([0, 1, 2, 1, 0, 2]);
const query = [
  [1, 1, 1, 0],
  [-2, 0.5, 0, 1],
  [0, 0, 3, -1],
];

function episode() {
  return { support: tf.tensor2d(support), query: tf.tensor2d(query), supportLabels: labels, way: 3 };
}

test('RelationNet scores equal a plain-array reference: r(c, q) = w₂·ReLU(W₁ᵖ p_c + W₁ᑫ q + b₁) + b₂, p_c the class mean', (t) => {
  const head = new RelationNetHead({ hidden: 5 });
  head.prepare({ way: 3, embeddingDim: 4, seed: 7, backbone: undefined as never });
  const [w1p, w1q, b1, w2, b2] = head.variables().map((v) => Array.from(v.dataSync()));
  const logits = tf.tidy(() => head.logits(episode()).arraySync());
  const h = 5;
  const d = 4;
  for (let c = 0; c < 3; c++) {
    const members = support.filter((_, i) => labels[i] === c);
    const p = Array.from({ length: d }, (_, k) => members.reduce((s, x) => s + x[k], 0) / members.length);
    query.forEach((q, r) => {
      let score = b2[0];
      for (let j = 0; j < h; j++) {
        let pre = b1[j];
        for (let k = 0; k < d; k++) pre += p[k] * w1p[k * h + j] + q[k] * w1q[k * h + j];
        score += Math.max(0, pre) * w2[j];
      }
      t.true(Math.abs(logits[r][c] - score) < 1e-5, `r(${c}, q${r}) = ${logits[r][c]} vs ${score}`);
    });
  }
});

test('RelationNet: seeded initialisation in PyTorch nn.Linear bounds, and its relation module receives gradients', (t) => {
  const head = new RelationNetHead({ hidden: 4 });
  head.prepare({ way: 3, embeddingDim: 4, seed: 1, backbone: undefined as never });
  const [w1p, w1q, b1, w2, b2] = head.variables();
  t.deepEqual([w1p.shape, w1q.shape, b1.shape, w2.shape, b2.shape], [[4, 4], [4, 4], [4], [4, 1], [1]]);
  const maxAbs = (v: tf.Variable) => Math.max(...Array.from(v.dataSync()).map(Math.abs));
  // U(±1/√fan_in): fan_in 2d = 8 for the first layer, hidden = 4 for the second.
  for (const v of [w1p, w1q, b1]) t.true(maxAbs(v) <= 1 / Math.sqrt(8) && maxAbs(v) > 0);
  for (const v of [w2, b2]) t.true(maxAbs(v) <= 1 / Math.sqrt(4) && maxAbs(v) > 0);
  const ep = episode();
  t.deepEqual(
    tf.tidy(() => head.logits(ep).shape),
    [3, 3],
  );
  const { grads } = tf.variableGrads(() => tf.sum(tf.square(head.logits(ep))) as tf.Scalar, head.variables());
  t.is(Object.keys(grads).length, 5);
  t.true(Object.values(grads).every((g) => tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]) > 0));
  tf.dispose([...Object.values(grads), ep.support, ep.query]);
});

test('RelationNet registers as the "relationnet" learner with hidden 8 by default; a bad config is refused', (t) => {
  t.is(getLearner('relationnet').id, 'relationnet');
  t.deepEqual(relationNetConfigSchema.parse({}), { hidden: 8 });
  t.false(relationNetConfigSchema.safeParse({ hidden: 0 }).success);
  t.false(relationNetConfigSchema.safeParse({ hidden: 8, depth: 2 }).success);
  t.throws(() => tf.tidy(() => new RelationNetHead({ hidden: 3 }).logits(episode())), { message: /prepare\(\) was not called/ });
});
