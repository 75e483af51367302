import pytest
import torch

from vidiff.diffusion import build_schedule, ScheduleConfig, target_of, to_eps, to_x0, loss_weight
from vidiff.diffusion.parameterization import expand_like


def test_round_trips_exact():
    s = build_schedule(ScheduleConfig(kind="cosine"))
    x = torch.randn(4, 3, 5, 6, 6, dtype=torch.float64)
    e = torch.randn_like(x)
    t = torch.rand(4, 5) * 0.98 + 0.01  # per-frame
    a, sg = (c.double() for c in s.alpha_sigma(t))
    z = expand_like(a, x) * x + expand_like(sg, x) * e
    for kind in ("eps", "v", "x0"):
        out = target_of(kind, x, e, a, sg)
        assert torch.allclose(to_x0(kind, out, z, a, sg), x, atol=1e-9)
        assert torch.allclose(to_eps(kind, out, z, a, sg), e, atol=1e-9)


def test_v_definition():
    a, s = torch.tensor([0.6]), torch.tensor([0.8])
    x, e = torch.tensor([[2.0]]), torch.tensor([[1.0]])
    assert target_of("v", x, e, a, s).item() == 0.6 * 1.0 - 0.8 * 2.0


def test_min_snr_weights():
    lam = torch.log(torch.tensor([0.5, 5.0, 20.0]))  # SNR 0.5, 5, 20
    assert torch.allclose(loss_weight("min_snr", "eps", lam, 5.0), torch.tensor([1.0, 1.0, 0.25]))
    assert torch.allclose(loss_weight("min_snr", "v", lam, 5.0), torch.tensor([0.5 / 1.5, 5 / 6, 5 / 21]))
    assert torch.allclose(loss_weight("min_snr", "x0", lam, 5.0), torch.tensor([0.5, 5.0, 5.0]))
    assert torch.equal(loss_weight("uniform", "eps", lam), torch.ones(3))


def test_min_snr_floor():
    """snr_floor bounds the x0-space weight below: clamp(SNR, floor, gamma); at SNR 0.01 plain
    Min-SNR for v gives 0.01 / 1.01 (almost no signal), floor 1 gives 1 / 1.01."""
    lam = torch.log(torch.tensor([0.01, 0.5, 5.0, 20.0]))
    w_x0 = torch.tensor([1.0, 1.0, 5.0, 5.0])
    assert torch.allclose(loss_weight("min_snr", "x0", lam, 5.0, floor=1.0), w_x0)
    snr = lam.exp()
    assert torch.allclose(loss_weight("min_snr", "v", lam, 5.0, floor=1.0), w_x0 / (snr + 1))
    assert torch.allclose(loss_weight("min_snr", "eps", lam, 5.0, floor=1.0), w_x0 / snr)
    assert torch.allclose(loss_weight("min_snr", "v", lam[:1], 5.0), snr[:1] / (snr[:1] + 1))
    with pytest.raises(ValueError, match="min_snr"):  # a floor on uniform weighting is a mistake
        loss_weight("uniform", "v", lam, floor=1.0)
