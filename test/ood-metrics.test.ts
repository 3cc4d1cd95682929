import test from 'ava';
import { maxSoftmax, oodMetrics, oodMetricsWithCI, percentile, requireDisjointClasses } from '../src/eval/ood.ts';

/*
 * The reference numbers below are scikit-learn 1.2.1's (roc_auc_score, average_precision_score, roc_curve), printed
 * by test/fixtures/ood-sklearn.py for the same score lists (`python3 test/fixtures/ood-sklearn.py`).
 */
const close = (actual: number, expected: number, tol = 1e-12) => Math.abs(actual - expected) <= tol;

test('a hand-computed example: AUROC counts a tie as ½, AUPR-In is the step sum, FPR95 the first threshold reaching 95 % TPR', (t) => {
  // in = {3, 2}, out = {2, 1}. Pairs (in, out): (3,2) 1, (3,1) 1, (2,2) ½, (2,1) 1 → AUROC = 3.5 / 4.
  // Thresholds from the top: ≥3 → TP 1 FP 0 (recall ½, precision 1); ≥2 → TP 2 FP 1 (recall 1, precision ⅔):
  // AUPR-In = ½·1 + ½·⅔ = ⅚. Reading from the bottom with out positive: ≤1 → TP 1 FP 0; ≤2 → TP 2 FP 1 (the tie
  // enters whole); AUPR-Out = ½·1 + ½·⅔ = ⅚. TPR first reaches 95 % at ≥2, where 1 of 2 out-scores passes: ½.
  const m = oodMetrics([3, 2], [2, 1]);
  t.true(close(m.auroc, 0.875), `${m.auroc}`);
  t.true(close(m.auprIn, 5 / 6), `${m.auprIn}`);
  t.true(close(m.auprOut, 5 / 6), `${m.auprOut}`);
  t.true(close(m.fprAt95Tpr, 0.5), `${m.fprAt95Tpr}`);
});

test('perfect separation and its reverse', (t) => {
  t.deepEqual(oodMetrics([5, 4, 3], [2, 1]), { auroc: 1, auprIn: 1, auprOut: 1, fprAt95Tpr: 0 });
  const reversed = oodMetrics([1, 2], [4, 3, 5]);
  t.is(reversed.auroc, 0);
  t.is(reversed.fprAt95Tpr, 1);
  // AUPR-In with every positive ranked last: precision 1/4 at recall ½ then 2/5 at recall 1.
  t.true(close(reversed.auprIn, 0.5 * (1 / 4) + 0.5 * (2 / 5)));
});

test("scikit-learn's values for a score list with ties inside and across the lists", (t) => {
  const ins = [0.9, 0.85, 0.8, 0.7, 0.7, 0.6, 0.5, 0.5, 0.45, 0.3, 0.2, 0.95];
  const outs = [0.7, 0.65, 0.5, 0.4, 0.35, 0.2, 0.1, 0.05, 0.6, 0.15];
  const m = oodMetrics(ins, outs);
  t.true(close(m.auroc, 0.775), `${m.auroc}`);
  t.true(close(m.auprIn, 0.815985382007054), `${m.auprIn}`);
  t.true(close(m.auprOut, 0.757460317460317), `${m.auprOut}`);
  t.true(close(m.fprAt95Tpr, 0.7), `${m.fprAt95Tpr}`);
});

test("scikit-learn's values for overlapping normal scores without ties", (t) => {
  const ins = [
    0.604699, 1.263915, 1.607128, 0.02784, 1.767664, 1.255058, 1.78298, 1.272418, 2.162008, 0.062244, 2.7761, 2.20239, 0.400042, 1.660166, 1.444767, -0.745764,
    1.595216, 0.414601, 0.749986, 0.397614, 0.571916, 1.071735, 1.096719, -0.559152, 0.731294,
  ];
  const outs = [
    0.909145, 0.751397, -0.025538, 0.652506, -0.650954, -1.829492, 1.678511, 0.476614, -2.066348, -1.058936, -0.619572, 0.341559, 1.326922, 0.307653, -0.43298,
    0.467363, -0.222171, 0.182867, -0.666222, -1.206809, 1.283159, -0.319949, 0.11829, -0.600804, -0.544872, -0.353701, 0.657965, 1.218542, 0.54268, -0.553885,
  ];
  const m = oodMetrics(ins, outs);
  t.true(close(m.auroc, 0.786666666666667), `${m.auroc}`);
  t.true(close(m.auprIn, 0.775154567199402), `${m.auprIn}`);
  t.true(close(m.auprOut, 0.811177617062377), `${m.auprOut}`);
  t.true(close(m.fprAt95Tpr, 0.733333333333333), `${m.fprAt95Tpr}`);
  // The metrics do not depend on the order the scores come in.
  t.deepEqual(oodMetrics([...ins].reverse(), [...outs].reverse()), m);
});

test('the bootstrap interval is reproducible from its seed, differs for another seed, and brackets the point value', (t) => {
  const ins = Array.from({ length: 200 }, (_, i) => Math.sin(i * 12.9898) * 0.5 + 0.6);
  const outs = Array.from({ length: 150 }, (_, i) => Math.sin(i * 78.233) * 0.5 + 0.3);
  const a = oodMetricsWithCI(ins, outs, { seed: 7, resamples: 200 });
  const b = oodMetricsWithCI(ins, outs, { seed: 7, resamples: 200 });
  const c = oodMetricsWithCI(ins, outs, { seed: 8, resamples: 200 });
  t.deepEqual(a, b);
  t.not(a.auroc.low, c.auroc.low);
  const point = oodMetrics(ins, outs);
  for (const k of ['auroc', 'auprIn', 'auprOut', 'fprAt95Tpr'] as const) {
    t.is(a[k].value, point[k]);
    t.true(a[k].low <= point[k] && point[k] <= a[k].high, `${k}: ${a[k].low} ≤ ${point[k]} ≤ ${a[k].high}`);
    t.true(a[k].high - a[k].low > 0.01, `${k}: a real interval, not a point`);
  }
  t.is(a.resamples, 200);
  t.is(a.seed, 7);
});

test('a resample with every weight 1 is the plain metric: the weighted sweep equals the unweighted one', (t) => {
  // With one in- and one out-score, every resample is the original lists: the interval collapses to the value.
  const m = oodMetricsWithCI([0.8], [0.3], { seed: 1, resamples: 20 });
  t.deepEqual(m.auroc, { value: 1, low: 1, high: 1 });
  t.deepEqual(m.fprAt95Tpr, { value: 0, low: 0, high: 0 });
});

test('non-finite or missing scores are refused', (t) => {
  t.throws(() => oodMetrics([], [1]), { message: /at least one in-distribution/ });
  t.throws(() => oodMetrics([1], [Number.NaN]), { message: /out-of-distribution score 0 is NaN/ });
  t.throws(() => oodMetricsWithCI([1, 2], [0], { seed: 0, resamples: 3 }), { message: /resamples/ });
});

test('maximum softmax probability against a direct softmax, also at logit scales where exp overflows', (t) => {
  const logits = [1, 2, 3, 0, 0, 0, 1000, 999, -5];
  const msp = maxSoftmax(logits, 3);
  const direct = (row: number[]) => Math.max(...row.map((v) => Math.exp(v))) / row.reduce((s, v) => s + Math.exp(v), 0);
  t.true(close(msp[0], direct([1, 2, 3])));
  t.true(close(msp[1], 1 / 3));
  t.true(close(msp[2], 1 / (1 + Math.exp(-1) + Math.exp(-1005))));
  t.throws(() => maxSoftmax([1, 2, 3], 2));
});

test("percentile interpolates linearly between order statistics (numpy's default)", (t) => {
  const v = Float64Array.from([1, 2, 3, 4]);
  t.is(percentile(v, 0), 1);
  t.is(percentile(v, 1), 4);
  t.true(close(percentile(v, 0.5), 2.5));
  t.true(close(percentile(v, 0.025), 1.075));
});

test('an out-distribution that shares classes with the in-distribution is a UserError naming the shared classes', (t) => {
  const inside = { name: 'mini-imagenet train', classes: ['n01532829', 'n01558993', 'n01704323'] };
  const err = t.throws(() => requireDisjointClasses(inside, { name: 'mini-imagenet val', classes: ['n01855672', 'n01558993'] }));
  t.is(err?.name, 'UserError');
  t.regex(err!.message, /shares 1 of its 2 classes .*\(n01558993\)/);
  t.regex(err!.message, /fix: .*--out-split test/);
  t.notThrows(() => requireDisjointClasses(inside, { name: 'mini-imagenet test', classes: ['n01930112', 'n01981276'] }));
  t.throws(() => requireDisjointClasses(inside, { name: 'empty', classes: [] }), { message: /has no classes/ });
});
