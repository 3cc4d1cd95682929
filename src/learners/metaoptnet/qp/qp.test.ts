import test from 'ava';
import { solveCrammerSinger } from './crammer-singer.ts';
import { solveRidge } from './ridge.ts';
import { cholesky, choleskySolveInPlace, inverseFromCholesky, gram } from './dense.ts';
import { NumericalError } from '../../../util/errors.ts';
import { mulberry32, gaussian } from '../../../util/prng.ts';

// ---------- seeded problem generators (float64) ----------
/**
 * SLA-like episode: `way` classes × `shot` images × `m` transformations, joint label c·m + j. Features are
 * rectified (all positive, strongly correlated, like CNN embeddings), with `sep` class separation.
 */
function slaProblem(seed: number, way: number, shot: number, m: number, d: number, opts: { shift?: number; scale?: number; sep?: number } = {}) {
  const { shift = 1, scale = 1, sep = 0.3 } = opts;
  const r = mulberry32(seed);
  const n = way * shot * m;
  const labels = new Int32Array(n);
  const classMean = Array.from({ length: way }, () => Float64Array.from({ length: d }, () => gaussian(r)));
  const transMean = Array.from({ length: m }, () => Float64Array.from({ length: d }, () => gaussian(r)));
  const x = new Float64Array(n * d);
  let i = 0;
  for (let c = 0; c < way; c++) {
    for (let s = 0; s < shot; s++) {
      const image = Float64Array.from({ length: d }, () => gaussian(r));
      for (let j = 0; j < m; j++, i++) {
        labels[i] = c * m + j;
        for (let k = 0; k < d; k++) x[i * d + k] = scale * Math.max(0, shift + sep * (classMean[c][k] + 0.5 * transMean[j][k]) + image[k] + 0.3 * gaussian(r));
      }
    }
  }
  return { x, n, d, way: way * m, labels, kernel: gram(x, n, d) };
}

/**
 * Independent KKT check of a Crammer–Singer dual solution, from K, labels and α alone (the solver's own
 * bookkeeping is not used). Stationarity ∇ + θ_i + μ = 0 holds by construction with θ_i = −max_m ∇_im and
 * μ = max_m ∇_im − ∇ ≥ 0; what remains are primal feasibility and complementary slackness μ·(c − α) = 0.
 * Also reports the stationarity residual on the clearly free variables (α < c − 1e-6·C).
 */
function kkt(kernel: Float64Array, labels: Int32Array, way: number, C: number, alpha: Float64Array) {
  const n = labels.length;
  let rowAbs = 0;
  const grad = new Float64Array(n * way);
  for (let i = 0; i < n; i++) {
    let ra = 0;
    for (let j = 0; j < n; j++) {
      const qij = kernel[i * n + j] + (i === j ? 1 : 0);
      ra += Math.abs(qij);
      for (let m = 0; m < way; m++) grad[i * way + m] += qij * alpha[j * way + m];
    }
    grad[i * way + labels[i]] -= 1;
    rowAbs = Math.max(rowAbs, ra);
  }
  const gradScale = 1 + C * rowAbs;
  let infeasible = 0;
  let complementarity = 0;
  let stationarity = 0;
  let objective = 0;
  for (let i = 0; i < n; i++) {
    let sum = 0;
    let gMax = -Infinity;
    for (let m = 0; m < way; m++) gMax = Math.max(gMax, grad[i * way + m]);
    for (let m = 0; m < way; m++) {
      const a = alpha[i * way + m];
      const c = labels[i] === m ? C : 0;
      sum += a;
      infeasible = Math.max(infeasible, a - c);
      const mu = gMax - grad[i * way + m];
      complementarity = Math.max(complementarity, mu * Math.max(c - a, 0));
      if (a < c - 1e-6 * C) stationarity = Math.max(stationarity, mu);
      objective += 0.5 * a * (grad[i * way + m] + (labels[i] === m ? 1 : 0)) - (labels[i] === m ? a : 0);
    }
    infeasible = Math.max(infeasible, Math.abs(sum));
  }
  return { infeasible: infeasible / C, complementarity: complementarity / (C * gradScale), stationarity: stationarity / gradScale, objective };
}

const TOL = 1e-9;

// ---------- dense linear algebra ----------
test('Cholesky solve and inverse reproduce the identity on an SPD matrix', (t) => {
  const r = mulberry32(1);
  const n = 7;
  const x = Float64Array.from({ length: n * 3 }, () => gaussian(r));
  const a = gram(x, n, 3);
  for (let i = 0; i < n; i++) a[i * n + i] += 0.5;
  const l = cholesky(a, n, 'test');
  const inv = inverseFromCholesky(l, n);
  const b = Float64Array.from({ length: n * 2 }, () => gaussian(r));
  const sol = b.slice();
  choleskySolveInPlace(l, n, sol, 2);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += a[i * n + k] * inv[k * n + j];
      t.true(Math.abs(s - (i === j ? 1 : 0)) < 1e-10, `A·A⁻¹ at ${i},${j} = ${s}`);
    }
    for (let c = 0; c < 2; c++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += a[i * n + k] * sol[k * 2 + c];
      t.true(Math.abs(s - b[i * 2 + c]) < 1e-10);
    }
  }
  const indefinite = Float64Array.from([1, 2, 2, 1]);
  t.throws(() => cholesky(indefinite, 2, 'indefinite test matrix'), { instanceOf: NumericalError, message: /indefinite test matrix.*not positive definite/ });
});

// ---------- Crammer–Singer solver: optimality ----------
test('SVM dual: KKT conditions hold on random problems (various sizes, C and conditioning)', (t) => {
  const cases = [
    { seed: 1, way: 5, shot: 1, m: 1, d: 32, C: 0.1 },
    { seed: 2, way: 5, shot: 5, m: 1, d: 64, C: 0.1, shift: 0, sep: 1 },
    { seed: 3, way: 5, shot: 15, m: 1, d: 640, C: 0.1 }, // MetaOptNet training size: 375 variables
    { seed: 4, way: 3, shot: 4, m: 2, d: 8, C: 1, scale: 20 }, // low rank, large scale: ill-conditioned
    { seed: 5, way: 10, shot: 2, m: 1, d: 50, C: 10 },
    { seed: 6, way: 4, shot: 3, m: 1, d: 20, C: 0.01, shift: 2, scale: 5 },
  ];
  for (const c of cases) {
    const p = slaProblem(c.seed, c.way, c.shot, c.m, c.d, c);
    const sol = solveCrammerSinger(p.kernel, p.labels, p.way, { C: c.C });
    const r = kkt(p.kernel, p.labels, p.way, c.C, sol.alpha);
    const tag = `${JSON.stringify(c)}: ${JSON.stringify(r)}`;
    t.true(r.infeasible <= TOL, tag);
    t.true(r.complementarity <= TOL, tag);
    t.true(r.stationarity <= 1e-6, tag);
    t.true(Math.abs(r.objective - sol.stats.objective) <= 1e-9 * (1 + Math.abs(r.objective)), tag);
    // Nontrivial solutions: some support vectors at the bound, some strictly inside.
    t.true(sol.stats.freeVariables > 0 && sol.stats.freeVariables < p.n * p.way, tag);
  }
});

test('SVM dual: KKT conditions hold at the SLA sizes (2,000 and 6,000 variables)', (t) => {
  for (const [seed, shot, opts] of [
    [11, 5, { shift: 1, sep: 0.3 }], // 5-way 5-shot × 4 rotations: 100 support × 20 classes
    [12, 15, { shift: 2, scale: 3, sep: 0.1 }], // 15-shot training with SLA: 300 × 20, highly correlated embeddings
  ] as const) {
    const p = slaProblem(seed, 5, shot, 4, 640, opts);
    t.is(p.n * p.way, shot === 5 ? 2000 : 6000);
    const sol = solveCrammerSinger(p.kernel, p.labels, p.way, { C: 0.1 });
    const r = kkt(p.kernel, p.labels, p.way, 0.1, sol.alpha);
    const tag = `${p.n * p.way} variables: ${JSON.stringify(r)} ${JSON.stringify(sol.stats)}`;
    t.true(r.infeasible <= TOL && r.complementarity <= TOL && r.stationarity <= 1e-6, tag);
    t.log(
      `${p.n * p.way} variables: ${sol.stats.sweeps} sweeps, ${sol.stats.activeSetIterations} active-set solves, ${(sol.stats.bcdMs + sol.stats.activeSetMs).toFixed(0)} ms`,
    );
  }
});

test('SVM dual: badly conditioned problems are solved through the homotopy in the diagonal', (t) => {
  // Low-rank embeddings with a large common component: coordinate descent crawls and the direct active-set
  // attempt does not settle, so the solver follows the path from a large diagonal down to 1.
  for (const seed of [52, 53]) {
    const p = slaProblem(seed, 6, 3, 2, 4, { shift: 2, scale: 30, sep: 0.1 });
    const sol = solveCrammerSinger(p.kernel, p.labels, p.way, { C: 0.1 });
    const r = kkt(p.kernel, p.labels, p.way, 0.1, sol.alpha);
    t.true(sol.stats.stages > 1, `homotopy used (${sol.stats.stages} stages)`);
    t.true(r.infeasible <= TOL && r.complementarity <= TOL && r.stationarity <= 1e-6, JSON.stringify(r));
  }
});

test('SVM dual: the optimum matches an independent projected-gradient solver', (t) => {
  // FISTA with projections computed by bisection (not the solver's sort-based projection), run to convergence.
  const p = slaProblem(21, 4, 3, 1, 10, { shift: 0, sep: 0.8 });
  const C = 0.1;
  const { n, way, kernel, labels } = p;
  const q = kernel.map((v, k) => v + (Math.floor(k / n) === k % n ? 1 : 0));
  let lipschitz = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.abs(q[i * n + j]);
    lipschitz = Math.max(lipschitz, s);
  }
  const project = (v: Float64Array, i: number): void => {
    // a_m = min(c_m, v_m − β) with Σ a = 0: bisection on β.
    const c = (m: number) => (labels[i] === m ? C : 0);
    const sumAt = (beta: number) => {
      let s = 0;
      for (let m = 0; m < way; m++) s += Math.min(c(m), v[i * way + m] - beta);
      return s;
    };
    let lo = -10;
    let hi = 10;
    for (let it = 0; it < 200; it++) {
      const mid = 0.5 * (lo + hi);
      if (sumAt(mid) > 0) lo = mid;
      else hi = mid;
    }
    const beta = 0.5 * (lo + hi);
    for (let m = 0; m < way; m++) v[i * way + m] = Math.min(c(m), v[i * way + m] - beta);
  };
  let x = new Float64Array(n * way);
  let y = x.slice();
  let tk = 1;
  for (let it = 0; it < 20000; it++) {
    const g = new Float64Array(n * way);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) for (let m = 0; m < way; m++) g[i * way + m] += q[i * n + j] * y[j * way + m];
      g[i * way + labels[i]] -= 1;
    }
    const next = y.map((v, k) => v - g[k] / lipschitz);
    for (let i = 0; i < n; i++) project(next, i);
    const tNext = (1 + Math.sqrt(1 + 4 * tk * tk)) / 2;
    y = next.map((v, k) => v + ((tk - 1) / tNext) * (v - x[k]));
    x = next;
    tk = tNext;
  }
  const reference = kkt(kernel, labels, way, C, x);
  const sol = solveCrammerSinger(kernel, labels, way, { C });
  t.true(Math.abs(sol.stats.objective - reference.objective) < 1e-9, `${sol.stats.objective} vs ${reference.objective}`);
  let maxDiff = 0;
  for (let k = 0; k < x.length; k++) maxDiff = Math.max(maxDiff, Math.abs(sol.alpha[k] - x[k]));
  t.true(maxDiff < 1e-6, `max |α − α_ref| = ${maxDiff}`);
});

test('SVM dual: solution is deterministic and satisfies the constraint structure exactly', (t) => {
  const p = slaProblem(31, 5, 2, 1, 40);
  const a = solveCrammerSinger(p.kernel, p.labels, p.way, { C: 0.1 }).alpha;
  const b = solveCrammerSinger(p.kernel, p.labels, p.way, { C: 0.1 }).alpha;
  t.deepEqual(Array.from(a), Array.from(b));
  for (let i = 0; i < p.n; i++) {
    for (let m = 0; m < p.way; m++) {
      if (m === p.labels[i]) t.true(a[i * p.way + m] >= -1e-12 && a[i * p.way + m] <= 0.1 + 1e-12);
      else t.true(a[i * p.way + m] <= 1e-12);
    }
  }
});

/**
 * For each entry of X (n × d): the gradient of L through K = X Xᵀ from the solver's K̄, ∂L/∂X = (K̄ + K̄ᵀ) X,
 * next to the central finite difference of `loss` (step 1e-6).
 */
function gradientThroughGram(x: Float64Array, n: number, d: number, kBar: Float64Array, loss: (xs: Float64Array) => number): { fd: number; g: number }[] {
  const out: { fd: number; g: number }[] = [];
  for (let p = 0; p < n * d; p++) {
    const i = Math.floor(p / d);
    const c = p % d;
    let g = 0;
    for (let j = 0; j < n; j++) g += (kBar[i * n + j] + kBar[j * n + i]) * x[j * d + c];
    const h = 1e-6;
    const xp = x.slice();
    xp[p] += h;
    const xm = x.slice();
    xm[p] -= h;
    out.push({ fd: (loss(xp) - loss(xm)) / (2 * h), g });
  }
  return out;
}

// ---------- Crammer–Singer solver: gradient ----------
test('SVM dual: vector–Jacobian product matches central finite differences (float64)', (t) => {
  for (const seed of [41, 42, 43]) {
    const n = 12;
    const way = 4;
    const d = 6;
    const r = mulberry32(seed);
    const labels = Int32Array.from({ length: n }, (_, i) => i % way);
    const x = Float64Array.from({ length: n * d }, () => 0.7 * gaussian(r));
    const w = Float64Array.from({ length: n * way }, () => gaussian(r));
    const loss = (xs: Float64Array) => {
      const a = solveCrammerSinger(gram(xs, n, d), labels, way, { C: 0.1 }).alpha;
      let s = 0;
      for (let k = 0; k < a.length; k++) s += a[k] * w[k];
      return s;
    };
    const sol = solveCrammerSinger(gram(x, n, d), labels, way, { C: 0.1 });
    // Both bound and free variables must be present, or the test does not exercise the active set.
    t.true(sol.stats.freeVariables > n && sol.stats.freeVariables < n * way);
    let maxErr = 0;
    let maxGrad = 0;
    for (const { fd, g } of gradientThroughGram(x, n, d, sol.vjp(w), loss)) {
      maxErr = Math.max(maxErr, Math.abs(fd - g));
      maxGrad = Math.max(maxGrad, Math.abs(g));
    }
    t.true(maxGrad > 1e-2, `gradient is not trivially zero (${maxGrad})`);
    t.true(maxErr < 1e-7 * Math.max(1, maxGrad), `seed ${seed}: max |fd − vjp| = ${maxErr} (max grad ${maxGrad})`);
  }
});

// ---------- Crammer–Singer solver: failures ----------
test('SVM dual: NaN/Inf kernels, indefinite kernels and non-convergence raise NumericalError', (t) => {
  const p = slaProblem(51, 3, 2, 1, 5);
  const bad = p.kernel.slice();
  bad[3] = Number.NaN;
  t.throws(() => solveCrammerSinger(bad, p.labels, p.way, { C: 0.1 }), { instanceOf: NumericalError, message: /NaN\/Inf/ });
  bad[3] = Number.POSITIVE_INFINITY;
  t.throws(() => solveCrammerSinger(bad, p.labels, p.way, { C: 0.1 }), { instanceOf: NumericalError });
  const negative = p.kernel.map((v, k) => (Math.floor(k / p.n) === k % p.n ? -5 : 0));
  t.throws(() => solveCrammerSinger(negative, p.labels, p.way, { C: 0.1 }), { instanceOf: NumericalError, message: /not positive definite/ });
  // A low-rank, large-scale problem (K + I badly conditioned) on which the direct attempt does not settle.
  const hard = slaProblem(52, 6, 3, 2, 4, { shift: 2, scale: 30, sep: 0.1 });
  const ok = solveCrammerSinger(hard.kernel, hard.labels, hard.way, { C: 0.1 });
  t.true(ok.stats.sweeps > 5, `needs more than a few sweeps (${ok.stats.sweeps})`);
  const err = t.throws(() => solveCrammerSinger(hard.kernel, hard.labels, hard.way, { C: 0.1, maxSweeps: 1, maxActiveSetIterations: 1 }), {
    instanceOf: NumericalError,
  });
  t.regex(err!.message, /did not converge within 1 coordinate-descent sweeps/);
});

// ---------- ridge ----------
test('ridge dual: α = (K + λI)⁻¹Y and its vector–Jacobian product matches finite differences', (t) => {
  const n = 9;
  const way = 3;
  const d = 4;
  const lambda = 2;
  const r = mulberry32(61);
  const labels = Int32Array.from({ length: n }, (_, i) => i % way);
  const x = Float64Array.from({ length: n * d }, () => gaussian(r));
  const sol = solveRidge(gram(x, n, d), labels, way, lambda);
  // (K + λI) α = Y
  const k = gram(x, n, d);
  for (let i = 0; i < n; i++) {
    for (let m = 0; m < way; m++) {
      let s = lambda * sol.alpha[i * way + m];
      for (let j = 0; j < n; j++) s += k[i * n + j] * sol.alpha[j * way + m];
      t.true(Math.abs(s - (labels[i] === m ? 1 : 0)) < 1e-12);
    }
  }
  const w = Float64Array.from({ length: n * way }, () => gaussian(r));
  const loss = (xs: Float64Array) => solveRidge(gram(xs, n, d), labels, way, lambda).alpha.reduce((s, a, i) => s + a * w[i], 0);
  gradientThroughGram(x, n, d, sol.vjp(w), loss).forEach(({ fd, g }, p) => t.true(Math.abs(fd - g) < 1e-7, `${p}: fd ${fd} vs ${g}`));
  const nan = gram(x, n, d);
  nan[0] = Number.NaN;
  t.throws(() => solveRidge(nan, labels, way, lambda), { instanceOf: NumericalError });
  t.throws(
    () =>
      solveRidge(
        new Float64Array(n * n).map((_, q) => (Math.floor(q / n) === q % n ? -10 : 0)),
        labels,
        way,
        lambda,
      ),
    { instanceOf: NumericalError },
  );
});
