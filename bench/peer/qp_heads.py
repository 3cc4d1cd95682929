"""PyTorch peer of the bench's head workloads (bench/lib/heads.ts): MetaOptNet's SVM and ridge heads.

SVM: MetaOptNet's Crammer-Singer dual, posed as MetaOptNet poses it for qpth (support-major z[i*N + m] = alpha_i^m):

    minimise 1/2 z^T (K (x) I_N + I) z - onehot(y)^T z   s.t.  z <= C onehot(y),  sum_m z[i, m] = 0 for every i

and solved with qpth's algorithm, a primal-dual interior-point method (Mehrotra predictor-corrector), float64,
with its Newton systems solved class block by class block (BlockKKT) instead of as qpth's dense (nN) x (nN)
matrix: the same iterates for a fraction of the work, so the stronger of the two peers. It runs to convergence
(duality measure and residuals below 1e-11) because the toolkit solves to optimality too, so both sides compute the
same alpha and loss; looser stopping leaves D = lambda / s short of its active-set limit and the gradient off by up
to 1e-3. The backward is qpth's: one more KKT solve at the solution with D = lambda / s gives u = -(KKT)^-1 dL/dz
and dL/dQ = 1/2 (u z^T + z u^T), summed over the class blocks into dL/dK; autograd chains it into the embeddings
through K = X X^T. (MetaOptNet stops qpth after 15 iterations in training; the bench records the iterations the
peer took, `solverIterations`.)

Ridge: MetaOptNet-RR in closed form, alpha = (1/2 (K + K^T) + lambda I)^-1 onehot(y), float64 Cholesky, autograd.
"""
import numpy as np
import torch
import torch.nn.functional as F


def joint_labels(way, per_class, rotations):
    return torch.tensor([c * rotations + j for c in range(way) for _ in range(per_class) for j in range(rotations)], dtype=torch.long)


class BlockKKT:
    """The Newton (KKT) system of the dual, [H A^T; A 0], in class-major variables Z[m, i] = alpha_i^m.

    With the classes as blocks, K (x) I_N is block-diagonal with N copies of K, so H = K (x) I_N + I + diag(D) is
    N blocks H_m = K + I + diag(D[m]) of n x n; the equalities (sum over classes, per sample) couple the blocks only
    through the n x n Schur complement S = sum_m H_m^-1. One factorisation costs N n^3 instead of qpth's dense
    (nN)^3: the peer's strongest form of the same interior-point method (qpth itself factors the dense matrix,
    400x the work at 6,000 variables).
    """

    def __init__(self, K, D):
        n = K.shape[0]
        eye = torch.eye(n, dtype=K.dtype)
        H = K.unsqueeze(0) + eye + torch.diag_embed(D)
        self.chol = torch.linalg.cholesky(H)
        self.h_inv = torch.cholesky_inverse(self.chol)
        self.schur = torch.linalg.cholesky(self.h_inv.sum(0))

    def solve(self, r1, r2):
        """[H A^T; A 0] [dZ; dnu] = [r1; r2] for r1 [N, n], r2 [n]."""
        h_r1 = torch.cholesky_solve(r1.unsqueeze(-1), self.chol).squeeze(-1)
        dnu = torch.cholesky_solve((h_r1.sum(0) - r2).unsqueeze(-1), self.schur).squeeze(-1)
        dz = h_r1 - (self.h_inv @ dnu)
        return dz, dnu


def crammer_singer_pdipm(K, labels, N, C, tol=1e-11, max_iter=60):
    """qpth's interior-point method on MetaOptNet's SVM dual (see the module docstring), in class-major variables
    Z[m, i]. Returns Z, lam, s (each [N, n]) and the iterations taken."""
    n = K.shape[0]
    dtype = K.dtype
    onehot = F.one_hot(labels, N).to(dtype).t().contiguous()  # [N, n]
    p = -onehot
    h = C * onehot
    z = torch.zeros(N, n, dtype=dtype)
    s = h + 1.0
    lam = torch.ones(N, n, dtype=dtype)
    nu = torch.zeros(n, dtype=dtype)
    m_ineq = N * n
    scale = 1.0 + float(h.abs().max())
    mu = float("inf")
    for it in range(1, max_iter + 1):
        rx = z @ K + z + p + lam + nu  # Q z + p + G^T lam + A^T nu (K symmetric: (K z_m) as rows z_m K)
        rz = z + s - h
        ry = z.sum(0)
        mu = float((s * lam).sum()) / m_ineq
        if mu < tol * scale and max(float(rx.abs().max()), float(rz.abs().max()), float(ry.abs().max())) < tol * scale:
            return z, lam, s, it - 1
        D = lam / s
        kkt = BlockKKT(K, D)

        def direction(rc):
            dz, dnu = kkt.solve(-rx - rc / s - D * rz, -ry)
            ds = -rz - dz
            dlam = rc / s + D * (rz + dz)
            return dz, ds, dlam, dnu

        def max_step(ds, dlam):
            step = 1.0
            for v, dv in ((s, ds), (lam, dlam)):
                neg = dv < 0
                if bool(neg.any()):
                    step = min(step, float((-v[neg] / dv[neg]).min()))
            return step

        # Predictor (affine scaling), then Mehrotra's centring-corrector with the same factorisation.
        dz_a, ds_a, dlam_a, _ = direction(-s * lam)
        a_aff = max_step(ds_a, dlam_a)
        mu_aff = float(((s + a_aff * ds_a) * (lam + a_aff * dlam_a)).sum()) / m_ineq
        sigma = (mu_aff / mu) ** 3
        dz, ds, dlam, dnu = direction(-s * lam - ds_a * dlam_a + sigma * mu)
        step = min(1.0, 0.99 * max_step(ds, dlam))
        z = z + step * dz
        s = s + step * ds
        lam = lam + step * dlam
        nu = nu + step * dnu
    if mu < 1e-8 * scale:  # rounding stopped the last digits; the solution is still far inside the bench's check
        return z, lam, s, max_iter
    raise RuntimeError(f"interior point did not converge in {max_iter} iterations (mu {mu:.3g})")


class CrammerSingerDual(torch.autograd.Function):
    """K [n, n] (float64) -> alpha [n, N]; backward by qpth's KKT solve at the solution."""

    last_iterations = 0

    @staticmethod
    def forward(ctx, K, labels, N, C):
        z, lam, s, iterations = crammer_singer_pdipm(K.detach(), labels, N, C)
        ctx.save_for_backward(K, z, lam, s)
        CrammerSingerDual.last_iterations = iterations
        return z.t().contiguous()

    @staticmethod
    def backward(ctx, grad_alpha):
        K, z, lam, s = ctx.saved_tensors
        kkt = BlockKKT(K, lam / s)
        u, _ = kkt.solve(-grad_alpha.t().to(K.dtype), torch.zeros(K.shape[0], dtype=K.dtype))
        # dL/dQ_m = 1/2 (u_m z_m^T + z_m u_m^T) per class block; Q_m = K + I, so dL/dK = sum over the blocks.
        dK = 0.5 * (u.t() @ z + z.t() @ u)
        return dK, None, None, None


def svm_alpha(K, labels, N, C):
    Kd = K.double()
    return CrammerSingerDual.apply(0.5 * (Kd + Kd.t()), labels, N, C).float()


def ridge_alpha(K, labels, N, lam):
    Kd = K.double()
    a = 0.5 * (Kd + Kd.t()) + lam * torch.eye(K.shape[0], dtype=torch.float64)
    chol = torch.linalg.cholesky(a)
    y = F.one_hot(labels, N).double()
    return torch.cholesky_solve(y, chol).float()


class HeadEpisodes:
    """The bench's embeddings file: episodes back to back, each support [n, d] then query [q, d], float32."""

    def __init__(self, req):
        self.way, self.shot, self.query, self.rot, self.dim = req["way"], req["shot"], req["query"], req["rotations"], req["dim"]
        self.n = self.way * self.shot * self.rot
        self.q = self.way * self.query * self.rot
        self.N = self.way * self.rot
        data = np.fromfile(req["inputs"], dtype="<f4").reshape(req["episodes"], (self.n + self.q), self.dim)
        self.episodes = [(torch.from_numpy(e[: self.n].copy()), torch.from_numpy(e[self.n:].copy())) for e in data]
        self.support_labels = joint_labels(self.way, self.shot, self.rot)
        self.query_labels = joint_labels(self.way, self.query, self.rot)


def head_step(req, eps, i):
    """Forward (K, dual, logits, CE) and backward to the embeddings; returns loss and gradient norms."""
    xs0, xq0 = eps.episodes[i % len(eps.episodes)]
    xs = xs0.clone().requires_grad_(True)
    xq = xq0.clone().requires_grad_(True)
    K = xs @ xs.t()
    if req["head"] == "metaoptnet-svm":
        alpha = svm_alpha(K, eps.support_labels, eps.N, req["svmC"])
    else:
        alpha = ridge_alpha(K, eps.support_labels, eps.N, req["ridgeLambda"])
    logits = req["scale"] * ((xq @ xs.t()) @ alpha)
    loss = F.cross_entropy(logits, eps.query_labels)
    gs, gq = torch.autograd.grad(loss, [xs, xq])
    return {"loss": loss.item(), "supportGradNorm": gs.norm().item(), "queryGradNorm": gq.norm().item()}
