import { NumericalError } from '../../util/errors.ts';
import { allFinite, cholesky, choleskySolveInPlace, inverseFromCholesky } from './dense.ts';

/**
 * Exact solver for MetaOptNet's Crammer–Singer SVM dual (REFERENCE §4.2), with its implicit-function gradient.
 *
 * Problem (n support samples, N classes, z support-major: z[i·N + m] = α_i^m):
 *   minimise ½ zᵀ(K⊗I_N + r·I)z − Σ_i α_i^{y_i}    s.t.  α_i^m ≤ C·[m = y_i],  Σ_m α_i^m = 0  (each i)
 * with K the support Gram matrix and r = 1 (MetaOptNet's "+1.0·I"). Writing Q = K + r·I, the objective is
 * ½ Σ_m α^mᵀ Q α^m − Σ_i α_i^{y_i}: the N class columns share one n×n matrix and are coupled only through the
 * per-sample equality constraints.
 *
 * Algorithm (two phases, float64 throughout):
 *  1. Block coordinate descent over support samples (the Crammer–Singer / Keerthi et al. 2008 decomposition): the
 *     subproblem in α_i (N variables, one equality, upper bounds) is a Euclidean projection solved exactly by a
 *     sort. Each block update costs O(nN) (gradient update); it is run until no block moves by more than
 *     `bcdTolerance`·C in a sweep. This identifies the active set (which α sit on their bound).
 *  2. Primal–dual active-set polishing: with the bound variables fixed, the KKT system is linear. Per class m it
 *     reads Q_FF α_F^m = b^m − θ_F (F = free samples of class m), and the equalities couple the classes through
 *     the Schur complement S = Σ_m P_m (Q_FF^m)⁻¹ P_mᵀ (n×n, positive definite because every sample has a free
 *     variable). Its solution is exact up to rounding; variables that leave the feasible set or bound variables
 *     with negative multipliers switch sides and the system is re-solved (at most `maxActiveSetIterations`
 *     times). If the active set does not settle, phase 1 resumes with a 100× tighter tolerance.
 *  The result is accepted only if it is primal feasible to `tolerance`·C and its primal–dual gap (Wolfe dual, an
 *  upper bound on f(α) − f*) is below `tolerance`·(1 + |f(α)|); otherwise NumericalError.
 *
 * Gradient: at the solution, (α_F, θ) solve a linear system whose matrix depends on K; differentiating it
 * (bound variables are constant, the active set is held fixed: the usual implicit-function/KKT derivative,
 * as qpth computes it) gives the vector–Jacobian product K̄ = −U αᵀ, where U (zero on bound entries) solves the
 * adjoint system with right-hand side ᾱ. The factorisations of phase 2 are reused, so the backward pass is cheap.
 */

export interface CrammerSingerOptions {
  /** Upper bound on α_i^{y_i} (MetaOptNet: 0.1). */
  C: number;
  /** Diagonal regulariser r added to K (MetaOptNet: 1.0). Must be > 0: it makes the problem strongly convex. */
  diagonal?: number;
  /** Budget of coordinate-descent sweeps over all support samples (summed over restarts). */
  maxSweeps?: number;
  /** Acceptance tolerance: primal infeasibility ≤ tol·C and primal–dual gap ≤ tol·(1 + |objective|). */
  tolerance?: number;
  /** Budget of active-set re-solves per polishing attempt. */
  maxActiveSetIterations?: number;
  /** Phase-1 stopping threshold on the largest block move in a sweep, relative to C. */
  bcdTolerance?: number;
}

export interface CrammerSingerStats {
  sweeps: number;
  activeSetIterations: number;
  /** Number of free (not-at-bound) variables at the solution. */
  freeVariables: number;
  objective: number;
  /** max(α − bound, |Σ_m α_i^m|) over entries/samples, relative to C. */
  primalInfeasibility: number;
  /** Σ μ_im (c_im − α_im) with θ_i = −max_m ∇_im: the primal–dual gap bound f(α) − f*. */
  dualityGap: number;
}

export interface CrammerSingerSolution {
  /** n·N, support-major: alpha[i·N + m] = α_i^m. */
  alpha: Float64Array;
  stats: CrammerSingerStats;
  /**
   * Vector–Jacobian product: given ∂L/∂α (n·N, support-major) returns ∂L/∂K (n·n row-major), treating every
   * entry K_ij as independent (the caller symmetrises if K is built symmetric).
   */
  vjp(alphaBar: Float64Array): Float64Array;
}

const DEFAULTS = { diagonal: 1.0, maxSweeps: 5000, tolerance: 1e-9, maxActiveSetIterations: 30, bcdTolerance: 1e-6 };

/** Per-class factorisation of Q_FF on that class's free samples; classes with identical free sets share one. */
interface ClassBlock {
  /** Sample indices of the free variables of this class. */
  idx: Int32Array;
  /** (Q_FF)⁻¹, |F|×|F|. */
  inv: Float64Array;
}

/** A small deterministic PRNG (mulberry32) for the sweep order: results must not depend on Math.random. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function solveCrammerSinger(
  kernel: Float64Array,
  labels: Int32Array,
  way: number,
  options: CrammerSingerOptions,
): CrammerSingerSolution {
  const opts = { ...DEFAULTS, ...options };
  const n = labels.length;
  const N = way;
  const C = opts.C;
  if (kernel.length !== n * n) throw new RangeError(`kernel has ${kernel.length} entries, expected ${n}×${n}`);
  if (!(C > 0) || !(opts.diagonal > 0)) throw new RangeError('C and diagonal must be positive');
  for (let i = 0; i < n; i++) if (labels[i] < 0 || labels[i] >= N) throw new RangeError(`label ${labels[i]} outside [0, ${N})`);
  if (!allFinite(kernel)) {
    throw new NumericalError('metaoptnet-svm: the support Gram matrix has NaN/Inf entries (the backbone produced non-finite or overflowing embeddings)');
  }

  // Q = K + r·I, symmetrised (a float32 Gram matrix need not be exactly symmetric).
  const q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) q[i * n + j] = 0.5 * (kernel[i * n + j] + kernel[j * n + i]);
    q[i * n + i] += opts.diagonal;
  }
  const bound = (i: number, m: number): number => (labels[i] === m ? C : 0);

  // ---------- phase 1: block coordinate descent ----------
  const alpha = new Float64Array(n * N);
  const grad = new Float64Array(n * N); // ∇ = Qα − e
  for (let i = 0; i < n; i++) grad[i * N + labels[i]] = -1;
  const v = new Float64Array(N);
  const sorted = new Float64Array(N);
  const delta = new Float64Array(N);
  const moved = new Int32Array(N);
  const perm = Int32Array.from({ length: n }, (_, i) => i);
  const rand = mulberry32(0x5eed ^ (n * 7919 + N));
  let sweeps = 0;

  const sweepUntil = (moveTol: number, budget: number): void => {
    for (let s = 0; s < budget && sweeps < opts.maxSweeps; s++) {
      sweeps++;
      for (let k = n - 1; k > 0; k--) {
        const r = Math.floor(rand() * (k + 1));
        const t = perm[k];
        perm[k] = perm[r];
        perm[r] = t;
      }
      let maxMove = 0;
      for (let p = 0; p < n; p++) {
        const i = perm[p];
        const qii = q[i * n + i];
        const row = i * N;
        // Unconstrained block minimiser v = α_i − ∇_i/Q_ii, then the projection onto {a ≤ c, Σa = 0}:
        // a_m = min(c_m, v_m − β) = v_m − max(t_m, β), t_m = v_m − c_m, with Σ_m max(t_m, β) = Σ_m v_m.
        let vSum = 0;
        for (let m = 0; m < N; m++) {
          v[m] = alpha[row + m] - grad[row + m] / qii;
          vSum += v[m];
          sorted[m] = v[m] - bound(i, m);
        }
        sorted.sort(); // ascending; walk from the largest t
        let beta = vSum / N;
        let cum = 0;
        for (let r = 0; r < N - 1; r++) {
          const tTop = sorted[N - 1 - r];
          if (beta >= tTop) break;
          cum += tTop;
          beta = (vSum - cum) / (N - r - 1);
        }
        let nMoved = 0;
        for (let m = 0; m < N; m++) {
          const c = bound(i, m);
          const next = v[m] - c >= beta ? c : v[m] - beta;
          const d = next - alpha[row + m];
          if (d !== 0) {
            delta[nMoved] = d;
            moved[nMoved++] = m;
            alpha[row + m] = next;
            if (Math.abs(d) > maxMove) maxMove = Math.abs(d);
          }
        }
        if (nMoved === 0) continue;
        const qi = i * n;
        for (let j = 0; j < n; j++) {
          const qij = q[qi + j];
          const gj = j * N;
          for (let k = 0; k < nMoved; k++) grad[gj + moved[k]] += qij * delta[k];
        }
      }
      if (maxMove <= moveTol * C) return;
    }
  };

  // ---------- phase 2: active-set polishing ----------
  const factorCache = new Map<string, { inv: Float64Array }>();
  const factorFor = (idx: Int32Array): Float64Array => {
    const key = idx.join(',');
    const hit = factorCache.get(key);
    if (hit) return hit.inv;
    const f = idx.length;
    const h = new Float64Array(f * f);
    for (let a = 0; a < f; a++) for (let b = 0; b < f; b++) h[a * f + b] = q[idx[a] * n + idx[b]];
    const inv = inverseFromCholesky(cholesky(h, f, 'metaoptnet-svm: free-variable block of K + I'), f);
    factorCache.set(key, { inv });
    return inv;
  };

  interface Polished {
    alpha: Float64Array;
    theta: Float64Array;
    blocks: (ClassBlock | null)[];
    schurChol: Float64Array;
  }
  const polish = (free: Uint8Array): Polished => {
    const blocks: (ClassBlock | null)[] = [];
    const schur = new Float64Array(n * n);
    const rhs = new Float64Array(n);
    const ys: Float64Array[] = [];
    for (let i = 0; i < n; i++) if (!free[i * N + labels[i]]) rhs[i] += C; // bound values summed per sample
    for (let m = 0; m < N; m++) {
      const list: number[] = [];
      for (let i = 0; i < n; i++) if (free[i * N + m]) list.push(i);
      if (list.length === 0) {
        blocks.push(null);
        ys.push(new Float64Array(0));
        continue;
      }
      const idx = Int32Array.from(list);
      const f = idx.length;
      const inv = factorFor(idx);
      // b = e_F − Q_FB c_B: only bound entries with label m carry a nonzero value (C).
      const b = new Float64Array(f);
      for (let a = 0; a < f; a++) {
        const i = idx[a];
        let s = labels[i] === m ? 1 : 0;
        for (let j = 0; j < n; j++) if (labels[j] === m && !free[j * N + m]) s -= C * q[i * n + j];
        b[a] = s;
      }
      const y = new Float64Array(f);
      for (let a = 0; a < f; a++) {
        let s = 0;
        for (let c = 0; c < f; c++) s += inv[a * f + c] * b[c];
        y[a] = s;
        rhs[idx[a]] += s;
      }
      for (let a = 0; a < f; a++) {
        const ra = idx[a] * n;
        for (let c = 0; c < f; c++) schur[ra + idx[c]] += inv[a * f + c];
      }
      blocks.push({ idx, inv });
      ys.push(y);
    }
    const schurChol = cholesky(schur, n, 'metaoptnet-svm: Schur complement of the equality constraints');
    const theta = rhs.slice();
    choleskySolveInPlace(schurChol, n, theta, 1);
    const out = new Float64Array(n * N);
    for (let i = 0; i < n; i++) for (let m = 0; m < N; m++) if (!free[i * N + m]) out[i * N + m] = bound(i, m);
    for (let m = 0; m < N; m++) {
      const blk = blocks[m];
      if (!blk) continue;
      const { idx, inv } = blk;
      const f = idx.length;
      const y = ys[m];
      for (let a = 0; a < f; a++) {
        let s = y[a];
        for (let c = 0; c < f; c++) s -= inv[a * f + c] * theta[idx[c]];
        out[idx[a] * N + m] = s;
      }
    }
    return { alpha: out, theta, blocks, schurChol };
  };

  /** ∇ = Qα − e for a full α. */
  const gradientOf = (a: Float64Array): Float64Array => {
    const g = new Float64Array(n * N);
    for (let i = 0; i < n; i++) {
      const gi = i * N;
      for (let j = 0; j < n; j++) {
        const qij = q[i * n + j];
        const aj = j * N;
        for (let m = 0; m < N; m++) g[gi + m] += qij * a[aj + m];
      }
      g[gi + labels[i]] -= 1;
    }
    return g;
  };

  const residuals = (a: Float64Array, g: Float64Array): Omit<CrammerSingerStats, 'sweeps' | 'activeSetIterations' | 'freeVariables'> => {
    let objective = 0;
    let infeas = 0;
    let gap = 0;
    for (let i = 0; i < n; i++) {
      const row = i * N;
      let sum = 0;
      let gMax = -Infinity;
      for (let m = 0; m < N; m++) {
        sum += a[row + m];
        infeas = Math.max(infeas, a[row + m] - bound(i, m));
        gMax = Math.max(gMax, g[row + m]);
        // f = ½αᵀQα − eᵀα = ½ αᵀ(∇ + e) − eᵀα = ½ αᵀ∇ − ½ eᵀα
        objective += 0.5 * a[row + m] * g[row + m] - (labels[i] === m ? 0.5 * a[row + m] : 0);
      }
      infeas = Math.max(infeas, Math.abs(sum));
      for (let m = 0; m < N; m++) gap += (gMax - g[row + m]) * Math.max(bound(i, m) - a[row + m], 0);
    }
    return { objective, primalInfeasibility: infeas / C, dualityGap: gap };
  };

  const accepted = (r: { objective: number; primalInfeasibility: number; dualityGap: number }): boolean =>
    r.primalInfeasibility <= opts.tolerance && r.dualityGap <= opts.tolerance * (1 + Math.abs(r.objective));

  let activeSetIterations = 0;
  let moveTol = opts.bcdTolerance;
  let last: { r: ReturnType<typeof residuals>; polished?: Polished } | undefined;
  const epsAlpha = 1e-12 * C;
  for (;;) {
    sweepUntil(moveTol, opts.maxSweeps);
    // Active set from the coordinate-descent iterate: the projection puts bound variables exactly on the bound.
    const free = new Uint8Array(n * N);
    for (let i = 0; i < n; i++) for (let m = 0; m < N; m++) free[i * N + m] = alpha[i * N + m] !== bound(i, m) ? 1 : 0;
    for (let it = 0; it < opts.maxActiveSetIterations; it++) {
      activeSetIterations++;
      const polished = polish(free);
      const g = gradientOf(polished.alpha);
      const r = residuals(polished.alpha, g);
      last = { r, polished };
      // Primal–dual active-set update: free variables above their bound become bound; bound variables whose
      // multiplier μ = −(∇ + θ) is negative become free. Unchanged sets mean the KKT conditions hold.
      const epsMu = 1e-12 * (1 + Math.abs(polished.theta.reduce((s, t) => Math.max(s, Math.abs(t)), 0)));
      let changed = false;
      for (let i = 0; i < n; i++) {
        let nFree = 0;
        for (let m = 0; m < N; m++) {
          const k = i * N + m;
          if (free[k]) {
            if (polished.alpha[k] > bound(i, m) + epsAlpha) {
              free[k] = 0;
              changed = true;
            }
          } else if (-(g[k] + polished.theta[i]) < -epsMu) {
            free[k] = 1;
            changed = true;
          }
          nFree += free[k];
        }
        if (nFree === 0) {
          // Σ_m α_i^m = 0 cannot hold with every variable on its bound: keep the most violated one free.
          let best = 0;
          for (let m = 1; m < N; m++) if (g[i * N + m] > g[i * N + best]) best = m;
          free[i * N + best] = 1;
        }
      }
      if (!changed) break;
    }
    if (last && accepted(last.r) && last.polished) break;
    if (sweeps >= opts.maxSweeps) {
      const r = last?.r;
      throw new NumericalError(
        `metaoptnet-svm: QP solver did not converge within ${opts.maxSweeps} sweeps / ${activeSetIterations} active-set solves ` +
          `(primal infeasibility ${r?.primalInfeasibility.toExponential(2)}·C, duality gap ${r?.dualityGap.toExponential(2)}, ` +
          `tolerance ${opts.tolerance}); raise maxIter or tolerance`,
      );
    }
    moveTol /= 100;
  }

  const { r, polished } = last as { r: ReturnType<typeof residuals>; polished: Polished };
  const sol = polished.alpha;
  if (!allFinite(sol)) throw new NumericalError('metaoptnet-svm: QP solution is not finite');
  let freeVariables = 0;
  for (const b of polished.blocks) freeVariables += b ? b.idx.length : 0;
  const { blocks, schurChol } = polished;

  const vjp = (alphaBar: Float64Array): Float64Array => {
    if (alphaBar.length !== n * N) throw new RangeError(`alphaBar has ${alphaBar.length} entries, expected ${n * N}`);
    // Adjoint KKT system: H_m u^m + P_mᵀ w = ᾱ_F^m, Σ_m P_m u^m = 0  ⇒  S w = Σ_m P_m H_m⁻¹ ᾱ_F^m.
    const hInvBar: (Float64Array | null)[] = [];
    const w = new Float64Array(n);
    for (let m = 0; m < N; m++) {
      const blk = blocks[m];
      if (!blk) {
        hInvBar.push(null);
        continue;
      }
      const { idx, inv } = blk;
      const f = idx.length;
      const t = new Float64Array(f);
      for (let a = 0; a < f; a++) {
        let s = 0;
        for (let c = 0; c < f; c++) s += inv[a * f + c] * alphaBar[idx[c] * N + m];
        t[a] = s;
        w[idx[a]] += s;
      }
      hInvBar.push(t);
    }
    choleskySolveInPlace(schurChol, n, w, 1);
    const u = new Float64Array(n * N);
    for (let m = 0; m < N; m++) {
      const blk = blocks[m];
      if (!blk) continue;
      const { idx, inv } = blk;
      const f = idx.length;
      const t = hInvBar[m]!;
      for (let a = 0; a < f; a++) {
        let s = t[a];
        for (let c = 0; c < f; c++) s -= inv[a * f + c] * w[idx[c]];
        u[idx[a] * N + m] = s;
      }
    }
    // K̄ = −U αᵀ.
    const kBar = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      const ui = i * N;
      let any = false;
      for (let m = 0; m < N; m++) if (u[ui + m] !== 0) any = true;
      if (!any) continue;
      for (let j = 0; j < n; j++) {
        const aj = j * N;
        let s = 0;
        for (let m = 0; m < N; m++) s += u[ui + m] * sol[aj + m];
        kBar[i * n + j] = -s;
      }
    }
    return kBar;
  };

  return { alpha: sol, stats: { sweeps, activeSetIterations, freeVariables, ...r }, vjp };
}
