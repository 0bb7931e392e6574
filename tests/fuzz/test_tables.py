"""Fuzzed account and rep tables as frames: a typed error naming the row and field, or a table
read in full."""

from __future__ import annotations

import warnings

import pytest
from fuzz_helpers import account_tables, check_read, examples, frame_of, rep_tables
from hypothesis import given, settings

from territory.errors import DataQualityWarning
from territory.io import read_accounts, read_reps
from territory.model import Accounts, Reps

pytestmark = pytest.mark.timeout(600)


@settings(max_examples=examples(5))
@given(account_tables())
def test_accounts_from_frame(t) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        check_read(t, Accounts.from_frame, frame_of(t), lambda pos: pos)
        check_read(t, read_accounts, frame_of(t), lambda pos: pos)


@settings(max_examples=examples(5))
@given(rep_tables())
def test_reps_from_frame(t) -> None:
    check_read(t, Reps.from_frame, frame_of(t), lambda pos: pos)
    check_read(t, read_reps, frame_of(t), lambda pos: pos)
