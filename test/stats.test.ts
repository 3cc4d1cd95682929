import test from 'ava';
import { meanCI, pairedDifference, formatCI } from '../src/eval/stats.ts';

test('meanCI is mean ± 1.96·s/√n with the sample standard deviation', (t) => {
  const xs = [0.2, 0.4, 0.6, 0.8];
  const mean = 0.5;
  const s = Math.sqrt(((0.3 ** 2 + 0.1 ** 2) * 2) / 3);
  const ci = meanCI(xs);
  t.true(Math.abs(ci.mean - mean) < 1e-12);
  t.true(Math.abs(ci.std - s) < 1e-12);
  t.true(Math.abs(ci.ci95 - (1.96 * s) / 2) < 1e-12);
  t.is(ci.n, 4);
});

test('a constant list has a zero-width interval; one value is allowed', (t) => {
  t.is(meanCI([0.6, 0.6, 0.6]).ci95, 0);
  t.is(meanCI([0.7]).ci95, 0);
  t.throws(() => meanCI([]));
});

test('paired difference cancels shared episode difficulty', (t) => {
  // B is A shifted down by 0.05 on every episode: the paired CI has zero width,
  // although each method alone has a wide one.
  const a = [0.2, 0.9, 0.5, 0.7, 0.3];
  const b = a.map((x) => x - 0.05);
  const d = pairedDifference(a, b);
  t.true(Math.abs(d.mean - 0.05) < 1e-12);
  t.true(d.ci95 < 1e-12);
  t.true(meanCI(a).ci95 > 0.1);
  t.throws(() => pairedDifference([1], [1, 2]));
});

test('formatCI prints percentages', (t) => {
  t.is(formatCI({ mean: 0.52314, ci95: 0.00444, std: 0, n: 1 }), '52.31 ± 0.44');
});
