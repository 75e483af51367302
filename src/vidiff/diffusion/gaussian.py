"""Exact denoisers for Gaussian and Gaussian-mixture data, the ground truth that tests and
benchmarks hold the samplers to.

For ``x ~ sum_k w_k N(mu_k, S_k)`` and ``z = alpha x + sigma eps``:
``E[x | z] = sum_k r_k(z) (mu_k + alpha S_k (alpha^2 S_k + sigma^2 I)^-1 (z - alpha mu_k))`` with
``r_k`` the posterior responsibilities of the components.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .schedules import NoiseSchedule

__all__ = ["GaussianMixture"]


class GaussianMixture:
    """A mixture of ``K`` Gaussians in ``D`` dimensions (``K = 1`` is a plain Gaussian)."""

    def __init__(self, weights: Tensor, means: Tensor, covs: Tensor):
        self.w = torch.as_tensor(weights, dtype=torch.float64)
        self.mu = torch.as_tensor(means, dtype=torch.float64)  # (K, D)
        self.cov = torch.as_tensor(covs, dtype=torch.float64)  # (K, D, D)
        self.w = self.w / self.w.sum()

    @property
    def mean(self) -> Tensor:
        return (self.w[:, None] * self.mu).sum(0)

    @property
    def covariance(self) -> Tensor:
        m = self.mean
        d = self.mu - m
        return (self.w[:, None, None] * (self.cov + d[:, :, None] * d[:, None, :])).sum(0)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        k = torch.multinomial(self.w, n, replacement=True, generator=generator)
        L = torch.linalg.cholesky(self.cov)
        e = torch.randn(n, self.mu.shape[1], generator=generator, dtype=torch.float64)
        return self.mu[k] + torch.einsum("nij,nj->ni", L[k], e)

    def denoiser(self, schedule: NoiseSchedule):
        """``(z (N, D), t (N,)) -> E[x | z_t = z]`` (computed in float64, returned in z's dtype).

        Uses the eigendecomposition ``S_k = U_k diag(d_k) U_k^T``, so that
        ``C_k = alpha^2 S_k + sigma^2 I`` is inverted elementwise in the eigenbasis.
        """
        d, U = torch.linalg.eigh(self.cov)  # (K, D), (K, D, D)
        mu_e = torch.einsum("kji,kj->ki", U, self.mu)  # means in each eigenbasis
        logw = torch.log(self.w)

        def denoise(z: Tensor, t: Tensor) -> Tensor:
            zd = z.double()
            a, s = (c.double()[:, None, None] for c in schedule.alpha_sigma(t))  # (N, 1, 1)
            ze = torch.einsum("kji,nj->nki", U, zd)  # (N, K, D)
            c = a ** 2 * d[None] + s ** 2  # eigenvalues of C_k
            diff = ze - a * mu_e[None]
            sol = diff / c
            logp = logw[None] - 0.5 * (diff * sol).sum(-1) - 0.5 * torch.log(c).sum(-1)
            r = torch.softmax(logp, dim=1)  # (N, K) responsibilities
            post_e = mu_e[None] + a * d[None] * sol  # E[x | z, k] in the eigenbasis
            post = torch.einsum("kij,nkj->nki", U, post_e)
            return (r[..., None] * post).sum(1).to(z.dtype)

        return denoise

    def conditional(self, idx_a: list[int], x_a: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and covariance of ``x_b | x_a`` for a single Gaussian (``K = 1``)."""
        if len(self.w) != 1:
            raise ValueError("conditional() is defined here for a single Gaussian")
        D = self.mu.shape[1]
        idx_b = [i for i in range(D) if i not in idx_a]
        S, m = self.cov[0], self.mu[0]
        Saa, Sab = S[idx_a][:, idx_a], S[idx_a][:, idx_b]
        Sbb = S[idx_b][:, idx_b]
        K = torch.linalg.solve(Saa, Sab).T  # S_ba S_aa^-1
        mean = m[idx_b] + K @ (x_a.double() - m[idx_a])
        cov = Sbb - K @ Sab
        return mean, cov
