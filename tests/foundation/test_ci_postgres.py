"""CI must run the PostgreSQL half of the suite, not skip it."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text


def test_ci_runs_on_a_real_postgresql() -> None:
    """Under CI (or when required), PostgreSQL is configured, reachable, and really PostgreSQL."""
    required = (
        os.environ.get("CI") == "true" or os.environ.get("TELEGESTION_REQUIRE_POSTGRES") == "1"
    )
    url = os.environ.get("TELEGESTION_TEST_POSTGRES_URL", "")
    if not required and not url:
        pytest.skip("not under CI and no PostgreSQL configured")
    assert url, "CI must set TELEGESTION_TEST_POSTGRES_URL (see .ci/run)"
    assert os.environ.get("TELEGESTION_REQUIRE_POSTGRES") == "1" or not required
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("select version()")).scalar_one()
    finally:
        engine.dispose()
    assert version.startswith("PostgreSQL")
