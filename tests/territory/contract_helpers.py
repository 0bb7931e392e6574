"""Checks shared by the tests of the JSON contract (library, CLI and HTTP service)."""

from __future__ import annotations

from typing import Any

import jsonschema

from territory import contract


def validate(message: dict[str, Any], name: str) -> None:
    """Assert that ``message`` conforms to the shipped schema ``name`` (e.g. ``plan_result``)."""
    validator = jsonschema.Draft202012Validator(
        contract.load_schema(name), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(message)]
    assert not errors, errors[:5]
