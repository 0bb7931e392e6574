"""Fixtures shared by the whole test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

#: The shared data folder that sits next to the repository (``<repo>/../shared``). It is not part
#: of the repository, so tests that need it skip when it is absent.
SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``<repo>/../shared`` as a Path; skips the test when that folder does not exist."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"needs the shared data folder {SHARED_DIR}, which is absent")
    return SHARED_DIR
