"""Hypothesis profiles for the fuzz tests.

``ci`` (the default, used by ``make test``): few examples per test, so the fuzz tests take
well under a minute on two cores. ``long`` (``make fuzz``, ``HYPOTHESIS_PROFILE=long``): at
least 10,000 examples over ``tests/fuzz``. Each test scales the profile's ``max_examples`` by
its cost (``fuzz_helpers.examples``). No example database: a run depends only on the code, and
the failures found are kept as regression tests in ``test_regressions.py``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.filter_too_much,
                                      HealthCheck.function_scoped_fixture])
settings.register_profile("ci", max_examples=60, derandomize=True, **_COMMON)
settings.register_profile("long", max_examples=1000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
