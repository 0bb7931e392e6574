"""The synthetic nationwide scenario: deterministic, realistic, valid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from territory import china, synth
from territory.model import Calendar
from territory.workload import estimate_workload


@pytest.fixture(scope="module")
def scenario():
    return synth.china_scenario(4_000, seed=3)


def test_same_seed_same_scenario(scenario) -> None:
    again = synth.china_scenario(4_000, seed=3)
    assert again.accounts.frame.equals(scenario.accounts.frame)
    assert again.reps.frame.equals(scenario.reps.frame)


def test_other_seed_other_scenario(scenario) -> None:
    other = synth.china_scenario(4_000, seed=4)
    assert not np.allclose(other.accounts.lon, scenario.accounts.lon)


def test_accounts_inside_china_and_in_every_province(scenario) -> None:
    acc = scenario.accounts
    assert china.contains(acc.lon, acc.lat, buffer_km=2.0).all()
    assert set(acc.province) <= set(china.province_codes())
    # 4,000 accounts reach every mainland province.
    assert len(set(acc.province)) >= 31


def test_segments_follow_potential(scenario) -> None:
    f = scenario.accounts.frame
    share = f["segment"].value_counts(normalize=True)
    assert share["A"] == pytest.approx(0.2, abs=0.001)
    assert share["B"] == pytest.approx(0.3, abs=0.001)
    assert f.loc[f.segment == "A", "potential"].min() >= f.loc[f.segment == "B",
                                                                 "potential"].max()
    assert set(f.loc[f.segment == "A", "visits"]) == {4}
    assert set(f.loc[f.segment == "C", "visit_min"]) == {20}


def test_potential_higher_where_gdp_per_person_is_higher() -> None:
    big = synth.china_scenario(30_000, seed=1)
    f = big.accounts.frame
    by_prov = f.groupby("province")["potential"].median()
    # Beijing and Shanghai (rich) against Gansu and Guizhou (poorer).
    assert min(by_prov["11"], by_prov["31"]) > max(by_prov["62"], by_prov["52"])


def test_reps_sized_so_the_cycle_fits(scenario) -> None:
    acc, reps, cal = scenario.accounts, scenario.reps, scenario.calendar
    work = estimate_workload(acc, cal, scenario.travel).total_min.sum()
    avail = reps.available_minutes(cal).sum()
    utilisation = work / avail
    assert 0.75 < utilisation <= 0.85 + 1e-9
    # Every province with half a rep's work has a rep; smaller ones are served from outside.
    per_prov = pd.Series(estimate_workload(acc, cal, scenario.travel).total_min).groupby(
        acc.province).sum()
    one_rep = float(reps.available_minutes(cal)[0]) * 0.85
    big = set(per_prov.index[per_prov >= 0.5 * one_rep])
    assert set(reps.frame["province"]) >= big


def test_fixed_rep_count_and_province_subset() -> None:
    s = synth.china_scenario(800, n_reps=7, seed=0, provinces=["广东", "44", "Guangxi"])
    assert len(s.reps) == 7
    assert set(s.accounts.province) <= {"44", "45", "81", "82", "35", "36", "43", "46", "53"}
    with pytest.raises(ValueError, match="unknown province"):
        synth.china_scenario(10, provinces=["Atlantis"])
    with pytest.raises(ValueError, match="n_accounts"):
        synth.china_scenario(0)


def test_calendar_passes_through() -> None:
    cal = Calendar.weekly(2, start="2027-03-01", holidays=["2027-03-03"])
    s = synth.china_scenario(300, seed=0, calendar=cal)
    assert s.calendar.n_days == 9


@pytest.mark.slow
def test_million_accounts_quickly() -> None:
    import time

    t = time.perf_counter()
    s = synth.china_scenario(1_000_000, seed=0)
    took = time.perf_counter() - t
    print(f"10^6 accounts in {took:.1f} s, {len(s.reps)} reps")
    assert len(s.accounts) == 1_000_000
    assert took < 60
