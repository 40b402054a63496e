"""The coordinate contract: padded box inside [-1, 1]^3, exact round trip, uniform scale."""

from __future__ import annotations

import numpy as np
import pytest

from sdfrecon.cloud.normalize import Normalization
from sdfrecon.config import NormalizationConfig


def test_round_trip_and_padded_box(shared_data):
    from sdfrecon.io import load_point_cloud

    points = load_point_cloud(shared_data / "bunny.xyz").points
    norm = Normalization.fit(points, NormalizationConfig(padding=0.1))
    unit = norm.to_unit(points)
    assert np.abs(unit).max() == pytest.approx(0.9)
    np.testing.assert_allclose((unit.max(0) + unit.min(0)) / 2, 0, atol=1e-12)
    np.testing.assert_allclose(norm.to_world(unit), points, rtol=0, atol=1e-12)


def test_uniform_scale_keeps_distances_proportional():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(100, 3)) * [3.0, 1.0, 0.2] + [100.0, -5.0, 7.0]
    norm = Normalization.fit(points, NormalizationConfig(padding=0.25))
    unit = norm.to_unit(points)
    d_world = np.linalg.norm(points[1:] - points[:-1], axis=1)
    d_unit = np.linalg.norm(unit[1:] - unit[:-1], axis=1)
    np.testing.assert_allclose(d_unit, d_world * norm.scale)
    assert norm.length_to_world(d_unit[0]) == pytest.approx(d_world[0])
    assert np.abs(unit).max() == pytest.approx(0.75)


def test_serialisation_round_trip():
    norm = Normalization(center=(1.0, -2.0, 3.5), scale=0.125)
    assert Normalization.from_dict(norm.to_dict()) == norm


def test_zero_extent_is_refused():
    with pytest.raises(ValueError, match="zero extent"):
        Normalization.fit(np.ones((10, 3)), NormalizationConfig())
