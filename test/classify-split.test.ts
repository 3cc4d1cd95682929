import test from 'ava';
import { batchSampler, classificationSplit, longTailCounts, shotGroupOf } from '../src/data/classification-split.ts';
import { UserError } from '../src/util/errors.ts';

// The long-tailed CIFAR benchmarks' class sizes (Cao et al. 2019; the counts every LT paper's table is built on).
test('long-tail profile: CIFAR-10-LT class counts and CIFAR-10/100-LT totals exactly', (t) => {
  t.deepEqual(longTailCounts(5000, 10, 100), [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]);
  t.deepEqual(longTailCounts(5000, 10, 50), [5000, 3237, 2096, 1357, 878, 568, 368, 238, 154, 100]);
  t.deepEqual(longTailCounts(5000, 10, 10), [5000, 3871, 2997, 2320, 1796, 1391, 1077, 834, 645, 500]);
  const total = (counts: number[]) => counts.reduce((a, b) => a + b, 0);
  t.is(total(longTailCounts(5000, 10, 100)), 12406);
  t.is(total(longTailCounts(500, 100, 100)), 10847);
  t.is(total(longTailCounts(500, 100, 50)), 12608);
  t.is(total(longTailCounts(500, 100, 10)), 19573);
  const c100 = longTailCounts(500, 100, 100);
  t.is(c100[0], 500);
  t.is(c100[99], 5);
  t.deepEqual(longTailCounts(500, 64, 1), Array(64).fill(500));
});

test('imbalance ratio below 1 (or not a number) is a UserError naming the rule', (t) => {
  for (const r of [0.5, 0, -3, Number.NaN]) {
    const err = t.throws(() => longTailCounts(500, 10, r), { instanceOf: UserError });
    t.regex(err!.message, /must be a number ≥ 1/);
  }
});

function labelsOf(perClass: number[]): Int32Array {
  return Int32Array.from(perClass.flatMap((n, c) => Array(n).fill(c)));
}

test('hold-out split: exactly testPerClass per class, disjoint from training, seeded, long-tail counts applied', (t) => {
  const labels = labelsOf([30, 25, 40, 28]);
  const names = ['a', 'b', 'c', 'd'];
  const s = classificationSplit(labels, names, { testPerClass: 5, imbalanceRatio: 4, seed: 0 });
  const count = (items: Int32Array, c: number) => Array.from(items).filter((i) => labels[i] === c).length;
  for (let c = 0; c < 4; c++) t.is(count(s.test, c), 5);
  // n_max is the smallest class's remainder (25 − 5 = 20): 20, ⌊20·4^(−1/3)⌋ = 12, ⌊20·4^(−2/3)⌋ = 7, 5.
  t.deepEqual(s.trainCounts, [20, 12, 7, 5]);
  for (let c = 0; c < 4; c++) t.is(count(s.train, c), s.trainCounts[c]);
  const train = new Set(s.train);
  t.true(Array.from(s.test).every((i) => !train.has(i)));
  const again = classificationSplit(labels, names, { testPerClass: 5, imbalanceRatio: 4, seed: 0 });
  t.is(again.testSha256, s.testSha256);
  t.is(again.trainSha256, s.trainSha256);
  t.not(classificationSplit(labels, names, { testPerClass: 5, imbalanceRatio: 4, seed: 1 }).testSha256, s.testSha256);
  // Balanced: every image not held out trains.
  const balanced = classificationSplit(labels, names, { testPerClass: 5, imbalanceRatio: 1, seed: 0 });
  t.deepEqual(balanced.trainCounts, [25, 20, 35, 23]);
  t.is(balanced.train.length + balanced.test.length, labels.length);
});

test('a split too small to hold out a test portion is a UserError naming the class and the largest workable value', (t) => {
  const labels = labelsOf([30, 6, 40]);
  const err = t.throws(() => classificationSplit(labels, ['a', 'b', 'c'], { testPerClass: 6, imbalanceRatio: 1, seed: 0 }), { instanceOf: UserError });
  t.regex(err!.message, /too small to hold out a test portion: class "b" has 6 images/);
  t.regex(err!.message, /at most 5 here/);
  t.notThrows(() => classificationSplit(labels, ['a', 'b', 'c'], { testPerClass: 5, imbalanceRatio: 1, seed: 0 }));
});

test('shot groups: many > 100, medium 20–100, few < 20 training images', (t) => {
  t.is(shotGroupOf(101), 'many');
  t.is(shotGroupOf(100), 'medium');
  t.is(shotGroupOf(20), 'medium');
  t.is(shotGroupOf(19), 'few');
});

test('batch sampler: each epoch visits every training item once, batches are a pure function of (seed, step)', (t) => {
  const train = Int32Array.from({ length: 23 }, (_, i) => i * 3);
  const a = batchSampler(train, 5, 7);
  t.is(a.stepsPerEpoch, 5);
  for (const epoch of [0, 1]) {
    const seen = Array.from({ length: 5 }, (_, b) => Array.from(a.batch(epoch * 5 + b))).flat();
    t.deepEqual(
      [...seen].sort((x, y) => x - y),
      Array.from(train),
    );
  }
  t.notDeepEqual(Array.from(a.batch(0)), Array.from(a.batch(5)));
  // A fresh sampler (a resumed process) asked for step 7 first gives the same batch.
  t.deepEqual(Array.from(batchSampler(train, 5, 7).batch(7)), Array.from(a.batch(7)));
});
