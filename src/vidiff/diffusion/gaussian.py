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
        """``(z (N, D), t (N,)) -> E[x | z_t = z]`` (float32 in, float32 out)."""

        def denoise(z: Tensor, t: Tensor) -> Tensor:
            zd = z.double()
            a, s = schedule.alpha_sigma(t)
            a, s = a.double()[:, None, None], s.double()[:, None, None]  # (N, 1, 1)
            D = zd.shape[1]
            eye = torch.eye(D, dtype=torch.float64)
            # per sample and component: C = a^2 S_k + s^2 I   (N, K, D, D)
            C = a[:, None] ** 2 * self.cov[None] + (s[:, None] ** 2) * eye
            diff = zd[:, None, :] - a[:, :, 0, None] * self.mu[None]  # (N, K, D)
            sol = torch.linalg.solve(C, diff[..., None])[..., 0]  # C^-1 (z - a mu)
            logdet = torch.linalg.slogdet(C)[1]
            logp = torch.log(self.w)[None] - 0.5 * (diff * sol).sum(-1) - 0.5 * logdet
            r = torch.softmax(logp, dim=1)  # (N, K)
            post = self.mu[None] + a[:, :, 0, None] * torch.einsum("kij,nkj->nki", self.cov, sol)
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
