"""The Dask executor on a real LocalCluster: same results as the local pool, killed workers survived.

One cluster for the module (2 worker processes, 1 thread each). Its scheduler gives up on a task
at the first worker death (``allowed-failures: 0``), so a killed worker surfaces as
``KilledWorker`` and exercises our own resubmission, not only distributed's.
"""

from __future__ import annotations

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

import dask  # noqa: E402  (after the skip: only with the extra)
from executor_tasks import die_once, fail_on_three, square  # noqa: E402

from territory import synth  # noqa: E402
from territory.errors import InvalidInputError  # noqa: E402
from territory.executor import (  # noqa: E402
    DaskExecutor,
    LocalExecutor,
    TaskOutcome,
    make_executor,
)
from territory.routes import plan_routes  # noqa: E402
from territory.travel import pairwise_km  # noqa: E402


@pytest.fixture(scope="module")
def dask_ex():
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        ex = DaskExecutor(n_workers=2, dashboard_address=None)
    with ex:
        yield ex


def wait_for_workers(ex: DaskExecutor, n: int = 2) -> None:
    # A killed worker is restarted by its nanny; later tests want both back.
    ex.client.wait_for_workers(n, timeout=60)


# -- toy functions ---------------------------------------------------------------------------

@pytest.mark.parametrize("max_in_flight", [None, 2])
def test_results_by_key_and_progress(dask_ex, max_in_flight) -> None:
    ex = DaskExecutor(dask_ex.client, max_in_flight=max_in_flight)
    seen: list[tuple[int, int]] = []
    out = ex.map_tasks(square, list(range(6)), keys=[f"k{i}" for i in range(6)],
                       progress=lambda d, t: seen.append((d, t)))
    assert out.results == {f"k{i}": i * i for i in range(6)}
    assert not out.errors
    assert out.attempts == {f"k{i}": 1 for i in range(6)}
    assert seen == [(d, 6) for d in range(1, 7)]


def test_same_keys_twice_do_not_reuse_results(dask_ex) -> None:
    # plan() routes the same reps in every round: a new call must never get an old result.
    a = dask_ex.map_tasks(square, [2, 3], keys=["x", "y"])
    b = dask_ex.map_tasks(square, [4, 5], keys=["x", "y"])
    assert a.results == {"x": 4, "y": 9}
    assert b.results == {"x": 16, "y": 25}


def test_failing_task_is_retried_then_reported(dask_ex) -> None:
    ex = DaskExecutor(dask_ex.client, retries=2, max_in_flight=2)
    seen: list[tuple[int, int]] = []
    out = ex.map_tasks(fail_on_three, [1, 2, 3, 4], keys=["a", "b", "c", "d"],
                       progress=lambda d, t: seen.append((d, t)))
    assert out.results == {"a": 1, "b": 2, "d": 4}
    assert set(out.errors) == {"c"}
    assert "ValueError: three is bad" in out.errors["c"]
    assert "fail_on_three" in out.errors["c"]  # the remote traceback
    assert out.attempts == {"a": 1, "b": 1, "c": 3, "d": 1}
    assert seen[-1] == (4, 4) and len(seen) == 4


def test_empty_and_bad_keys(dask_ex) -> None:
    assert dask_ex.map_tasks(square, [], keys=[]) == TaskOutcome()
    with pytest.raises(ValueError, match="one key per task"):
        dask_ex.map_tasks(square, [1, 2], keys=["a"])
    with pytest.raises(ValueError, match="unique"):
        dask_ex.map_tasks(square, [1, 2], keys=["a", "a"])


def test_from_address_and_client_left_open(dask_ex) -> None:
    address = dask_ex.client.scheduler.address
    with DaskExecutor(address) as ex:
        assert ex.map_tasks(square, [7], keys=["k"]).results == {"k": 49}
    # Closing an executor made from someone's client leaves that client alone.
    DaskExecutor(dask_ex.client).close()
    assert dask_ex.client.status == "running"
    with make_executor(backend="dask", address=address) as ex:
        assert isinstance(ex, DaskExecutor)
        assert ex.map_tasks(square, [8], keys=["k"]).results == {"k": 64}


def test_make_executor_validates() -> None:
    assert isinstance(make_executor(2), LocalExecutor)
    with pytest.raises(InvalidInputError, match="backend"):
        make_executor(2, backend="spark")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="workers"):
        make_executor(0, backend="dask")
    with pytest.raises(InvalidInputError, match="LocalCluster"):
        DaskExecutor("tcp://127.0.0.1:1", n_workers=2)


# -- killed workers --------------------------------------------------------------------------

def test_killed_worker_is_retried_and_nothing_lost(dask_ex, tmp_path) -> None:
    wait_for_workers(dask_ex)
    tasks = [(i, str(tmp_path)) for i in range(5)]
    out = dask_ex.map_tasks(die_once, tasks, keys=list(range(5)))
    assert (tmp_path / "died-2").exists()
    assert out.results == {i: i + 100 for i in range(5)}
    assert not out.errors
    # KilledWorker came back to us and was submitted again. (Tasks queued on the same worker
    # may have been declared killed too, and were retried the same way.)
    assert out.attempts[2] == 2


def test_killed_worker_without_retries_is_reported_not_lost(dask_ex, tmp_path) -> None:
    wait_for_workers(dask_ex)
    ex = DaskExecutor(dask_ex.client, retries=0)
    tasks = [(i, str(tmp_path)) for i in range(4)]
    out = ex.map_tasks(die_once, tasks, keys=list(range(4)))
    assert set(out.results) | set(out.errors) == {0, 1, 2, 3}
    assert not set(out.results) & set(out.errors)
    assert "worker process died" in out.errors[2]
    assert out.attempts[2] == 1


# -- the routing, same answers as the local pool ---------------------------------------------

@pytest.fixture(scope="module")
def scenario():
    return synth.china_scenario(160, n_reps=4, seed=4, provinces=["31"])


@pytest.fixture(scope="module")
def assignment(scenario):
    d = pairwise_km(scenario.accounts.lonlat, scenario.reps.home_lonlat)
    return dict(zip(scenario.accounts.ids, scenario.reps.ids[d.argmin(1)], strict=True))


# The stopping rule is the iteration count; the time limit is far off even on a busy machine.
ROUTE_OPTS = dict(time_limit_s=60.0, seed=0, max_iterations=200)


def test_plan_routes_on_dask_equals_local_pool(dask_ex, scenario, assignment) -> None:
    wait_for_workers(dask_ex)
    seen: list[tuple[int, int]] = []
    on_dask = plan_routes(scenario, assignment=assignment, executor=dask_ex,
                          progress=lambda d, t: seen.append((d, t)), **ROUTE_OPTS)
    local = plan_routes(scenario, assignment=assignment, executor=LocalExecutor(workers=2),
                        **ROUTE_OPTS)
    assert not on_dask.failed and not local.failed
    assert len(on_dask.reps) == 4 and len(on_dask.schedule) > 100
    assert (on_dask.reps["stop_reason"] != "time_limit").all()
    assert seen[-1] == (4, 4)
    pd.testing.assert_frame_equal(on_dask.schedule, local.schedule)
    pd.testing.assert_frame_equal(on_dask.days, local.days)
    pd.testing.assert_frame_equal(on_dask.dropped, local.dropped)
    pd.testing.assert_frame_equal(on_dask.reps.drop(columns="runtime_s"),
                                  local.reps.drop(columns="runtime_s"))


@pytest.mark.slow
def test_plan_on_dask_equals_local_pool(dask_ex) -> None:
    from territory.planning import plan

    wait_for_workers(dask_ex)
    small = synth.china_scenario(n_accounts=100, n_reps=4, seed=4, provinces=["33"])
    opts = dict(partition_time_s=3.0, route_time_s=60.0, max_rounds=1, seed=3,
                max_iterations=200)
    on_dask = plan(small, executor=dask_ex, **opts)
    local = plan(small, workers=2, **opts)
    assert (on_dask.territories.rep_of_account == local.territories.rep_of_account).all()
    pd.testing.assert_frame_equal(on_dask.routes.schedule, local.routes.schedule)
    pd.testing.assert_series_equal(on_dask.simulated_h, local.simulated_h)


# -- the command line ------------------------------------------------------------------------

def test_route_command_on_a_scheduler(dask_ex, scenario, assignment, tmp_path) -> None:
    from typer.testing import CliRunner

    from territory.cli import app
    from territory.io import write_accounts, write_reps

    write_accounts(scenario.accounts, tmp_path / "accounts.csv")
    write_reps(scenario.reps, tmp_path / "reps.csv")
    pd.DataFrame({"account_id": list(assignment), "rep_id": list(assignment.values())}).to_csv(
        tmp_path / "assignment.csv", index=False)
    args = ["route", str(tmp_path / "accounts.csv"), str(tmp_path / "reps.csv"),
            "--assignment", str(tmp_path / "assignment.csv"), "--time-limit", "1",
            "--out", str(tmp_path / "out")]
    wait_for_workers(dask_ex)
    result = CliRunner().invoke(app, [*args, "--scheduler", dask_ex.client.scheduler.address])
    assert result.exit_code == 0, result.output
    schedule = pd.read_csv(tmp_path / "out" / "schedule.csv", encoding="utf-8-sig")
    assert set(schedule["rep_id"]) == set(assignment.values())
    bad = CliRunner().invoke(app, [*args, "--executor", "spark"])
    assert bad.exit_code == 2
    assert "spark" in bad.output
