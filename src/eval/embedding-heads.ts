/**
 * Few-shot heads fitted per episode on frozen embeddings: the "pre-train, then classify each test episode" baselines
 * (Chen et al. 2019's Baseline / Baseline++, Tian et al. 2020's RFS) that evaluate a classification checkpoint on the
 * same episode files as the episodic methods. Nothing here is trained across episodes: each head sees one episode's
 * support embeddings and scores its queries. Plain arrays (Float64 arithmetic), so results do not depend on a backend's
 * summation order and the heads run unchanged in a browser.
 *
 * - `protonet`: −‖q − c_k‖², c_k the mean of class k's support embeddings (Snell et al.; Chen et al.'s Baseline with a
 *   nearest-mean classifier).
 * - `cosine`: cos(q, c_k), c_k the mean of class k's L2-normalised support embeddings (Baseline++'s cosine classifier
 *   without its learned scale, which changes no prediction).
 * - `logreg`: multinomial logistic regression on L2-normalised embeddings with an unpenalised bias and an L2 penalty of
 *   1/(2C)·‖W‖², C = 1 (RFS: scikit-learn's LogisticRegression defaults), fitted to a gradient norm below 1e-6.
 */

export const EMBEDDING_HEADS = ['protonet', 'cosine', 'logreg'] as const;
export type EmbeddingHeadId = (typeof EMBEDDING_HEADS)[number];

export interface EmbeddedTask {
  /** Support embeddings, row-major [nSupport × dim]. */
  support: ArrayLike<number>;
  /** Class of each support row, in [0, way). */
  supportLabels: Int32Array;
  /** Query embeddings, row-major [nQuery × dim]. */
  query: ArrayLike<number>;
  dim: number;
  way: number;
}

/** Logits of every query, row-major [nQuery × way]; higher is more likely. */
export function scoreQueries(head: EmbeddingHeadId, task: EmbeddedTask): Float64Array {
  checkTask(task);
  switch (head) {
    case 'protonet':
      return negSquaredDistances(task.query, classMeans(task.support, task.supportLabels, task.dim, task.way, false), task.dim);
    case 'cosine':
      return cosineSimilarities(task.query, classMeans(task.support, task.supportLabels, task.dim, task.way, true), task.dim);
    case 'logreg':
      return logisticRegression(task).logits;
  }
}

function checkTask(t: EmbeddedTask): void {
  const nSupport = t.supportLabels.length;
  if (t.support.length !== nSupport * t.dim) throw new RangeError(`support: ${t.support.length} values for ${nSupport} rows of ${t.dim}`);
  if (t.query.length % t.dim !== 0) throw new RangeError(`query: ${t.query.length} values are not rows of ${t.dim}`);
  const seen = new Uint8Array(t.way);
  for (const y of t.supportLabels) {
    if (!(y >= 0 && y < t.way)) throw new RangeError(`support label ${y} is outside [0, ${t.way})`);
    seen[y] = 1;
  }
  const missing = seen.indexOf(0);
  if (missing >= 0) throw new RangeError(`class ${missing} has no support example`);
}

/** Row `r` of a row-major matrix scaled to unit L2 norm (a zero row stays zero). */
function unitRow(m: ArrayLike<number>, r: number, dim: number): Float64Array {
  const out = new Float64Array(dim);
  let ss = 0;
  for (let k = 0; k < dim; k++) ss += m[r * dim + k] ** 2;
  const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
  for (let k = 0; k < dim; k++) out[k] = m[r * dim + k] * inv;
  return out;
}

function classMeans(support: ArrayLike<number>, labels: Int32Array, dim: number, way: number, normalise: boolean): Float64Array {
  const means = new Float64Array(way * dim);
  const counts = new Float64Array(way);
  for (let r = 0; r < labels.length; r++) {
    const row = normalise ? unitRow(support, r, dim) : null;
    for (let k = 0; k < dim; k++) means[labels[r] * dim + k] += row ? row[k] : support[r * dim + k];
    counts[labels[r]]++;
  }
  for (let c = 0; c < way; c++) for (let k = 0; k < dim; k++) means[c * dim + k] /= counts[c];
  return means;
}

function negSquaredDistances(query: ArrayLike<number>, centres: Float64Array, dim: number): Float64Array {
  const nq = query.length / dim;
  const way = centres.length / dim;
  const out = new Float64Array(nq * way);
  for (let q = 0; q < nq; q++) {
    for (let c = 0; c < way; c++) {
      let d = 0;
      for (let k = 0; k < dim; k++) d += (query[q * dim + k] - centres[c * dim + k]) ** 2;
      out[q * way + c] = -d;
    }
  }
  return out;
}

function cosineSimilarities(query: ArrayLike<number>, centres: Float64Array, dim: number): Float64Array {
  const nq = query.length / dim;
  const way = centres.length / dim;
  const unitCentres = Array.from({ length: way }, (_, c) => unitRow(centres, c, dim));
  const out = new Float64Array(nq * way);
  for (let q = 0; q < nq; q++) {
    const uq = unitRow(query, q, dim);
    for (let c = 0; c < way; c++) {
      let s = 0;
      for (let k = 0; k < dim; k++) s += uq[k] * unitCentres[c][k];
      out[q * way + c] = s;
    }
  }
  return out;
}

export interface LogisticFit {
  /** Query logits [nQuery × way]. */
  logits: Float64Array;
  /** Weights [way × dim] on the L2-normalised embeddings, and the bias [way]. */
  weights: Float64Array;
  bias: Float64Array;
  iterations: number;
  /** ‖∇‖ (weights and bias together) of the objective at the returned solution. */
  gradientNorm: number;
}

/** C of scikit-learn's LogisticRegression (its default, RFS's choice): the penalty is ‖W‖² / (2C) beside the summed loss. */
export const LOGREG_C = 1;
const LOGREG_TOLERANCE = 1e-6;
const LOGREG_MAX_ITERATIONS = 5000;

/**
 * Multinomial logistic regression, minimising (1/n)·Σᵢ CE(W·x̂ᵢ + b, yᵢ) + λ/2·‖W‖², λ = 1/(C·n) (scikit-learn's objective
 * divided by n), by Nesterov-accelerated gradient descent. With an L2 penalty the optimal W lies in the span of the
 * support rows, W = Aᵀ X̂, so the descent runs on the n × way coefficients A through the n × n Gram matrix: the same
 * iterates as descent on W, at a cost that does not grow with the embedding size. Step 1/L with
 * L = ½·trace(X̂X̂ᵀ + 11ᵀ)/n + λ, a bound on the objective's curvature (the softmax Hessian is at most ½).
 */
export function logisticRegression(task: EmbeddedTask): LogisticFit {
  checkTask(task);
  const { dim, way, supportLabels: y } = task;
  const n = y.length;
  const xs = Array.from({ length: n }, (_, r) => unitRow(task.support, r, dim));
  const gram = gramMatrix(xs, dim);
  const lambda = 1 / (LOGREG_C * n);
  let trace = 0;
  for (let i = 0; i < n; i++) trace += gram[i * n + i] + 1;
  const step = 1 / ((0.5 * trace) / n + lambda);

  // Coefficients A [n × way] and bias b [way]; (prevA, prevB) for the momentum; (a, bias) the look-ahead point.
  let A = new Float64Array(n * way);
  let b = new Float64Array(way);
  let prevA = A.slice();
  let prevB = b.slice();
  const logits = new Float64Array(n * way);
  const resid = new Float64Array(n * way); // (P − Y)/n + λA: the W-gradient is X̂ᵀ·resid
  const gradB = new Float64Array(way);

  /** Gradient at (a, bias) into resid / gradB; returns ‖∇‖ = √(tr(residᵀ K resid) + ‖gradB‖²), or NaN unless `withNorm`. */
  const gradient = (a: Float64Array, bias: Float64Array, withNorm = true): number => {
    for (let i = 0; i < n; i++)
      for (let c = 0; c < way; c++) {
        let s = bias[c];
        for (let j = 0; j < n; j++) s += gram[i * n + j] * a[j * way + c];
        logits[i * way + c] = s;
      }
    gradB.fill(0);
    for (let i = 0; i < n; i++) {
      let max = -Infinity;
      for (let c = 0; c < way; c++) max = Math.max(max, logits[i * way + c]);
      let sum = 0;
      for (let c = 0; c < way; c++) sum += Math.exp(logits[i * way + c] - max);
      for (let c = 0; c < way; c++) {
        const g = (Math.exp(logits[i * way + c] - max) / sum - (y[i] === c ? 1 : 0)) / n;
        resid[i * way + c] = g + lambda * a[i * way + c];
        gradB[c] += g;
      }
    }
    if (!withNorm) return Number.NaN;
    let norm2 = 0;
    for (let c = 0; c < way; c++) {
      norm2 += gradB[c] ** 2;
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += gram[i * n + j] * resid[j * way + c];
        norm2 += resid[i * way + c] * s;
      }
    }
    return Math.sqrt(Math.max(norm2, 0));
  };

  // One gradient per iteration, at the look-ahead point; its norm (as costly as the gradient) every
  // NORM_EVERY iterations. Converged: the look-ahead point itself is returned, its gradient being below tolerance.
  const NORM_EVERY = 10;
  let iterations = 0;
  let gradientNorm = gradient(A, b);
  while (gradientNorm > LOGREG_TOLERANCE && iterations < LOGREG_MAX_ITERATIONS) {
    iterations++;
    const momentum = (iterations - 1) / (iterations + 2);
    const lookA = A.map((v, k) => v + momentum * (v - prevA[k]));
    const lookB = b.map((v, c) => v + momentum * (v - prevB[c]));
    const norm = gradient(lookA, lookB, iterations % NORM_EVERY === 0);
    if (norm <= LOGREG_TOLERANCE) {
      A = lookA;
      b = lookB;
      gradientNorm = norm;
      break;
    }
    prevA = A;
    prevB = b;
    A = lookA.map((v, k) => v - step * resid[k]);
    b = lookB.map((v, c) => v - step * gradB[c]);
  }
  if (!(gradientNorm <= LOGREG_TOLERANCE)) gradientNorm = gradient(A, b);

  const weights = primalWeights(A, xs, way, dim);
  return { logits: unitQueryLogits(task.query, weights, b, way, dim), weights, bias: b, iterations, gradientNorm };
}

/** The n × n Gram matrix of the rows `xs` (each `dim` long): entry (i, j) is xs[i]·xs[j], filled from the lower triangle. */
function gramMatrix(xs: Float64Array[], dim: number): Float64Array {
  const n = xs.length;
  const gram = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = 0; k < dim; k++) s += xs[i][k] * xs[j][k];
      gram[i * n + j] = s;
      gram[j * n + i] = s;
    }
  return gram;
}

/** W [way × dim] = Aᵀ X̂ from the coefficients A [n × way] over the support rows `xs`. */
function primalWeights(A: Float64Array, xs: Float64Array[], way: number, dim: number): Float64Array {
  const n = xs.length;
  const weights = new Float64Array(way * dim);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < way; c++) {
      const a = A[i * way + c];
      if (a !== 0) for (let k = 0; k < dim; k++) weights[c * dim + k] += a * xs[i][k];
    }
  return weights;
}

/** Logits [nQuery × way] = W·x̂ + b of every query row, each scaled to unit length first (`unitRow`). */
function unitQueryLogits(query: ArrayLike<number>, weights: Float64Array, b: Float64Array, way: number, dim: number): Float64Array {
  const nq = query.length / dim;
  const out = new Float64Array(nq * way);
  for (let q = 0; q < nq; q++) {
    const xq = unitRow(query, q, dim);
    for (let c = 0; c < way; c++) {
      let s = b[c];
      for (let k = 0; k < dim; k++) s += weights[c * dim + k] * xq[k];
      out[q * way + c] = s;
    }
  }
  return out;
}

/**
 * SLA+AG over a head's joint logits [nQuery·M × way·M] (rows image-major: row q·M + j is the j-th transformed copy of
 * query q; columns class-major: column i·M + j is class i under transformation j) → [nQuery × way]:
 * s[q, i] = (1/M)·Σⱼ logit[q·M + j, i·M + j], the plain-array form of methods/aggregate.ts's aggregateJointLogits.
 */
export function aggregateJoint(logits: ArrayLike<number>, nQuery: number, way: number, m: number): Float64Array {
  if (logits.length !== nQuery * m * way * m) throw new RangeError(`${logits.length} joint logits are not [${nQuery}·${m} × ${way}·${m}]`);
  const out = new Float64Array(nQuery * way);
  const cols = way * m;
  for (let q = 0; q < nQuery; q++)
    for (let i = 0; i < way; i++) {
      let s = 0;
      for (let j = 0; j < m; j++) s += logits[(q * m + j) * cols + i * m + j];
      out[q * way + i] = s / m;
    }
  return out;
}
