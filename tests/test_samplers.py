"""Samplers against exact denoisers: a 2-D Gaussian mixture and a joint Gaussian."""

import pytest
import torch

from vidiff.diffusion import FrameConditioning, ScheduleConfig, build_schedule, sample
from vidiff.diffusion.gaussian import GaussianMixture

GMM = GaussianMixture([0.3, 0.7], [[-1.5, 0.5], [1.0, -0.5]],
                      [[[0.3, 0.1], [0.1, 0.2]], [[0.2, -0.05], [-0.05, 0.4]]])
N = 20000


def _moments_error(x: torch.Tensor, gm: GaussianMixture) -> tuple[float, float]:
    """(|mean error| / sqrt(trace Sigma), ||cov error||_F / ||Sigma||_F)."""
    x = x.double()
    m, c = x.mean(0), torch.cov(x.T)
    em = (m - gm.mean).norm() / gm.covariance.trace().sqrt()
    ec = (c - gm.covariance).norm() / gm.covariance.norm()
    return em.item(), ec.item()


@pytest.mark.parametrize("name,steps,kw", [
    ("ddpm", 1000, {}),
    ("ddim", 50, {}),
    ("ancestral", 100, {"gamma": 0.5}),
    ("pc", 100, {"delta": 0.1}),
    ("dpmpp_2m", 20, {}),
    ("euler", 100, {}),
    ("heun", 20, {}),
])
@pytest.mark.parametrize("kind", ["cosine", "cosine_logsnr", "rectified_flow"])
def test_sampler_matches_gmm_moments(name, steps, kw, kind):
    s = build_schedule(ScheduleConfig(kind=kind))
    g = torch.Generator().manual_seed(1)
    z = torch.randn(N, 2, generator=g)
    x = sample(name, GMM.denoiser(s), s, z, steps, generator=g, **kw)
    em, ec = _moments_error(x, GMM)
    assert em < 0.05 and ec < 0.05, (name, em, ec)


def test_fast_solver_is_accurate_in_ten_steps():
    s = build_schedule(ScheduleConfig(kind="cosine_logsnr"))
    z = torch.randn(N, 2, generator=torch.Generator().manual_seed(2))
    em, ec = _moments_error(sample("dpmpp_2m", GMM.denoiser(s), s, z, 10), GMM)
    assert em < 0.05 and ec < 0.05


def joint_gaussian(F: int = 4, rho: float = 0.95) -> GaussianMixture:
    """A 'video' of F scalar frames: an AR(1) process with correlation rho between frames."""
    i = torch.arange(F, dtype=torch.float64)
    cov = rho ** (i[:, None] - i[None, :]).abs()
    return GaussianMixture([1.0], torch.zeros(1, F), cov[None])


def conditional_errors(method: str, weight: float = 0.0, n: int = 4000, steps: int = 100):
    """Mean and covariance error of x_b | x_a sampled by frame conditioning, against the exact
    conditional of the joint Gaussian (frames 0, 1 given; 2, 3 generated)."""
    F = 4
    gm = joint_gaussian(F)
    s = build_schedule(ScheduleConfig(kind="cosine_logsnr"))
    den2d = gm.denoiser(s)

    def den(z, t):  # video layout (N, 1, F, 1, 1)
        return den2d(z.reshape(len(z), F), t).reshape(z.shape)

    xa = torch.tensor([1.2, 1.5])
    given = torch.zeros(n, 1, F, 1, 1)
    given[:, 0, :2, 0, 0] = xa
    mask = torch.zeros(n, F, dtype=torch.bool)
    mask[:, :2] = True
    g = torch.Generator().manual_seed(3)
    fc = FrameConditioning(den, s, given, mask, method=method, weight=weight, generator=g)
    x = sample("ancestral", fc, s, torch.randn(n, 1, F, 1, 1, generator=g), steps, generator=g)
    xb = x.reshape(n, F)[:, 2:].double()
    mean, cov = gm.conditional([0, 1], xa)
    em = (xb.mean(0) - mean).norm().item()
    ec = (torch.cov(xb.T) - cov).norm().item()
    assert torch.allclose(x.reshape(n, F)[:, :2], xa.expand(n, 2))  # given frames kept exactly
    return em, ec


def test_reconstruction_guidance_beats_replacement():
    em_rep, ec_rep = conditional_errors("replacement")
    em_rg, ec_rg = conditional_errors("reconstruction", weight=4.0)
    # replacement ignores most of what x_a says about x_b; reconstruction guidance recovers it
    assert em_rg < 0.5 * em_rep, (em_rg, em_rep)
    assert em_rg + ec_rg < em_rep + ec_rep
