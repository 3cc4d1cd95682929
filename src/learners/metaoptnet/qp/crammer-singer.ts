import { NumericalError } from '../../../util/errors.ts';
import { allFinite, cholesky, choleskySolveInPlace, inverseFromCholesky } from './dense.ts';
import { mulberry32 } from '../../../util/prng.ts';

/**
 * Exact solver for MetaOptNet's Crammer–Singer SVM dual (docs/reference.md §4.2), with its implicit-function gradient.
 *
 * Problem (n support samples, N classes, z support-major: z[i·N + m] = α_i^m):
 *   minimise ½ zᵀ(K⊗I_N + r·I)z − Σ_i α_i^{y_i}    s.t.  α_i^m ≤ C·[m = y_i],  Σ_m α_i^m = 0  (each i)
 * with K the support Gram matrix and r = 1 (MetaOptNet's "+1.0·I"). Writing Q = K + r·I, the objective is
 * ½ Σ_m α^mᵀ Q α^m − Σ_i α_i^{y_i}: the N class columns share one n×n matrix and are coupled only through the
 * per-sample equality constraints. Float64 throughout.
 *
 * Algorithm:
 *  1. Block coordinate descent over support samples (the Crammer–Singer decomposition, Keerthi et al. 2008): the
 *     subproblem in α_i (N variables, one equality, upper bounds) is a Euclidean projection solved exactly by a
 *     sort; a block update costs O(nN). It runs until the largest block KKT violation is ≤ `bcdTolerance` (margin
 *     units) or for `warmSweeps` sweeps. It converges globally but slowly when embeddings are highly correlated
 *     (K badly conditioned); its job is to find the active set (which α sit on their bound).
 *  2. Active-set solve: with the bound variables fixed the KKT conditions are linear. Per class m they read
 *     Q_FF α_F^m + θ_F = e_F − Q_FB c_B (F = that class's free samples); the equalities couple the classes only
 *     through the n×n Schur complement S = Σ_m P_m (Q_FF^m)⁻¹ P_mᵀ, positive definite because every sample keeps
 *     a free variable. Two steps of iterative refinement bring the residual to rounding level even when K is
 *     badly conditioned. The active set is corrected by primal–dual active-set iterations (semismooth Newton:
 *     free variables above their bound become bound, bound variables with negative multipliers become free),
 *     at most `maxActiveSetIterations` solves; from a reasonable start they settle in 1–10 solves.
 *  3. If they do not settle (embeddings so correlated or low-rank that coordinate descent crawls), the solver
 *     follows the solution path in the diagonal: from r₀ = r + (Gershgorin bound on ‖K‖), where the problem is well
 *     conditioned, down to r, each stage starting from the previous solution, whose active set is nearly right
 *     (see solveCrammerSinger). A stage whose active-set solves do not settle resumes coordinate descent with a
 *     10× tighter tolerance and twice the sweeps; coordinate descent converges globally, so this eventually
 *     identifies the active set (under strict complementarity). All sweeps count against `maxSweeps`.
 *  Acceptance (else NumericalError): primal infeasibility max(α − c, |Σ_m α_i^m|) ≤ `tolerance`·C and
 *  complementarity max_im μ_im (c_im − α_im) ≤ `tolerance`·C·s, where θ_i = −max_m ∇_im, μ_im = −(∇_im + θ_i) ≥ 0
 *  are the multipliers that make stationarity hold exactly and s = 1 + C·max_i Σ_j |Q_ij| bounds |∇|. With these
 *  multipliers Σ μ(c − α) is exactly the Wolfe-dual gap, so f(α) − f* ≤ nN·`tolerance`·C·s.
 *
 * Gradient: at the solution, (α_F, θ) solve a linear system whose matrix depends on K; differentiating it with
 * the active set held fixed (bound variables are constant: the implicit-function/KKT derivative qpth also
 * computes) gives the vector–Jacobian product Q̄ = −U αᵀ, where U (zero on bound entries) solves the adjoint
 * system [[H, Pᵀ], [P, 0]]·[U; w] = [ᾱ_F; 0]. The factorisations of the final solve are reused: cheap backward.
 */

export interface CrammerSingerOptions {
  /** Upper bound on α_i^{y_i} (MetaOptNet: 0.1). */
  C: number;
  /** Diagonal regulariser r added to K (MetaOptNet: 1.0). Must be > 0: it makes the problem strongly convex. */
  diagonal?: number;
  /** Budget of coordinate-descent sweeps over all support samples (summed over all attempts and homotopy stages). */
  maxSweeps?: number;
  /** Acceptance tolerance (relative): see the module comment. */
  tolerance?: number;
  /** Budget of active-set solves per attempt (after each coordinate-descent phase). */
  maxActiveSetIterations?: number;
  /**
   * Phase-1 stopping threshold: the largest block KKT violation max_m ∇_im − min_{m free} ∇_im (margin units)
   * at which coordinate descent hands over to the active-set phase.
   */
  bcdTolerance?: number;
  /** Coordinate-descent sweeps before the first active-set attempt (doubled after each failed attempt). */
  warmSweeps?: number;
}

export const CRAMMER_SINGER_DEFAULTS = {
  diagonal: 1.0,
  maxSweeps: 5000,
  tolerance: 1e-9,
  maxActiveSetIterations: 10,
  bcdTolerance: 1e-2,
  warmSweeps: 50,
} as const;

export interface CrammerSingerStats {
  sweeps: number;
  /** Linear KKT solves (active-set iterations, summed over attempts). */
  activeSetIterations: number;
  /** Number of free (not-at-bound) variables at the solution. */
  freeVariables: number;
  objective: number;
  /** max(α − c, |Σ_m α_i^m|), relative to C. */
  primalInfeasibility: number;
  /** max_im μ_im (c_im − α_im), relative to C·s (see the module comment). */
  complementarity: number;
  /** Σ μ_im (c_im − α_im): the Wolfe-dual gap, an upper bound on f(α) − f*. */
  dualityGap: number;
  /** Wall time of coordinate descent and of the active-set solves, ms. */
  bcdMs: number;
  activeSetMs: number;
  /** Solves at a fixed diagonal: 1 for a direct solve, more when the homotopy in the diagonal was needed. */
  stages: number;
}

export interface CrammerSingerSolution {
  /** n·N, support-major: alpha[i·N + m] = α_i^m. */
  alpha: Float64Array;
  stats: CrammerSingerStats;
  /**
   * Vector–Jacobian product: given ∂L/∂α (n·N, support-major) returns ∂L/∂K (n·n row-major). The solver uses K's
   * symmetric part ½(K + Kᵀ), so the result is symmetric.
   */
  vjp(alphaBar: Float64Array): Float64Array;
}

/**
 * Euclidean projection of v onto one sample's feasible set {a : a_m ≤ c_m, Σ_m a_m = 0}, c = C·onehot(y):
 * a_m = min(c_m, v_m − β) = v_m − max(t_m, β) with t_m = v_m − c_m and β solving Σ_m max(t_m, β) = Σ_m v_m
 * (found by sorting t). Bound entries are set exactly to c_m, so "at the bound" can be tested with ===.
 */
function projectOntoBlock(v: Float64Array, y: number, C: number, out: Float64Array, scratch: Float64Array): void {
  const N = v.length;
  let vSum = 0;
  for (let m = 0; m < N; m++) {
    vSum += v[m];
    scratch[m] = v[m] - (m === y ? C : 0);
  }
  scratch.sort(); // ascending; walk down from the largest t
  let beta = vSum / N;
  let cum = 0;
  for (let r = 0; r < N - 1; r++) {
    const tTop = scratch[N - 1 - r];
    if (beta >= tTop) break;
    cum += tTop;
    beta = (vSum - cum) / (N - r - 1);
  }
  for (let m = 0; m < N; m++) {
    const c = m === y ? C : 0;
    out[m] = v[m] - c >= beta ? c : v[m] - beta;
  }
}

/** y[yo + j] += a·x[xo + j] for j < len (a module-level function so the hot loop works on locals). */
function axpy(y: Float64Array, yo: number, x: Float64Array, xo: number, a: number, len: number): void {
  for (let j = 0; j < len; j++) y[yo + j] += a * x[xo + j];
}

/** ∇ = Qα − e, support-major, with Q n×n and α support-major n×N. */
function gradientAt(q: Float64Array, labels: Int32Array, N: number, alpha: Float64Array): Float64Array {
  const n = labels.length;
  // Class-major copy of α so that each entry is a contiguous dot product of length n.
  const aT = new Float64Array(N * n);
  for (let i = 0; i < n; i++) for (let m = 0; m < N; m++) aT[m * n + i] = alpha[i * N + m];
  const g = new Float64Array(n * N);
  for (let i = 0; i < n; i++) {
    const qi = i * n;
    for (let m = 0; m < N; m++) {
      const am = m * n;
      let s = 0;
      for (let j = 0; j < n; j++) s += q[qi + j] * aT[am + j];
      g[i * N + m] = s;
    }
    g[i * N + labels[i]] -= 1;
  }
  return g;
}

/** Factorised KKT matrix of one working set: per-class (Q_FF)⁻¹ and the Cholesky factor of the Schur complement. */
interface KktFactor {
  /** Per class: sample indices of its free variables and (Q_FF)⁻¹ (|F|×|F|), or null if none is free. */
  blocks: ({ idx: Int32Array; inv: Float64Array } | null)[];
  schurChol: Float64Array;
}

interface Residuals {
  objective: number;
  primalInfeasibility: number;
  complementarity: number;
  dualityGap: number;
}

/** Limits and warm start of one solve at a fixed diagonal r. */
interface StageSettings {
  C: number;
  diagonal: number;
  tolerance: number;
  maxActiveSetIterations: number;
  bcdTolerance: number;
  /** Sweeps before the first active-set attempt (doubled after each failed attempt). */
  warmSweeps: number;
  /** Active-set attempts (each after a coordinate-descent phase) before giving up on this stage. */
  maxAttempts: number;
  /** Sweeps this stage may spend. */
  sweepBudget: number;
  /** Feasible starting point (e.g. the solution at a larger diagonal). */
  warmStart?: Float64Array;
}

interface StageResult {
  converged: boolean;
  /** The accepted solution, or the best (least violating) active-set solve. */
  alpha: Float64Array;
  /** Feasible coordinate-descent iterate (a valid warm start even when not converged). */
  feasible: Float64Array;
  stats: CrammerSingerStats;
  vjp?: (alphaBar: Float64Array) => Float64Array;
}

/** One solve's fixed data: Q = ½(K + Kᵀ) + r·I and the bounds (shared by every step of a stage). */
interface StageProblem {
  q: Float64Array;
  labels: Int32Array;
  /** Support samples, classes, variables (n·N). */
  n: number;
  N: number;
  nv: number;
  C: number;
  /** Bound on |∇| = |Qα − e| over the feasible set (|α| ≤ C): the scale of gradients and multipliers. */
  gradScale: number;
}

function stageProblem(kernel: Float64Array, labels: Int32Array, way: number, C: number, diagonal: number): StageProblem {
  const n = labels.length;
  // Q = K + r·I, symmetrised (a float32 Gram matrix need not be exactly symmetric).
  const q = new Float64Array(n * n);
  let rowAbsMax = 0;
  for (let i = 0; i < n; i++) {
    let rowAbs = 0;
    for (let j = 0; j < n; j++) {
      const v = 0.5 * (kernel[i * n + j] + kernel[j * n + i]) + (i === j ? diagonal : 0);
      q[i * n + j] = v;
      rowAbs += Math.abs(v);
    }
    rowAbsMax = Math.max(rowAbsMax, rowAbs);
  }
  for (let i = 0; i < n; i++) {
    if (!(q[i * n + i] > 0)) {
      throw new NumericalError(
        `metaoptnet-svm: K + I is not positive definite (diagonal entry ${q[i * n + i]} at row ${i}); a Gram matrix cannot be indefinite`,
      );
    }
  }
  return { q, labels, n, N: way, nv: n * way, C, gradScale: 1 + C * rowAbsMax };
}

/** Upper bound c_k of variable k = i·N + m: C on the label entry, else 0. */
function boundOf(p: StageProblem, k: number): number {
  return p.labels[Math.floor(k / p.N)] === k % p.N ? p.C : 0;
}

/** Phase 1: block coordinate descent over support samples; `alpha` stays feasible throughout. */
class CoordinateDescent {
  readonly alpha: Float64Array;
  /** ∇ = Qα − e, stored class-major (gradT[m·n + j]) so a block update is a contiguous axpy per moved class. */
  private readonly gradT: Float64Array;
  private readonly v: Float64Array;
  private readonly sorted: Float64Array;
  private readonly next: Float64Array;
  private readonly delta: Float64Array;
  private readonly moved: Int32Array;
  private readonly perm: Int32Array;
  private readonly rand: () => number;
  sweeps = 0;

  constructor(
    private readonly p: StageProblem,
    warmStart: Float64Array | undefined,
  ) {
    const { n, N, labels } = p;
    this.alpha = warmStart ? warmStart.slice() : new Float64Array(p.nv);
    this.gradT = new Float64Array(N * n);
    for (let i = 0; i < n; i++) this.gradT[labels[i] * n + i] = -1;
    if (warmStart) {
      const g = gradientAt(p.q, labels, N, this.alpha);
      for (let i = 0; i < n; i++) for (let m = 0; m < N; m++) this.gradT[m * n + i] = g[i * N + m];
    }
    this.v = new Float64Array(N);
    this.sorted = new Float64Array(N);
    this.next = new Float64Array(N);
    this.delta = new Float64Array(N);
    this.moved = new Int32Array(N);
    this.perm = Int32Array.from({ length: n }, (_, i) => i);
    this.rand = mulberry32(0x5eed ^ (n * 7919 + N));
  }

  /** Sweeps until the largest block KKT violation (margin units) is ≤ violationTol, `budget` sweeps ran or `maxSweeps` in all. */
  sweepUntil(violationTol: number, budget: number, maxSweeps: number): void {
    // Locals, not fields, in the hot loop.
    const { q, labels, n, N, C } = this.p;
    const { alpha, gradT, v, sorted, next, delta, moved, perm, rand } = this;
    for (let s = 0; s < budget && this.sweeps < maxSweeps; s++) {
      this.sweeps++;
      for (let k = n - 1; k > 0; k--) {
        const r = Math.floor(rand() * (k + 1));
        const t = perm[k];
        perm[k] = perm[r];
        perm[r] = t;
      }
      let maxViolation = 0;
      for (let p = 0; p < n; p++) {
        const i = perm[p];
        const qi = i * n;
        const qii = q[qi + i];
        const row = i * N;
        const yi = labels[i];
        // Block KKT violation: at the optimum every free variable carries the sample's largest gradient.
        let gMax = -Infinity;
        let gMinFree = Infinity;
        for (let m = 0; m < N; m++) {
          const g = gradT[m * n + i];
          if (g > gMax) gMax = g;
          if (alpha[row + m] < (m === yi ? C : 0) && g < gMinFree) gMinFree = g;
          v[m] = alpha[row + m] - g / qii; // unconstrained block minimiser
        }
        if (gMax - gMinFree > maxViolation) maxViolation = gMax - gMinFree;
        projectOntoBlock(v, yi, C, next, sorted);
        let nMoved = 0;
        for (let m = 0; m < N; m++) {
          const d = next[m] - alpha[row + m];
          if (d !== 0) {
            delta[nMoved] = d;
            moved[nMoved++] = m;
            alpha[row + m] = next[m];
          }
        }
        for (let k = 0; k < nMoved; k++) axpy(gradT, moved[k] * n, q, qi, delta[k], n);
      }
      if (maxViolation <= violationTol) return;
    }
  }
}

/**
 * Factorises KKT matrices of working sets. (Q_FF)⁻¹ are cached by free set: classes often share one, and
 * successive active-set solves change few classes. Only the factors used by the latest solve are kept, which
 * bounds memory to one solve's worth.
 */
class KktFactoriser {
  private factorCache = new Map<string, Float64Array>();
  private nextCache = new Map<string, Float64Array>();

  constructor(private readonly p: StageProblem) {}

  private inverseFor(idx: Int32Array): Float64Array {
    const { q, n } = this.p;
    const key = idx.join(',');
    const hit = this.nextCache.get(key) ?? this.factorCache.get(key);
    if (hit) {
      this.nextCache.set(key, hit);
      return hit;
    }
    const f = idx.length;
    const h = new Float64Array(f * f);
    for (let a = 0; a < f; a++) for (let b = 0; b < f; b++) h[a * f + b] = q[idx[a] * n + idx[b]];
    const inv = inverseFromCholesky(cholesky(h, f, 'metaoptnet-svm: free-variable block of K + I'), f);
    this.nextCache.set(key, inv);
    return inv;
  }

  factorize(free: Uint8Array): KktFactor {
    const { n, N } = this.p;
    this.factorCache = this.nextCache;
    this.nextCache = new Map();
    const blocks: KktFactor['blocks'] = [];
    const schur = new Float64Array(n * n);
    for (let m = 0; m < N; m++) {
      const list: number[] = [];
      for (let i = 0; i < n; i++) if (free[i * N + m]) list.push(i);
      if (list.length === 0) {
        blocks.push(null);
        continue;
      }
      const idx = Int32Array.from(list);
      const inv = this.inverseFor(idx);
      const f = idx.length;
      for (let a = 0; a < f; a++) {
        const ra = idx[a] * n;
        for (let c = 0; c < f; c++) schur[ra + idx[c]] += inv[a * f + c];
      }
      blocks.push({ idx, inv });
    }
    return { blocks, schurChol: cholesky(schur, n, 'metaoptnet-svm: Schur complement of the equality constraints') };
  }
}

/**
 * Solves H_m x^m + P_mᵀ t = a^m (every class m), Σ_m P_m x^m = b, with a and x as full n·N support-major arrays
 * (only free entries are read / written; bound entries of x are 0). Returns [x, t].
 */
function solveKkt(p: StageProblem, fac: KktFactor, a: Float64Array, b: Float64Array): [Float64Array, Float64Array] {
  const { n, N } = p;
  // S t = Σ_m P_m H_m⁻¹ a^m − b, then x^m = H_m⁻¹ (a^m − P_mᵀ t).
  const hInvA: (Float64Array | null)[] = [];
  const t = new Float64Array(n);
  for (let i = 0; i < n; i++) t[i] = -b[i];
  for (let m = 0; m < N; m++) {
    const blk = fac.blocks[m];
    if (!blk) {
      hInvA.push(null);
      continue;
    }
    const { idx, inv } = blk;
    const f = idx.length;
    const y = new Float64Array(f);
    for (let r = 0; r < f; r++) {
      let s = 0;
      for (let c = 0; c < f; c++) s += inv[r * f + c] * a[idx[c] * N + m];
      y[r] = s;
      t[idx[r]] += s;
    }
    hInvA.push(y);
  }
  choleskySolveInPlace(fac.schurChol, n, t, 1);
  const x = new Float64Array(p.nv);
  for (let m = 0; m < N; m++) {
    const blk = fac.blocks[m];
    if (!blk) continue;
    const { idx, inv } = blk;
    const f = idx.length;
    const y = hInvA[m]!;
    for (let r = 0; r < f; r++) {
      let s = y[r];
      for (let c = 0; c < f; c++) s -= inv[r * f + c] * t[idx[c]];
      x[idx[r] * N + m] = s;
    }
  }
  return [x, t];
}

interface WorkingSetSolution {
  alpha: Float64Array;
  theta: Float64Array;
  grad: Float64Array;
  fac: KktFactor;
}

/** The minimiser of the QP with the working set's bound variables fixed and the rest unconstrained. */
function solveWorkingSet(p: StageProblem, factoriser: KktFactoriser, free: Uint8Array): WorkingSetSolution {
  const { q, labels, n, N, nv, C } = p;
  const fac = factoriser.factorize(free);
  // Right-hand side: a = e_F − Q_FB c_B (only bound entries at C, i.e. label entries, are nonzero),
  // b_i = −(sum of sample i's bound values).
  const a = new Float64Array(nv);
  const b = new Float64Array(n);
  const atC: number[] = [];
  for (let i = 0; i < n; i++) {
    if (free[i * N + labels[i]]) a[i * N + labels[i]] = 1;
    else {
      atC.push(i);
      b[i] = -C;
    }
  }
  for (let i = 0; i < n; i++) for (const j of atC) a[i * N + labels[j]] -= C * q[i * n + j];
  const [x, theta] = solveKkt(p, fac, a, b);
  const sol = x;
  for (let k = 0; k < nv; k++) if (!free[k]) sol[k] = boundOf(p, k);
  // Iterative refinement: the explicit inverses lose accuracy when K is badly conditioned; two correction steps
  // with the same factors bring stationarity and the equalities back to rounding level.
  let grad = gradientAt(q, labels, N, sol);
  for (let step = 0; step < 2; step++) {
    const r1 = new Float64Array(nv);
    const r2 = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (let m = 0; m < N; m++) {
        const k = i * N + m;
        sum += sol[k];
        if (free[k]) r1[k] = -(grad[k] + theta[i]);
      }
      r2[i] = -sum;
    }
    const [dx, dt] = solveKkt(p, fac, r1, r2);
    for (let k = 0; k < nv; k++) if (free[k]) sol[k] += dx[k];
    for (let i = 0; i < n; i++) theta[i] += dt[i];
    grad = gradientAt(q, labels, N, sol);
  }
  return { alpha: sol, theta, grad, fac };
}

/** Objective, infeasibility, complementarity and Wolfe-dual gap of α with gradient g (see the module comment). */
function residualsOf(p: StageProblem, a: Float64Array, g: Float64Array): Residuals {
  const { labels, n, N, C } = p;
  let objective = 0;
  let infeasibility = 0;
  let complementarity = 0;
  let dualityGap = 0;
  for (let i = 0; i < n; i++) {
    const row = i * N;
    let sum = 0;
    let gMax = -Infinity;
    for (let m = 0; m < N; m++) {
      const k = row + m;
      sum += a[k];
      infeasibility = Math.max(infeasibility, a[k] - boundOf(p, k));
      gMax = Math.max(gMax, g[k]);
      // f = ½αᵀQα − eᵀα = ½αᵀ(∇ + e) − eᵀα = ½αᵀ∇ − ½eᵀα
      objective += 0.5 * a[k] * g[k] - (labels[i] === m ? 0.5 * a[k] : 0);
    }
    infeasibility = Math.max(infeasibility, Math.abs(sum));
    for (let m = 0; m < N; m++) {
      const k = row + m;
      const cs = (gMax - g[k]) * Math.max(boundOf(p, k) - a[k], 0);
      complementarity = Math.max(complementarity, cs);
      dualityGap += cs;
    }
  }
  return { objective, primalInfeasibility: infeasibility / C, complementarity: complementarity / (C * p.gradScale), dualityGap };
}

/** Keeps Σ_m α_i^m = 0 solvable: a sample with every variable on its bound gets its most violated one freed. */
function keepOneFree(p: StageProblem, free: Uint8Array, g: Float64Array | null): void {
  const { labels, n, N } = p;
  for (let i = 0; i < n; i++) {
    let nFree = 0;
    for (let m = 0; m < N; m++) nFree += free[i * N + m];
    if (nFree > 0) continue;
    let pick = labels[i];
    if (g) for (let m = 0; m < N; m++) if (g[i * N + m] > g[i * N + pick]) pick = m;
    free[i * N + pick] = 1;
  }
}

/** Phase 2: active-set solves, keeping the best (accepted, else least violating) solution seen. */
class ActiveSetSearch {
  iterations = 0;
  best: { r: Residuals; sol: WorkingSetSolution } | undefined;
  private readonly factoriser: KktFactoriser;
  // Rounding-level thresholds for the active-set decisions.
  private readonly epsAlpha: number;
  private readonly epsMu: number;

  constructor(
    private readonly p: StageProblem,
    private readonly tolerance: number,
  ) {
    this.factoriser = new KktFactoriser(p);
    this.epsAlpha = 1e-11 * p.C;
    this.epsMu = 1e-12 * p.gradScale;
  }

  accepted(r: Residuals): boolean {
    return r.primalInfeasibility <= this.tolerance && r.complementarity <= this.tolerance;
  }

  private record(sol: WorkingSetSolution): void {
    const r = residualsOf(this.p, sol.alpha, sol.grad);
    const best = this.best;
    if (
      !best ||
      this.accepted(r) ||
      (!this.accepted(best.r) && r.complementarity + r.primalInfeasibility < best.r.complementarity + best.r.primalInfeasibility)
    ) {
      this.best = { r, sol };
    }
  }

  /**
   * Primal–dual active-set (semismooth Newton) iterations: free variables above their bound become bound; bound
   * variables with a negative multiplier μ = −(∇ + θ) become free. Usually 1–3 solves from a coordinate-descent
   * start, but not globally convergent, hence the budget.
   */
  primalDualActiveSet(free: Uint8Array, budget: number): void {
    const { n, N } = this.p;
    for (let it = 0; it < budget; it++) {
      this.iterations++;
      const sol = solveWorkingSet(this.p, this.factoriser, free);
      this.record(sol);
      let changed = false;
      for (let i = 0; i < n; i++) {
        for (let m = 0; m < N; m++) {
          const k = i * N + m;
          if (free[k]) {
            if (sol.alpha[k] > boundOf(this.p, k) + this.epsAlpha) {
              free[k] = 0;
              changed = true;
            }
          } else if (sol.grad[k] + sol.theta[i] > this.epsMu) {
            free[k] = 1;
            changed = true;
          }
        }
      }
      if (!changed) return;
      keepOneFree(this.p, free, sol.grad);
    }
  }
}

/** ∂L/∂K from ∂L/∂α at the solution α*, reusing the final solve's factors (see the module comment). */
function kktVjp(p: StageProblem, fac: KktFactor, alphaStar: Float64Array): (alphaBar: Float64Array) => Float64Array {
  const { n, N, nv } = p;
  return (alphaBar) => {
    if (alphaBar.length !== nv) throw new RangeError(`alphaBar has ${alphaBar.length} entries, expected ${nv}`);
    if (!allFinite(alphaBar)) throw new NumericalError('metaoptnet-svm: the incoming gradient of the SVM dual variables is NaN/Inf');
    // Adjoint KKT system: H_m u^m + P_mᵀ w = ᾱ_F^m, Σ_m P_m u^m = 0; bound entries of u are 0.
    const [u] = solveKkt(p, fac, alphaBar, new Float64Array(n));
    // ∂L/∂Q = −U αᵀ; the solver uses Q = ½(K + Kᵀ) + rI, so ∂L/∂K = −½(U αᵀ + α Uᵀ).
    const kBar = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      const ri = i * N;
      for (let j = 0; j <= i; j++) {
        const rj = j * N;
        let s = 0;
        for (let m = 0; m < N; m++) s += u[ri + m] * alphaStar[rj + m] + alphaStar[ri + m] * u[rj + m];
        kBar[i * n + j] = -0.5 * s;
        kBar[j * n + i] = -0.5 * s;
      }
    }
    return kBar;
  };
}

/**
 * One solve at a fixed diagonal r: coordinate descent finds an active set, active-set solves make it exact; when
 * they do not settle, coordinate descent resumes with a 10× tighter tolerance and twice the sweeps.
 */
function solveStage(kernel: Float64Array, labels: Int32Array, way: number, opts: StageSettings): StageResult {
  const p = stageProblem(kernel, labels, way, opts.C, opts.diagonal);
  const descent = new CoordinateDescent(p, opts.warmStart);
  const search = new ActiveSetSearch(p, opts.tolerance);
  let violationTol = opts.bcdTolerance;
  let sweepBudget = opts.warmSweeps;
  let bcdMs = 0;
  let activeSetMs = 0;
  for (let attempt = 0; attempt < opts.maxAttempts; attempt++) {
    const t0 = performance.now();
    descent.sweepUntil(violationTol, sweepBudget, opts.sweepBudget);
    const t1 = performance.now();
    bcdMs += t1 - t0;
    // Working set from the coordinate-descent iterate: its projection puts bound variables exactly on the bound.
    const free = new Uint8Array(p.nv);
    for (let k = 0; k < p.nv; k++) free[k] = descent.alpha[k] !== boundOf(p, k) ? 1 : 0;
    keepOneFree(p, free, null);
    search.primalDualActiveSet(free, opts.maxActiveSetIterations);
    activeSetMs += performance.now() - t1;
    if ((search.best && search.accepted(search.best.r)) || descent.sweeps >= opts.sweepBudget) break;
    // The active set did not settle: coordinate descent converges globally (linearly), so refining its iterate
    // eventually identifies the optimal active set, from which one solve is exact.
    violationTol /= 10;
    sweepBudget *= 2;
  }
  const { best } = search;
  const counts = { sweeps: descent.sweeps, activeSetIterations: search.iterations };
  if (!best || !search.accepted(best.r)) {
    const emptyResiduals: Residuals = { objective: NaN, primalInfeasibility: Infinity, complementarity: Infinity, dualityGap: Infinity };
    return {
      converged: false,
      alpha: best ? best.sol.alpha : descent.alpha,
      feasible: descent.alpha,
      stats: { ...counts, freeVariables: 0, ...(best ? best.r : emptyResiduals), bcdMs, activeSetMs, stages: 1 },
    };
  }
  const { r, sol } = best;
  if (!allFinite(sol.alpha)) throw new NumericalError('metaoptnet-svm: QP solution is not finite');
  let freeVariables = 0;
  for (const b of sol.fac.blocks) freeVariables += b ? b.idx.length : 0;
  return {
    converged: true,
    alpha: sol.alpha,
    feasible: descent.alpha,
    stats: { ...counts, freeVariables, ...r, bcdMs, activeSetMs, stages: 1 },
    vjp: kktVjp(p, sol.fac, sol.alpha),
  };
}

/**
 * Solves the Crammer–Singer dual (see the module comment). A direct attempt (coordinate descent, then active-set
 * solves) settles almost every episode. When it does not — embeddings so correlated or low-rank that K + I is
 * badly conditioned and coordinate descent crawls — the solver follows the solution path in the diagonal r from
 * r₀ = 1 + (Gershgorin bound on ‖K‖) down to 1: at large r the problem is well conditioned, and each stage starts
 * the active-set solves from the previous stage's solution, whose active set is nearly right. A stage that does
 * not settle is retried with a smaller step in r. All sweeps count against `maxSweeps`.
 */
export function solveCrammerSinger(kernel: Float64Array, labels: Int32Array, way: number, options: CrammerSingerOptions): CrammerSingerSolution {
  const opts = { ...CRAMMER_SINGER_DEFAULTS, ...options };
  const n = labels.length;
  if (kernel.length !== n * n) throw new RangeError(`kernel has ${kernel.length} entries, expected ${n}×${n}`);
  if (!(opts.C > 0) || !(opts.diagonal > 0)) throw new RangeError('C and diagonal must be positive');
  for (let i = 0; i < n; i++) if (!(labels[i] >= 0 && labels[i] < way)) throw new RangeError(`label ${labels[i]} outside [0, ${way})`);
  if (!allFinite(kernel)) {
    throw new NumericalError('metaoptnet-svm: the support Gram matrix has NaN/Inf entries (the backbone produced non-finite or overflowing embeddings)');
  }
  for (let i = 0; i < n; i++) {
    if (!(kernel[i * n + i] + opts.diagonal > 0)) {
      throw new NumericalError(
        `metaoptnet-svm: K + I is not positive definite (diagonal entry ${kernel[i * n + i] + opts.diagonal} at row ${i}); a Gram matrix cannot be indefinite`,
      );
    }
  }
  let sweepsLeft = opts.maxSweeps;
  const total = { sweeps: 0, activeSetIterations: 0, bcdMs: 0, activeSetMs: 0, stages: 0 };
  const stage = (diagonal: number, settings: Partial<StageSettings>): StageResult => {
    const res = solveStage(kernel, labels, way, {
      C: opts.C,
      diagonal,
      tolerance: opts.tolerance,
      maxActiveSetIterations: opts.maxActiveSetIterations,
      bcdTolerance: opts.bcdTolerance,
      warmSweeps: opts.warmSweeps,
      maxAttempts: 1,
      ...settings,
      sweepBudget: Math.max(0, Math.min(settings.sweepBudget ?? Infinity, sweepsLeft)),
    });
    sweepsLeft -= res.stats.sweeps;
    total.sweeps += res.stats.sweeps;
    total.activeSetIterations += res.stats.activeSetIterations;
    total.bcdMs += res.stats.bcdMs;
    total.activeSetMs += res.stats.activeSetMs;
    total.stages++;
    return res;
  };
  const finish = (res: StageResult): CrammerSingerSolution => ({
    alpha: res.alpha,
    stats: { ...res.stats, ...total },
    vjp: res.vjp!,
  });
  const fail = (res: StageResult, where: string): never => {
    throw new NumericalError(
      `metaoptnet-svm: QP solver did not converge within ${opts.maxSweeps} coordinate-descent sweeps (${total.activeSetIterations} active-set solves, ${where}; ` +
        `primal infeasibility ${res.stats.primalInfeasibility.toExponential(2)}·C, complementarity ${res.stats.complementarity.toExponential(2)}, ` +
        `tolerance ${opts.tolerance}); raise maxIter or tolerance`,
    );
  };

  const direct = stage(opts.diagonal, {});
  if (direct.converged) return finish(direct);
  if (sweepsLeft <= 0) fail(direct, 'direct attempt');

  // Homotopy in the diagonal r (see above).
  let rowAbsMax = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.abs(kernel[i * n + j]);
    rowAbsMax = Math.max(rowAbsMax, s);
  }
  let r = opts.diagonal + rowAbsMax;
  let current = stage(r, { maxAttempts: Infinity });
  if (!current.converged) fail(current, `at diagonal ${r.toPrecision(3)}`);
  let ratio = 4;
  while (r > opts.diagonal) {
    const next = Math.max(opts.diagonal, r / ratio);
    const res = stage(next, { warmStart: current.alpha, warmSweeps: 5 });
    if (res.converged) {
      current = res;
      r = next;
      ratio = Math.min(ratio * 2, 64);
      continue;
    }
    if (sweepsLeft <= 0) fail(res, `at diagonal ${next.toPrecision(3)}`);
    ratio = Math.sqrt(ratio);
    if (ratio < 1.05) {
      // Steps in r this small should not be needed; settle this stage by coordinate descent alone.
      const forced = stage(next, { warmStart: res.feasible, maxAttempts: Infinity });
      if (!forced.converged) fail(forced, `at diagonal ${next.toPrecision(3)}`);
      current = forced;
      r = next;
      ratio = 2;
    }
  }
  return finish(current);
}
