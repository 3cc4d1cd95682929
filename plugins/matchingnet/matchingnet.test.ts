import test from 'ava';
import { selectBackend, tf } from 'fewshot';
import { MatchingNetHead } from './index.ts';

test.before(async () => {
  await selectBackend('cpu');
});

test('MatchingNet attention equals a plain-array reference: P(c|q) = Σ_{y_i=c} softmax_i(scale·cos(q, s_i))', (t) => {
  const support = [
    [1, 0, 2],
    [0.5, 1, -1],
    [-1, 2, 0],
    [2, 2, 1],
    [0, -1, 1],
  ];
  const labels = Int32Array.from([0, 1, 2, 1, 0]);
  const query = [
    [1, 1, 1],
    [-2, 0.5, 0],
  ];
  const scale = 3;
  const head = new MatchingNetHead({ scale, learnScale: false });
  const logits = tf.tidy(() => head.logits({ support: tf.tensor2d(support), query: tf.tensor2d(query), supportLabels: labels, way: 3 }).arraySync());
  const norm = (v: number[]) => Math.hypot(...v);
  query.forEach((q, r) => {
    const a = support.map((s) => Math.exp((scale * q.reduce((acc, v, k) => acc + v * s[k], 0)) / (norm(q) * norm(s))));
    const total = a.reduce((x, y) => x + y, 0);
    for (let c = 0; c < 3; c++) {
      const p = a.reduce((acc, v, i) => acc + (labels[i] === c ? v : 0), 0) / total;
      t.true(Math.abs(Math.exp(logits[r][c]) - p) < 1e-5, `P(${c}|q${r}) = ${Math.exp(logits[r][c])} vs ${p}`);
    }
  });
});
