"""The executor: results by key, retries, killed workers survived, nothing lost."""

from __future__ import annotations

import pytest
from executor_tasks import die_once, fail_on_three, pid, square

from territory.executor import LocalExecutor


@pytest.mark.parametrize("workers", [1, 2])
def test_results_by_key_and_progress(workers: int) -> None:
    seen = []
    out = LocalExecutor(workers=workers).map_tasks(
        square, list(range(6)), keys=[f"k{i}" for i in range(6)],
        progress=lambda d, t: seen.append((d, t)))
    assert out.results == {f"k{i}": i * i for i in range(6)}
    assert not out.errors
    assert seen[-1] == (6, 6) and len(seen) == 6


@pytest.mark.parametrize("workers", [1, 2])
def test_failing_task_is_retried_then_reported(workers: int) -> None:
    out = LocalExecutor(workers=workers, retries=2).map_tasks(
        fail_on_three, [1, 2, 3, 4], keys=["a", "b", "c", "d"])
    assert out.results == {"a": 1, "b": 2, "d": 4}
    assert "three is bad" in out.errors["c"]
    assert out.attempts["c"] == 3


def test_killed_worker_is_survived(tmp_path) -> None:
    tasks = [(i, str(tmp_path)) for i in range(5)]
    out = LocalExecutor(workers=2, retries=1).map_tasks(die_once, tasks,
                                                        keys=list(range(5)))
    assert out.results == {i: i + 100 for i in range(5)}
    assert not out.errors
    assert (tmp_path / "died-2").exists()
    assert out.attempts[2] == 2


def test_killed_worker_without_retries_is_reported_not_lost(tmp_path) -> None:
    tasks = [(i, str(tmp_path)) for i in range(4)]
    out = LocalExecutor(workers=2, retries=0).map_tasks(die_once, tasks,
                                                        keys=list(range(4)))
    assert set(out.results) | set(out.errors) == {0, 1, 2, 3}
    assert "died" in out.errors[2]


def test_kept_pool_reuses_its_workers_until_closed(tmp_path) -> None:
    ex = LocalExecutor(workers=2, keep_pool=True)
    try:
        first = set(ex.map_tasks(pid, range(6), keys=list(range(6))).results.values())
        second = set(ex.map_tasks(pid, range(6), keys=list(range(6))).results.values())
        assert first == second and len(first) <= 2
        # A worker killed in a kept pool: the tasks are retried on a fresh pool, which the
        # next call keeps using.
        out = ex.map_tasks(die_once, [(i, str(tmp_path)) for i in range(4)], keys=list(range(4)))
        assert out.results == {i: i + 100 for i in range(4)}
        third = set(ex.map_tasks(pid, range(6), keys=list(range(6))).results.values())
        assert not third & first
    finally:
        ex.close()
    assert ex._kept is None
    # Without keep_pool every call has fresh workers.
    plain = LocalExecutor(workers=2)
    a = set(plain.map_tasks(pid, range(4), keys=list(range(4))).results.values())
    b = set(plain.map_tasks(pid, range(4), keys=list(range(4))).results.values())
    assert not a & b


def test_unguarded_script_falls_back_to_inline_with_a_warning(tmp_path) -> None:
    # A script without `if __name__ == "__main__"` kills every worker at start-up; the tasks
    # must still all run (here, in the script's own process) and the user be told why.
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(
        "import operator\n"
        "from territory.executor import LocalExecutor\n"
        "out = LocalExecutor(workers=2).map_tasks(operator.neg, [1, 2, 3], keys=['a', 'b', 'c'])\n"
        "print(sorted(out.results.items()), sorted(out.errors))\n",
        encoding="utf-8")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "[('a', -1), ('b', -2), ('c', -3)] []" in run.stdout
    assert "__main__" in run.stderr


class _Recorder:
    """An executor that keeps the tasks it is given and runs them in this process."""

    def __init__(self) -> None:
        self.tasks: list = []

    def map_tasks(self, fn, tasks, *, keys, progress=None):
        self.tasks.extend(tasks)
        return LocalExecutor(workers=1).map_tasks(fn, tasks, keys=keys, progress=progress)


def test_rep_tasks_carry_only_their_rep() -> None:
    # What a worker receives: the rep's own problem (its accounts' travel matrices, windows,
    # calendar), never the scenario, its frames or another rep's data.
    import io
    import pickle

    import pandas as pd

    from territory import synth
    from territory.model import Accounts, Calendar, Reps, Scenario
    from territory.routes import plan_routes
    from territory.travel import pairwise_km

    scenario = synth.china_scenario(240, n_reps=3, seed=4, provinces=["31"])
    nearest = pairwise_km(scenario.accounts.lonlat, scenario.reps.home_lonlat).argmin(1)
    recorder = _Recorder()
    plan_routes(scenario, assignment=dict(zip(scenario.accounts.ids,
                                              scenario.reps.ids[nearest], strict=True)),
                time_limit_s=5, max_iterations=50, executor=recorder)
    assert len(recorder.tasks) == 3

    class NoScenario(pickle.Pickler):
        def reducer_override(self, obj):
            if isinstance(obj, Scenario | Accounts | Reps | Calendar | pd.DataFrame):
                raise AssertionError(f"a task pickles a {type(obj).__name__}")
            return NotImplemented

    for task in recorder.tasks:
        buf = io.BytesIO()
        NoScenario(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(task)
        n = len(task.account_ids)
        assert task.problem.minutes.shape == (n + 1, n + 1)
        # Two (n+1)^2 float64 matrices (minutes, km) are most of it; the rest is per account.
        assert len(buf.getvalue()) < 2 * 8 * (n + 1) ** 2 + 400 * n + 10_000
