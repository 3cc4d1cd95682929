import { NumericalError } from '../../../util/errors.ts';

/**
 * Small dense float64 linear algebra for the few-shot heads (n ≤ a few hundred): Cholesky factorisation,
 * triangular solves and the SPD inverse. Matrices are row-major Float64Arrays of size n·n. Loops run over
 * contiguous rows so V8 keeps them fast; this is the hot path of the SVM and ridge heads.
 */

/**
 * Lower Cholesky factor L (A = L·Lᵀ) of a symmetric positive definite n×n matrix; only A's lower triangle is read.
 * A pivot ≤ `minPivot`·max|diag| means A is not (numerically) positive definite: NumericalError naming `what`.
 */
export function cholesky(a: Float64Array, n: number, what: string, minPivot = 1e-13): Float64Array {
  const l = new Float64Array(n * n);
  let maxDiag = 0;
  for (let i = 0; i < n; i++) maxDiag = Math.max(maxDiag, Math.abs(a[i * n + i]));
  const floor = minPivot * Math.max(maxDiag, Number.MIN_VALUE);
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    let d = a[rj + j];
    for (let k = 0; k < j; k++) d -= l[rj + k] * l[rj + k];
    if (!(d > floor)) {
      throw new NumericalError(`${what}: matrix is singular or not positive definite (Cholesky pivot ${d.toExponential(3)} at row ${j} of ${n})`);
    }
    const ljj = Math.sqrt(d);
    l[rj + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let s = a[ri + j];
      for (let k = 0; k < j; k++) s -= l[ri + k] * l[rj + k];
      l[ri + j] = s / ljj;
    }
  }
  return l;
}

/** Solves A·X = B in place in `b` (n × cols, row-major) given A's lower Cholesky factor. */
export function choleskySolveInPlace(l: Float64Array, n: number, b: Float64Array, cols: number): void {
  // Forward: L·Y = B, row by row (row i of Y is a combination of earlier rows: contiguous axpys).
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    const bi = i * cols;
    for (let k = 0; k < i; k++) {
      const f = l[ri + k];
      if (f === 0) continue;
      const bk = k * cols;
      for (let c = 0; c < cols; c++) b[bi + c] -= f * b[bk + c];
    }
    const inv = 1 / l[ri + i];
    for (let c = 0; c < cols; c++) b[bi + c] *= inv;
  }
  // Backward: Lᵀ·X = Y.
  for (let i = n - 1; i >= 0; i--) {
    const bi = i * cols;
    const inv = 1 / l[i * n + i];
    for (let c = 0; c < cols; c++) b[bi + c] *= inv;
    for (let k = 0; k < i; k++) {
      const f = l[i * n + k];
      if (f === 0) continue;
      const bk = k * cols;
      for (let c = 0; c < cols; c++) b[bk + c] -= f * b[bi + c];
    }
  }
}

/** A⁻¹ (full symmetric n×n) from A's lower Cholesky factor: A⁻¹ = L⁻ᵀ·L⁻¹. About n³ flops. */
export function inverseFromCholesky(l: Float64Array, n: number): Float64Array {
  // X = L⁻¹ (lower), built row by row: X_i = (e_i − Σ_{k<i} L_ik X_k) / L_ii.
  const x = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let k = 0; k < i; k++) {
      const f = l[ri + k];
      if (f === 0) continue;
      const rk = k * n;
      for (let c = 0; c <= k; c++) x[ri + c] -= f * x[rk + c];
    }
    x[ri + i] += 1;
    const inv = 1 / l[ri + i];
    for (let c = 0; c <= i; c++) x[ri + c] *= inv;
  }
  // A⁻¹ = XᵀX = Σ_k x_kᵀ x_k over rows k (row k is nonzero on columns 0..k): lower triangle, then mirror.
  const out = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const rk = k * n;
    for (let i = 0; i <= k; i++) {
      const f = x[rk + i];
      if (f === 0) continue;
      const ri = i * n;
      for (let j = 0; j <= i; j++) out[ri + j] += f * x[rk + j];
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) out[j * n + i] = out[i * n + j];
  return out;
}

/** True if every entry is a finite number. */
export function allFinite(a: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return false;
  return true;
}

/** Gram matrix K = X Xᵀ (n × n) of row-major X (n × d), in float64. */
export function gram(x: Float64Array, n: number, d: number): Float64Array {
  const k = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let c = 0; c < d; c++) s += x[i * d + c] * x[j * d + c];
      k[i * n + j] = s;
      k[j * n + i] = s;
    }
  }
  return k;
}
