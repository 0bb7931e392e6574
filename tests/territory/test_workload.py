"""Workload build-up and sizing: known answers on tiny cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from territory.model import Accounts, Calendar, Reps
from territory.travel import TravelModel
from territory.workload import estimate_workload, local_density, size_force


def _accounts(lon, lat, visits=1, minutes=30.0) -> Accounts:
    n = len(lon)
    return Accounts.from_frame(pd.DataFrame({
        "id": [f"a{i}" for i in range(n)], "lon": lon, "lat": lat,
        "visits": visits, "visit_min": minutes}), allow_outside_china=True)


def test_density_of_a_regular_grid() -> None:
    # A 1 km grid has one account per km^2.
    step = 1.0 / 111.195  # degrees of latitude per km
    g = np.arange(40)
    lat = 30.0 + np.repeat(g, 40) * step
    lon = 110.0 + np.tile(g, 40) * step / np.cos(np.radians(lat))
    rho = local_density(np.column_stack([lon, lat]), k=8)
    inner = rho.reshape(40, 40)[10:30, 10:30]
    assert np.median(inner) == pytest.approx(1.0, rel=0.35)


def test_workload_is_visits_times_visit_plus_travel() -> None:
    rng = np.random.default_rng(0)
    lon = 113.3 + rng.normal(0, 0.05, 150)
    lat = 23.1 + rng.normal(0, 0.05, 150)
    # Each place twice: once visited once a cycle, once four times.
    visits = np.r_[np.ones(150, int), np.full(150, 4)]
    acc = _accounts(np.r_[lon, lon], np.r_[lat, lat], visits=visits, minutes=30.0)
    est = estimate_workload(acc, Calendar.weekly(4), TravelModel())
    np.testing.assert_allclose(est.visit_min, acc.visits * 30.0)
    assert (est.travel_min > 0).all()
    np.testing.assert_allclose(est.total_min, acc.visits * (30.0 + est.travel_min / acc.visits))
    # Travel per visit depends on where the account is, not on its own frequency.
    per_visit = est.travel_min / acc.visits
    np.testing.assert_allclose(per_visit[:150], per_visit[150:], rtol=1e-9)


def test_sparser_accounts_travel_more() -> None:
    rng = np.random.default_rng(1)
    dense = _accounts(113.3 + rng.normal(0, 0.03, 200), 23.1 + rng.normal(0, 0.03, 200))
    sparse = _accounts(103.3 + rng.normal(0, 0.6, 200), 30.1 + rng.normal(0, 0.6, 200))
    d = estimate_workload(dense).travel_min.mean()
    s = estimate_workload(sparse).travel_min.mean()
    assert s > 3 * d


def test_size_force_known_answer() -> None:
    work = np.array([600.0, 600.0, 300.0, 1500.0])  # minutes
    groups = {"region": np.array(["N", "N", "S", "S"])}
    table = size_force(work, available_min=1000.0, utilisation=0.5, groups=groups)
    by = table.set_index(["level", "group"])
    # N: 1200 / 500 = 2.4 -> 3 reps; S: 1800 / 500 = 3.6 -> 4; all: 3000 / 500 = 6.
    assert by.loc[("region", "N"), "reps_needed"] == 3
    assert by.loc[("region", "S"), "reps_needed"] == 4
    assert by.loc[("national", "all"), "reps_needed"] == 6
    assert by.loc[("national", "all"), "reps_exact"] == pytest.approx(6.0)
    with pytest.raises(ValueError, match="utilisation"):
        size_force(work, 1000.0, utilisation=1.5)


def test_available_minutes_of_default_rep() -> None:
    reps = Reps.from_frame(pd.DataFrame({"id": ["r"], "home_lon": [113.3],
                                         "home_lat": [23.1]}))
    # 08:30-17:30 less 45 minutes of lunch, 20 days.
    assert reps.available_minutes(Calendar.weekly(4))[0] == pytest.approx(20 * 495)
