"""Shared fixtures: the real Presidio + spaCy detector (built once), real SQLite databases, real files."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Re-exported for test modules that still import them from conftest; new code imports from fixtures.
from fixtures import CUSTOMERS, EMPLOYEES, make_shop, raw_bytes_of_index  # noqa: F401

from discover.detector import Detector
from discover.index import Index
from discover.settings import ScanSettings, default_workers
from piiport.api import build_detector


def pytest_configure(config: pytest.Config) -> None:
    # Hypothesis caches what it learns of the code under ./.hypothesis: not in the checkout.
    try:
        from hypothesis.configuration import set_hypothesis_home_dir
    except ImportError:  # an environment from before the test extra had it: test_phones.py says so
        return
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / f"piiport-hypothesis-{os.getuid()}")


@pytest.fixture(autouse=True)
def _run_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own folder, so that a relative path (``exports``, ``.piiport``, or an
    ``s3://`` URL mistaken for a path) never writes into the checkout. Paths to the repository's
    own files are relative to the test file, never to the working directory."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def detector() -> Detector:
    # The same cached instance the CLI uses in-process, so CLI tests do not rebuild it.
    return build_detector()


@pytest.fixture(params=["1", "default"], ids=lambda w: f"workers={w}")
def workers(request: pytest.FixtureRequest) -> int:
    """Fault tests run with one worker and with the default count the CLI uses (one per core)."""
    return 1 if request.param == "1" else default_workers()


@pytest.fixture
def settings(workers: int) -> ScanSettings:
    return ScanSettings(workers=workers)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    idx = Index(f"sqlite:///{tmp_path / 'idx' / 'index.db'}")
    yield idx
    idx.close()


@pytest.fixture
def shop_db(tmp_path: Path) -> Path:
    return make_shop(tmp_path / "shop.db")
