"""A synthetic nationwide scenario on the bundled China geography.

``china_scenario(n_accounts, n_reps=None, seed=0)``:

* **where**: each account picks a bundled place with probability proportional to its population
  and lies at a Gaussian offset around it whose spread grows with the place's size (the same
  kernel as the travel model's density: 2 km for 50,000 people, up to 40 km); points that fall
  outside China (sea, border) are drawn again;
* **potential** (10k CNY a year): log-normal (sigma 0.9), scaled by the province's GDP per person
  relative to the national figure and, mildly, by the size of the place (bigger hospitals and
  stores in big cities);
* **segments** A/B/C by potential (top 20 % / next 30 % / rest), visits per 4-week cycle 4/2/1,
  visit minutes 40/30/20 (``SegmentRules``);
* **kinds and hours**: hospitals, pharmacies, stores and distributors with typical opening
  hours (some close at noon, some open on Saturday, a few close one weekday);
* **reps**: when ``n_reps`` is None, as many as the estimated workload needs at 85 %
  utilisation; provinces get reps in proportion to workload (largest remainder, at least one
  where there is three quarters of a rep's work or more), and within a province homes sit at
  the bundled place nearest to the centres of a workload-weighted k-means of its accounts.

Deterministic for a seed; 10^6 accounts take seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from territory import china
from territory.model import Accounts, Calendar, Reps, Scenario, SegmentRules
from territory.travel import EARTH_RADIUS_KM, TravelModel
from territory.workload import estimate_workload

__all__ = ["KINDS", "china_scenario", "place_reps"]

#: kind -> (share of accounts, Chinese label, opening-hours options with probabilities)
KINDS: dict[str, tuple[float, str, tuple[tuple[str, float], ...]]] = {
    "hospital": (0.25, "医院", (("08:00-17:30", 0.6), ("mon-sat 08:00-17:00", 0.4))),
    "pharmacy": (0.35, "药店", (("mon-sat 08:30-21:00", 0.7), ("09:00-18:00", 0.3))),
    "store": (0.30, "商超", (("mon-sat 09:00-21:00", 0.6),
                            ("09:00-12:00,14:00-18:00", 0.25),
                            ("mon,tue,thu,fri 09:00-17:00", 0.15))),
    "distributor": (0.10, "经销商", (("09:00-12:00,13:30-17:30", 0.8),
                                     ("09:00-17:00", 0.2))),
}


#: Exponent on place population when choosing an account's town (1 = like residents).
URBAN_TILT = 1.5
#: Accounts' spread around a place relative to its residents' spread.
SPREAD = 0.6


def _gdp_factor(codes: np.ndarray) -> np.ndarray:
    stats = china.province_stats()
    gpc = dict(zip(stats["code"].astype(str), stats["gdp_per_capita_cny_model"].astype(float),
                   strict=True))
    values = np.array([gpc.get(c, np.nan) for c in codes], dtype=float)
    ref = np.nanmedian(np.array(list(gpc.values()), dtype=float))
    values = np.where(np.isfinite(values), values, ref)
    return values / ref


def _place_weights(places: pd.DataFrame) -> np.ndarray:
    """Probability of each place: its province's share of residents, split by place size.

    GeoNames populations double-count (city-wide records overlap district records) and its
    coverage is uneven, so place sums over- or under-state provinces several times over; the
    provincial resident population sets each province's share instead.
    """
    stats = china.province_stats()
    prov_pop = dict(zip(stats["code"].astype(str), stats["pop_2023_10k_model"].astype(float),
                        strict=True))
    codes = places["province_code"].astype(str).to_numpy()
    pop = places["population"].to_numpy(dtype=float)
    # Accounts (hospitals, chains, distributors) concentrate in larger towns more than people.
    mass = pop ** URBAN_TILT
    within = pd.Series(mass).groupby(codes).transform("sum").to_numpy()
    share = np.array([prov_pop.get(c, 0.0) for c in codes], dtype=float)
    share = np.where(np.isfinite(share), share, 0.0)
    w = share * mass / within
    if w.sum() <= 0:
        w = pop
    return w / w.sum()


def _scatter(rng: np.random.Generator, places: pd.DataFrame, n: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points around places drawn by population; returns lon, lat and the place index."""
    pop = places["population"].to_numpy(dtype=float)
    p = _place_weights(places)
    lon0 = places["lon"].to_numpy(dtype=float)
    lat0 = places["lat"].to_numpy(dtype=float)
    sigma_km = SPREAD * np.clip(2.0 * np.sqrt(pop / 50_000.0), 1.5, 40.0)
    deg_km = np.pi / 180.0 * EARTH_RADIUS_KM
    place = rng.choice(len(places), size=n, p=p)
    lon = np.empty(n)
    lat = np.empty(n)
    todo = np.arange(n)
    for _ in range(20):
        if len(todo) == 0:
            break
        k = place[todo]
        # Half the spread for the first try keeps most accounts in town; retries widen nothing.
        dx, dy = rng.standard_normal((2, len(todo))) * sigma_km[k]
        lat[todo] = lat0[k] + dy / deg_km
        lon[todo] = lon0[k] + dx / (deg_km * np.cos(np.radians(lat0[k])))
        inside = china.contains(lon[todo], lat[todo], buffer_km=1.0)
        todo = todo[~inside]
    if len(todo):  # stubborn coastal draws: put them on their place
        lon[todo], lat[todo] = lon0[place[todo]], lat0[place[todo]]
    return lon, lat, place


def china_scenario(
    n_accounts: int = 20_000,
    n_reps: int | None = None,
    seed: int = 0,
    *,
    provinces: list[str] | None = None,
    rules: SegmentRules | None = None,
    calendar: Calendar | None = None,
    travel: TravelModel | None = None,
    utilisation: float = 0.85,
    name: str | None = None,
) -> Scenario:
    """A synthetic nationwide (or ``provinces``-restricted) scenario; see the module docstring.

    Parameters
    ----------
    n_accounts:
        Number of accounts (>= 1).
    n_reps:
        Number of reps; None sizes the force to the estimated workload at ``utilisation``.
    seed:
        Random seed; the same seed gives the same scenario.
    provinces:
        Optional GB/T 2260 codes or names to restrict the scenario to.

    Raises
    ------
    ValueError
        For ``n_accounts < 1``, ``n_reps < 1`` or unknown provinces.
    """
    if n_accounts < 1:
        raise ValueError(f"n_accounts={n_accounts}; expected >= 1")
    if n_reps is not None and n_reps < 1:
        raise ValueError(f"n_reps={n_reps}; expected >= 1 or None")
    rules = rules or SegmentRules()
    calendar = calendar or Calendar.weekly(4)
    travel = travel or TravelModel()
    rng = np.random.default_rng(seed)

    places = china.cities()
    if provinces:
        codes = china.normalise_province_codes(np.array(provinces, dtype=object))
        if (codes == "").any():
            bad = [p for p, c in zip(provinces, codes, strict=True) if c == ""]
            raise ValueError(f"unknown province(s) {bad}")
        places = places[places["province_code"].isin(set(codes))]
    places = places.reset_index(drop=True)

    lon, lat, place = _scatter(rng, places, n_accounts)
    province = china.province_of(lon, lat)
    # A point may cross a border; the place's own province is the fallback.
    place_prov = places["province_code"].to_numpy(dtype=object)[place]
    province = np.where(province == "", place_prov, province)

    kinds = list(KINDS)
    kind_p = np.array([KINDS[k][0] for k in kinds])
    kind = rng.choice(len(kinds), size=n_accounts, p=kind_p / kind_p.sum())
    hours = np.empty(n_accounts, dtype=object)
    for ki, kname in enumerate(kinds):
        idx = np.flatnonzero(kind == ki)
        options = KINDS[kname][2]
        probs = np.array([o[1] for o in options])
        pick = rng.choice(len(options), size=len(idx), p=probs / probs.sum())
        hours[idx] = np.array([o[0] for o in options], dtype=object)[pick]

    size_factor = (places["population"].to_numpy(float)[place] / 1e5) ** 0.1
    kind_factor = np.array([3.0, 1.0, 1.2, 4.0])[kind]  # hospitals and distributors buy more
    potential = (rng.lognormal(mean=2.5, sigma=0.9, size=n_accounts)
                 * _gdp_factor(province) * size_factor * kind_factor)
    potential = np.round(potential, 2)

    prov_names = {c: n for c, n in zip(china.province_stats()["code"].astype(str),
                                       china.province_stats()["name_zh"], strict=True)}
    city_ascii = places["name_ascii"].to_numpy(dtype=object)[place]
    label = np.array([KINDS[k][1] for k in kinds], dtype=object)[kind]
    ids = np.char.add("A", np.char.zfill(np.arange(1, n_accounts + 1).astype(str), 7))
    names = [f"{prov_names.get(p, '')}{c}{lbl}{i % 1000:03d}"
             for p, c, lbl, i in zip(province, city_ascii, label, range(n_accounts), strict=True)]
    frame = pd.DataFrame({
        "id": ids.astype(object), "lon": np.round(lon, 6), "lat": np.round(lat, 6),
        "potential": potential, "hours": hours, "province": province,
        "city": city_ascii, "name": names, "kind": np.array(kinds, dtype=object)[kind],
    })
    accounts = Accounts.from_frame(frame, rules=rules, allow_outside_china=True)
    reps = place_reps(accounts, n_reps, calendar=calendar, travel=travel,
                      utilisation=utilisation, seed=seed)
    return Scenario(accounts=accounts, reps=reps, calendar=calendar, travel=travel,
                    name=name or f"china-{n_accounts}-s{seed}")


def _apportion(weights: np.ndarray, total: int, minimum: np.ndarray) -> np.ndarray:
    """Largest-remainder apportionment of ``total`` seats with per-group minimums."""
    weights = np.asarray(weights, dtype=float)
    seats = minimum.astype(np.int64).copy()
    left = total - int(seats.sum())
    if left <= 0:
        return seats
    share = weights / weights.sum() * total
    extra = np.maximum(np.floor(share) - seats, 0).astype(np.int64)
    while extra.sum() > left:  # minimums already used some seats: trim the largest
        extra[np.argmax(extra)] -= 1
    seats += extra
    rem = share - seats
    order = np.argsort(-rem, kind="stable")
    i = 0
    while seats.sum() < total:
        seats[order[i % len(order)]] += 1
        i += 1
    return seats


def place_reps(
    accounts: Accounts,
    n_reps: int | None = None,
    *,
    calendar: Calendar | None = None,
    travel: TravelModel | None = None,
    utilisation: float = 0.85,
    seed: int = 0,
) -> Reps:
    """Reps with homes near workload, sized to the workload when ``n_reps`` is None.

    Provinces get reps in proportion to their estimated workload (at least one per province with
    three quarters of a rep's work or more, when there are enough reps); homes are the bundled
    places nearest to the centres of a workload-weighted k-means of the province's accounts
    (one rep per place; further reps of the same place live at their centres).
    """
    calendar = calendar or Calendar.weekly(4)
    travel = travel or TravelModel()
    rng = np.random.default_rng(seed + 7919)
    work = estimate_workload(accounts, calendar, travel).total_min
    template = Reps.from_frame(pd.DataFrame({"id": ["R"], "home_lon": [116.4],
                                             "home_lat": [39.9]}))
    avail = float(template.available_minutes(calendar)[0])
    if n_reps is None:
        n_reps = max(1, int(np.ceil(work.sum() / (avail * utilisation))))
    prov = accounts.province.astype(str)
    codes, inv = np.unique(prov, return_inverse=True)
    prov_work = np.bincount(inv, weights=work, minlength=len(codes))
    # A province with less than three quarters of a rep's work is served from a neighbour, as
    # companies do with Tibet or Qinghai: a rep placed there would sit idle or spend the month
    # on the road to the neighbours' accounts to make up a fair workload.
    enough = prov_work >= 0.75 * avail * utilisation
    minimum = enough.astype(np.int64) if n_reps >= int(enough.sum()) else \
        np.zeros(len(codes), dtype=np.int64)
    seats = _apportion(prov_work, n_reps, minimum)

    places = china.cities()
    pl_xy = places[["lon", "lat"]].to_numpy(dtype=float)
    lonlat = accounts.lonlat
    homes = []
    home_prov = []
    for g, code in enumerate(codes):
        if seats[g] == 0:
            continue
        idx = np.flatnonzero(inv == g)
        centres = _weighted_kmeans(lonlat[idx], work[idx], int(seats[g]), rng)
        in_prov = np.flatnonzero(places["province_code"].to_numpy(dtype=object) == code)
        cand = pl_xy[in_prov] if len(in_prov) else pl_xy
        taken: set[int] = set()
        for c in centres:
            d = np.hypot((cand[:, 0] - c[0]) * np.cos(np.radians(c[1])), cand[:, 1] - c[1])
            j = int(np.argmin(d))
            # The first rep of a town lives at its centre; the others where their share of the
            # accounts is (a city's reps live across the city): homes stacked on one point
            # would box each other's territories in.
            homes.append(c if j in taken else cand[j])
            taken.add(j)
            home_prov.append(code)
    homes_arr = np.array(homes)
    # Spread reps a little so maps stay readable.
    homes_arr = homes_arr + rng.normal(0.0, 0.01, homes_arr.shape)
    frame = pd.DataFrame({
        "id": [f"R{i + 1:04d}" for i in range(len(homes_arr))],
        "home_lon": np.round(homes_arr[:, 0], 6), "home_lat": np.round(homes_arr[:, 1], 6),
        "province": home_prov,
    })
    return Reps.from_frame(frame, allow_outside_china=True)


def _weighted_kmeans(xy: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator,
                     iterations: int = 25) -> np.ndarray:
    """Weighted k-means (weighted random start) on lon/lat scaled by cos(latitude); centres."""
    if k >= len(xy):
        extra = xy[rng.integers(0, len(xy), size=k - len(xy))] if k > len(xy) else xy[:0]
        return np.vstack([xy, extra])
    scale = np.cos(np.radians(float(np.mean(xy[:, 1]))))
    pts = np.column_stack([xy[:, 0] * scale, xy[:, 1]])
    w = np.maximum(np.asarray(w, dtype=float), 1e-12)
    # Homes only need to sit near workload: a weighted sample of 40 points per rep keeps the
    # cost linear in reps for 10^6 accounts without moving the centres noticeably.
    if len(pts) > 40 * k:
        pick = rng.choice(len(pts), size=40 * k, replace=False, p=w / w.sum())
        pts, w = pts[pick], np.ones(len(pick))
    first = rng.choice(len(pts), size=k, replace=False, p=w / w.sum())
    c_arr = pts[first]
    for _ in range(iterations):
        _, lab = cKDTree(c_arr).query(pts)
        sw = np.bincount(lab, weights=w, minlength=k)
        new = np.column_stack([np.bincount(lab, weights=w * pts[:, 0], minlength=k),
                               np.bincount(lab, weights=w * pts[:, 1], minlength=k)])
        empty = sw == 0
        new[~empty] /= sw[~empty, None]
        new[empty] = c_arr[empty]
        if np.allclose(new, c_arr):
            break
        c_arr = new
    return np.column_stack([c_arr[:, 0] / scale, c_arr[:, 1]])
