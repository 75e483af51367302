import torch

from vidiff.diffusion import ScheduleConfig, build_schedule, diffusion_loss, noise_given_frames
from vidiff.diffusion.parameterization import target_of


def _oracle(schedule, x0, noise, kind, given=None):
    """A network that knows the answer (and outputs garbage on given frames)."""
    def net(z, t):
        a, s = schedule.alpha_sigma(t)
        out = target_of(kind, x0, noise, a, s)
        if given is not None:
            out = out + 100.0 * given[:, None, :, None, None]
        return out
    return net


def test_perfect_prediction_has_zero_loss_and_given_frames_are_excluded():
    s = build_schedule(ScheduleConfig(kind="cosine"))
    x0 = torch.randn(2, 3, 6, 4, 4)
    noise = torch.randn_like(x0)
    given = torch.zeros(2, 6, dtype=torch.bool)
    given[:, :2] = True
    for kind in ("eps", "v", "x0"):
        loss = diffusion_loss(_oracle(s, x0, noise, kind, given), s, x0, prediction=kind,
                              noise=noise, given=given, weighting="min_snr")
        assert loss.item() < 1e-10
    # but garbage on generated frames is counted
    bad = diffusion_loss(lambda z, t: torch.zeros_like(z), s, x0, prediction="eps", noise=noise,
                         given=given)
    assert bad.item() > 0.5


def test_given_frames_get_their_own_noise_level():
    t = torch.tensor([0.7, 0.3])
    given = torch.tensor([[True, False, False], [False, False, True]])
    tt = noise_given_frames(t, given, 0.05)
    assert torch.allclose(tt, torch.tensor([[0.05, 0.7, 0.7], [0.3, 0.3, 0.05]]))
    seen = {}

    def net(z, t):
        seen["t"] = t
        return torch.zeros_like(z)
    s = build_schedule(ScheduleConfig(kind="cosine"))
    x0 = torch.zeros(2, 1, 3, 2, 2)
    diffusion_loss(net, s, x0, t=t, given=given, cond_t=0.0)
    assert seen["t"].shape == (2, 3) and seen["t"][0, 0] == 0 and seen["t"][0, 1] == 0.7
