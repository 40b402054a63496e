"""The SIREN layer init (paper Sec. 3.2), the sphere prior, and autograd derivatives."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sdfrecon.config import SirenConfig
from sdfrecon.diff import gradient, laplacian, value_and_gradient
from sdfrecon.siren import SdfSiren, SineLayer, Siren, siren_uniform_bound


def test_first_layer_init_is_uniform_one_over_fan_in():
    torch.manual_seed(0)
    layer = SineLayer(3, 4096, omega_0=30.0, is_first=True)
    w = layer.linear.weight.detach().numpy().ravel()
    assert np.abs(w).max() <= 1 / 3
    # U(-c, c) has variance c^2 / 3
    assert w.var() == pytest.approx((1 / 3) ** 2 / 3, rel=0.05)


@pytest.mark.parametrize("omega", [30.0, 10.0])
def test_hidden_layer_init_bound(omega):
    torch.manual_seed(0)
    layer = SineLayer(256, 256, omega_0=omega, is_first=False)
    w = layer.linear.weight.detach().numpy().ravel()
    c = math.sqrt(6 / 256) / omega
    assert siren_uniform_bound(256, omega, False) == pytest.approx(c)
    assert np.abs(w).max() <= c
    assert w.var() == pytest.approx(c**2 / 3, rel=0.05)


def test_activations_keep_their_distribution_with_depth():
    """The init's point: pre-activations omega_0 (W x + b) stay ~N(0, 1)-like at every depth,
    so activations neither vanish nor saturate (paper Sec. 3.2, Thm. 1.8)."""
    torch.manual_seed(0)
    net = Siren(2, 1, SirenConfig(hidden_features=512, hidden_layers=5))
    h = torch.rand(20000, 2) * 2 - 1
    stds = []
    with torch.no_grad():
        for layer in net.net:
            h = layer(h)
            stds.append(float(h.std()))
    # arcsine distribution on [-1, 1] has std 1/sqrt(2)
    assert all(abs(s - 1 / math.sqrt(2)) < 0.08 for s in stds[1:]), stds


def test_gradient_matches_finite_differences():
    torch.manual_seed(1)
    net = SdfSiren(SirenConfig(hidden_features=64, hidden_layers=2)).double()
    x = (torch.rand(50, 3, dtype=torch.float64) * 2 - 1)
    _, g = value_and_gradient(net, x, create_graph=False)
    eps = 1e-6
    fd = torch.stack([(net(x + eps * e) - net(x - eps * e)) / (2 * eps) for e in torch.eye(3, dtype=torch.float64)], dim=-1)
    assert torch.allclose(g, fd, rtol=1e-5, atol=1e-6)


def test_laplacian_of_quadratic():
    x = torch.rand(10, 3, requires_grad=True)
    y = (x**2).sum(-1) + 3 * x[:, 0]
    assert torch.allclose(laplacian(y, x), torch.full((10,), 6.0))
    assert torch.allclose(gradient(y, x)[:, 0], 2 * x[:, 0] + 3)


def test_sphere_prior_starts_near_the_sphere_sdf():
    torch.manual_seed(0)
    net = SdfSiren(SirenConfig(hidden_features=128, hidden_layers=3, sphere_prior=0.5))
    x = torch.rand(5000, 3) * 2 - 1
    exact = x.norm(dim=-1) - 0.5
    with torch.no_grad():
        assert (net(x) - exact).abs().mean() < 0.1


@pytest.mark.parametrize("sphere_prior", [None, 0.4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hand_written_gradient_matches_autograd(seed, sphere_prior):
    torch.manual_seed(seed)
    cfg = SirenConfig(hidden_features=48, hidden_layers=3, first_omega_0=20.0 + 10 * seed,
                      hidden_omega_0=30.0, sphere_prior=sphere_prior)
    net = SdfSiren(cfg)
    with torch.no_grad():  # random weights beyond the init's range too
        for p in net.parameters():
            p.mul_(1.0 + seed)
    x = torch.rand(500, 3) * 2 - 1
    f_ref, g_ref = value_and_gradient(net, x, create_graph=False)
    f, g = net.value_and_gradient(x)
    assert torch.allclose(f, f_ref, rtol=1e-5, atol=1e-6)
    rel = (g - g_ref).norm(dim=-1) / g_ref.norm(dim=-1).clamp(min=1e-6)
    assert rel.max() < 1e-5
    # and the loss on it back-propagates like autograd's double backward
    w = net.net[1].linear.weight
    (gw_ref,) = torch.autograd.grad((value_and_gradient(net, x)[1] ** 2).sum(), w)
    (gw,) = torch.autograd.grad((net.value_and_gradient(x)[1] ** 2).sum(), w)
    assert torch.allclose(gw, gw_ref, rtol=1e-4, atol=1e-4 * gw_ref.abs().max().item())
