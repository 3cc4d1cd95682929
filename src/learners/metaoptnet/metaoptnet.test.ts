import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '../../builtin.ts';
import { MetaOptNetSvmHead, metaOptNetSvmConfig } from './svm.ts';
import { MetaOptNetRrHead, metaOptNetRrConfig } from './rr.ts';
import { solveCrammerSinger } from './qp/crammer-singer.ts';
import { getLearner } from '../registry.ts';
import { buildMethod } from '../../methods/build.ts';
import { crossEntropy } from '../../losses/cross-entropy.ts';
import { NumericalError, UserError } from '../../util/errors.ts';
import { mulberry32, gaussian } from '../../util/prng.ts';

test.before(async () => {
  await tf.setBackend('cpu');
});

/** a [p×d] · bᵀ [d×q], row-major float64. */
function matMulT(a: Float64Array, p: number, b: Float64Array, q: number, d: number): Float64Array {
  const out = new Float64Array(p * q);
  for (let i = 0; i < p; i++)
    for (let j = 0; j < q; j++) {
      let s = 0;
      for (let c = 0; c < d; c++) s += a[i * d + c] * b[j * d + c];
      out[i * q + j] = s;
    }
  return out;
}

interface Episode64 {
  n: number;
  nq: number;
  d: number;
  way: number;
  labels: Int32Array;
  support: Float64Array;
  query: Float64Array;
}
function episode(seed: number, way: number, shot: number, nq: number, d: number): Episode64 {
  const r = mulberry32(seed);
  const n = way * shot;
  const labels = Int32Array.from({ length: n }, (_, i) => i % way);
  const means = Array.from({ length: way }, () => Float64Array.from({ length: d }, () => gaussian(r)));
  const support = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) support[i * d + c] = 0.8 * means[labels[i]][c] + 0.6 * gaussian(r);
  const query = Float64Array.from({ length: nq * d }, () => gaussian(r));
  return { n, nq, d, way, labels, support, query };
}
const toTf = (ep: Episode64, support = ep.support, query = ep.query) => ({
  support: tf.tensor2d(Float32Array.from(support), [ep.n, ep.d]),
  query: tf.tensor2d(Float32Array.from(query), [ep.nq, ep.d]),
  supportLabels: ep.labels,
  way: ep.way,
});

/** Reference logits in float64: scale · (Q Xᵀ) α(X Xᵀ), with α from the given dual solver. */
function referenceLogits(ep: Episode64, support: Float64Array, query: Float64Array, dual: (k: Float64Array) => Float64Array, scale: number): Float64Array {
  const alpha = dual(matMulT(support, ep.n, support, ep.n, ep.d));
  const cross = matMulT(query, ep.nq, support, ep.n, ep.d);
  const out = new Float64Array(ep.nq * ep.way);
  for (let q = 0; q < ep.nq; q++)
    for (let m = 0; m < ep.way; m++) {
      let s = 0;
      for (let i = 0; i < ep.n; i++) s += cross[q * ep.n + i] * alpha[i * ep.way + m];
      out[q * ep.way + m] = scale * s;
    }
  return out;
}

/**
 * Checks d(Σ W ⊙ logits)/d(support, query) from tf against central finite differences of the float64 reference.
 * Also checks that the part flowing through the solver is material (else the test could not fail on it).
 */
function checkGradients(
  t: import('ava').ExecutionContext,
  head: MetaOptNetSvmHead | MetaOptNetRrHead,
  ep: Episode64,
  dual: (k: Float64Array) => Float64Array,
  scale: number,
) {
  const r = mulberry32(99);
  const w = Float64Array.from({ length: ep.nq * ep.way }, () => gaussian(r));
  const wT = tf.tensor2d(Float32Array.from(w), [ep.nq, ep.way]);
  const f = (s: tf.Tensor, q: tf.Tensor) =>
    tf.sum(tf.mul(head.logits({ support: s as tf.Tensor2D, query: q as tf.Tensor2D, supportLabels: ep.labels, way: ep.way }, 'train'), wT));
  const base = toTf(ep);
  const [gs, gq] = tf.grads(f)([base.support, base.query]);
  const gSupport = gs.dataSync();
  const gQuery = gq.dataSync();
  const objective = (s: Float64Array, q: Float64Array) => referenceLogits(ep, s, q, dual, scale).reduce((acc, v, k) => acc + v * w[k], 0);
  // Gradient with α held constant (what a head without the implicit gradient would give).
  const alpha0 = dual(matMulT(ep.support, ep.n, ep.support, ep.n, ep.d));
  const objectiveFixedAlpha = (s: Float64Array) => referenceLogits(ep, s, ep.query, () => alpha0, scale).reduce((acc, v, k) => acc + v * w[k], 0);
  const h = 1e-5;
  let maxErr = 0;
  let maxGrad = 0;
  let maxSolverPart = 0;
  for (let p = 0; p < ep.n * ep.d; p++) {
    const sp = ep.support.slice();
    sp[p] += h;
    const sm = ep.support.slice();
    sm[p] -= h;
    const fd = (objective(sp, ep.query) - objective(sm, ep.query)) / (2 * h);
    const fdFixed = (objectiveFixedAlpha(sp) - objectiveFixedAlpha(sm)) / (2 * h);
    maxErr = Math.max(maxErr, Math.abs(fd - gSupport[p]));
    maxGrad = Math.max(maxGrad, Math.abs(fd));
    maxSolverPart = Math.max(maxSolverPart, Math.abs(fd - fdFixed));
  }
  for (let p = 0; p < ep.nq * ep.d; p++) {
    const qp = ep.query.slice();
    qp[p] += h;
    const qm = ep.query.slice();
    qm[p] -= h;
    const fd = (objective(ep.support, qp) - objective(ep.support, qm)) / (2 * h);
    maxErr = Math.max(maxErr, Math.abs(fd - gQuery[p]));
    maxGrad = Math.max(maxGrad, Math.abs(fd));
  }
  const tol = 2e-3 * maxGrad; // float32 forward/backward in tf against float64 differences
  t.true(maxErr < tol, `max |fd − tf| = ${maxErr} (max grad ${maxGrad})`);
  t.true(maxSolverPart > 20 * tol, `gradient through the solver is material (${maxSolverPart} vs tolerance ${tol})`);
  tf.dispose([wT, base.support, base.query, gs, gq]);
}

test('SVM head: gradients w.r.t. support and query embeddings match finite differences', (t) => {
  const head = new MetaOptNetSvmHead(metaOptNetSvmConfig.parse({ scale: 1.5 }));
  for (const seed of [1, 2]) {
    const ep = episode(seed, 4, 3, 5, 6);
    const dual = (k: Float64Array) => solveCrammerSinger(k, ep.labels, ep.way, { C: 0.1 }).alpha;
    checkGradients(t, head, ep, dual, 1.5);
    const stats = head.lastStats!;
    t.true(stats.freeVariables > ep.n && stats.freeVariables < ep.n * ep.way, 'mix of bound and free variables');
  }
});

test('RR head: gradients w.r.t. support and query embeddings match finite differences', (t) => {
  const head = new MetaOptNetRrHead(metaOptNetRrConfig.parse({ lambda: 3 }));
  const ep = episode(3, 3, 3, 4, 5);
  const dual = (k: Float64Array) => {
    // (K + λI)⁻¹Y by Gaussian elimination (independent of the head's Cholesky code).
    const n = ep.n;
    const a = k.map((v, i) => v + (Math.floor(i / n) === i % n ? 3 : 0));
    const y = new Float64Array(n * ep.way);
    ep.labels.forEach((l, i) => (y[i * ep.way + l] = 1));
    for (let c = 0; c < n; c++) {
      for (let r = c + 1; r < n; r++) {
        const f = a[r * n + c] / a[c * n + c];
        for (let j = c; j < n; j++) a[r * n + j] -= f * a[c * n + j];
        for (let m = 0; m < ep.way; m++) y[r * ep.way + m] -= f * y[c * ep.way + m];
      }
    }
    for (let c = n - 1; c >= 0; c--) {
      for (let m = 0; m < ep.way; m++) {
        let s = y[c * ep.way + m];
        for (let j = c + 1; j < n; j++) s -= a[c * n + j] * y[j * ep.way + m];
        y[c * ep.way + m] = s / a[c * n + c];
      }
    }
    return y;
  };
  checkGradients(t, head, ep, dual, 1);
});

test('RR head: logits equal scale · Q (XᵀX + λI)⁻¹ XᵀY computed in the primal (d×d) form', (t) => {
  const lambda = 50;
  const ep = episode(4, 5, 2, 7, 3); // d = 3 < n = 10: the primal system is the small one
  const head = new MetaOptNetRrHead(metaOptNetRrConfig.parse({ lambda, scale: 2 }));
  const logits = head.logits(toTf(ep), 'eval').dataSync();
  // W = (XᵀX + λI)⁻¹ XᵀY by Cramer's rule on the 3×3 system.
  const { d, n, way } = ep;
  const a = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++) {
      let s = i === j ? lambda : 0;
      for (let k = 0; k < n; k++) s += ep.support[k * d + i] * ep.support[k * d + j];
      a[i * d + j] = s;
    }
  const det3 = (m: Float64Array) => m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6]);
  const det = det3(a);
  const wMat = new Float64Array(d * way);
  for (let m = 0; m < way; m++) {
    const rhs = new Float64Array(d);
    for (let k = 0; k < n; k++) if (ep.labels[k] === m) for (let i = 0; i < d; i++) rhs[i] += ep.support[k * d + i];
    for (let col = 0; col < d; col++) {
      const b = a.slice();
      for (let i = 0; i < d; i++) b[i * d + col] = rhs[i];
      wMat[col * way + m] = det3(b) / det;
    }
  }
  let maxErr = 0;
  let maxAbs = 0;
  for (let q = 0; q < ep.nq; q++)
    for (let m = 0; m < way; m++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += ep.query[q * d + i] * wMat[i * way + m];
      maxErr = Math.max(maxErr, Math.abs(2 * s - logits[q * way + m]));
      maxAbs = Math.max(maxAbs, Math.abs(s));
    }
  t.true(maxAbs > 1e-2);
  t.true(maxErr < 1e-5 * Math.max(1, maxAbs), `max error ${maxErr}`);
});

test('SVM head: logits are scale · Σ_i α_i^m ⟨x_i, q⟩; the scale is a learnable variable with its own gradient', (t) => {
  const ep = episode(5, 5, 2, 6, 8);
  const head = new MetaOptNetSvmHead(metaOptNetSvmConfig.parse({ scale: 1 }));
  t.is(head.variables().length, 1);
  t.regex(head.variables()[0].name, /^head\/metaoptnet-svm\/scale#/);
  const eps = toTf(ep);
  const logits = head.logits(eps, 'eval').dataSync();
  const expected = referenceLogits(ep, ep.support, ep.query, (k) => solveCrammerSinger(k, ep.labels, ep.way, { C: 0.1 }).alpha, 1);
  expected.forEach((v, k) => t.true(Math.abs(v - logits[k]) < 1e-4 * (1 + Math.abs(v)), `${k}: ${v} vs ${logits[k]}`));
  // d(CE)/d(scale) = Σ (softmax − onehot) ⊙ logits / scale / nQuery
  const queryLabels = Int32Array.from({ length: ep.nq }, (_, i) => i % ep.way);
  const { grads } = tf.variableGrads(() => crossEntropy(head.logits(eps, 'train'), queryLabels), head.variables());
  const gScale = grads[head.variables()[0].name].dataSync()[0];
  const probs = tf.softmax(tf.tensor2d(Float32Array.from(logits), [ep.nq, ep.way])).dataSync();
  let expectedGrad = 0;
  for (let q = 0; q < ep.nq; q++)
    for (let m = 0; m < ep.way; m++) expectedGrad += (probs[q * ep.way + m] - (queryLabels[q] === m ? 1 : 0)) * logits[q * ep.way + m];
  expectedGrad /= ep.nq;
  t.true(Math.abs(gScale - expectedGrad) < 1e-4 * (1 + Math.abs(expectedGrad)), `${gScale} vs ${expectedGrad}`);
  const fixed = new MetaOptNetSvmHead(metaOptNetSvmConfig.parse({ learnableScale: false, scale: 3 }));
  t.is(fixed.variables().length, 0);
  const l3 = fixed.logits(eps, 'eval').dataSync();
  l3.forEach((v, k) => t.true(Math.abs(v - 3 * logits[k]) < 1e-4 * (1 + Math.abs(v))));
});

test('heads: NaN/Inf embeddings raise NumericalError; bad labels raise UserError; no tensors leak', (t) => {
  const ep = episode(6, 3, 2, 4, 5);
  for (const head of [new MetaOptNetSvmHead(metaOptNetSvmConfig.parse({})), new MetaOptNetRrHead(metaOptNetRrConfig.parse({}))]) {
    const nanSupport = ep.support.slice();
    nanSupport[2] = Number.NaN;
    t.throws(() => head.logits(toTf(ep, nanSupport), 'train'), { instanceOf: NumericalError, message: /NaN\/Inf/ });
    const infQuery = ep.query.slice();
    infQuery[1] = Number.POSITIVE_INFINITY;
    t.throws(() => head.logits(toTf(ep, ep.support, infQuery), 'train'), { instanceOf: NumericalError, message: /NaN\/Inf/ });
    const bad = toTf(ep);
    t.throws(() => head.logits({ ...bad, supportLabels: Int32Array.from(ep.labels, (l) => l + 1) }, 'eval'), { instanceOf: UserError, message: /outside/ });
    t.throws(() => head.logits({ ...bad, supportLabels: ep.labels.slice(1) }, 'eval'), { instanceOf: UserError });
    tf.dispose([bad.support, bad.query]);
    // Forward + backward inside a tape leave nothing behind but the returned gradients.
    const s = tf.tensor2d(Float32Array.from(ep.support), [ep.n, ep.d]);
    const q = tf.tensor2d(Float32Array.from(ep.query), [ep.nq, ep.d]);
    head.logits({ support: s, query: q, supportLabels: ep.labels, way: ep.way }, 'eval').dispose(); // warm-up (lazy kernels)
    const before = tf.memory().numTensors;
    const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(head.logits({ support: a as tf.Tensor2D, query: b as tf.Tensor2D, supportLabels: ep.labels, way: ep.way }, 'train')),
    )([s, q]);
    t.is(tf.memory().numTensors, before + 2);
    tf.dispose([...grads, s, q]);
  }
});

test('heads are registered, validate their options and expose label smoothing', (t) => {
  const svm = getLearner('metaoptnet-svm');
  const rr = getLearner('metaoptnet-rr');
  t.is(svm.id, 'metaoptnet-svm');
  t.is(rr.id, 'metaoptnet-rr');
  t.deepEqual(svm.configSchema.parse({}), { C: 0.1, maxIter: 5000, tolerance: 1e-9, scale: 1, learnableScale: true, labelSmoothing: 0 });
  t.deepEqual(rr.configSchema.parse({}), { lambda: 50, scale: 1, learnableScale: true, labelSmoothing: 0 });
  t.is((svm.create(svm.configSchema.parse({ labelSmoothing: 0.1 })) as MetaOptNetSvmHead).labelSmoothing, 0.1);
  t.false(svm.configSchema.safeParse({ C: -1 }).success);
  t.false(svm.configSchema.safeParse({ c: 0.1 }).success, 'unknown keys are rejected');
  t.false(rr.configSchema.safeParse({ lambda: 0 }).success);
  const method = buildMethod({ name: 'metaoptnet-rr', backbone: 'conv4', imageSize: 32, way: 5, seed: 0, headConfig: { lambda: 10, labelSmoothing: 0.1 } });
  t.is(method.head.id, 'metaoptnet-rr');
  t.is(method.head.labelSmoothing, 0.1);
  t.throws(() => buildMethod({ name: 'metaoptnet-svm', backbone: 'conv4', imageSize: 32, way: 5, seed: 0, headConfig: { C: 'big' } }), {
    instanceOf: UserError,
    message: /metaoptnet-svm/,
  });
});
