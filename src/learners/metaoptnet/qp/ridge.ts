import { NumericalError } from '../../../util/errors.ts';
import { allFinite, cholesky, choleskySolveInPlace } from './dense.ts';

/**
 * Kernel ridge regression dual (docs/reference.md §4.3): α = (K + λI)⁻¹ Y with Y = onehot(labels) (n×N), so that
 * W = Xᵀα = Xᵀ(XXᵀ + λI)⁻¹Y = (XᵀX + λI)⁻¹XᵀY and the query scores are Q W = (Q Xᵀ) α.
 * An n×n Cholesky solve in float64 (n = support size ≤ a few hundred, whatever the embedding dimension).
 *
 * Gradient: dα = −(K + λI)⁻¹ dK α, hence K̄ = −(K + λI)⁻¹ ᾱ αᵀ.
 */
export interface RidgeSolution {
  /** n·N row-major (support-major). */
  alpha: Float64Array;
  /** ∂L/∂K (n·n row-major) from ∂L/∂α. The solver uses K's symmetric part ½(K + Kᵀ), so ∂L/∂K is symmetric. */
  vjp(alphaBar: Float64Array): Float64Array;
}

export function solveRidge(kernel: Float64Array, labels: Int32Array, way: number, lambda: number): RidgeSolution {
  const n = labels.length;
  const N = way;
  if (kernel.length !== n * n) throw new RangeError(`kernel has ${kernel.length} entries, expected ${n}×${n}`);
  if (!(lambda > 0)) throw new RangeError('lambda must be positive');
  if (!allFinite(kernel)) {
    throw new NumericalError('metaoptnet-rr: the support Gram matrix has NaN/Inf entries (the backbone produced non-finite or overflowing embeddings)');
  }
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) a[i * n + j] = 0.5 * (kernel[i * n + j] + kernel[j * n + i]);
    a[i * n + i] += lambda;
  }
  const l = cholesky(a, n, 'metaoptnet-rr: K + λI');
  const alpha = new Float64Array(n * N);
  for (let i = 0; i < n; i++) {
    if (!(labels[i] >= 0 && labels[i] < N)) throw new RangeError(`label ${labels[i]} outside [0, ${N})`);
    alpha[i * N + labels[i]] = 1;
  }
  choleskySolveInPlace(l, n, alpha, N);
  const vjp = (alphaBar: Float64Array): Float64Array => {
    if (alphaBar.length !== n * N) throw new RangeError(`alphaBar has ${alphaBar.length} entries, expected ${n * N}`);
    const z = Float64Array.from(alphaBar);
    choleskySolveInPlace(l, n, z, N);
    // ∂L/∂A = −Z αᵀ with Z = A⁻¹ᾱ; through A = ½(K + Kᵀ) + λI: ∂L/∂K = −½(Z αᵀ + α Zᵀ).
    const kBar = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        let s = 0;
        for (let m = 0; m < N; m++) s += z[i * N + m] * alpha[j * N + m] + alpha[i * N + m] * z[j * N + m];
        kBar[i * n + j] = -0.5 * s;
        kBar[j * n + i] = -0.5 * s;
      }
    }
    return kBar;
  };
  return { alpha, vjp };
}
