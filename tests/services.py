"""The rule for tests that need a service (marked ``servers``, ``s3``, ``browser``): skip with the reason when
the service is absent, so that ``pytest`` works on a laptop; fail instead under ``PIIPORT_REQUIRE_SERVICES=1``,
which ``.ci/run`` sets, so that CI never passes by skipping."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE = "PIIPORT_REQUIRE_SERVICES"


def service_missing(reason: str) -> NoReturn:
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason} ({REQUIRE}=1 requires it)", pytrace=False)
    pytest.skip(f"{reason} (set {REQUIRE}=1 to fail instead)")
