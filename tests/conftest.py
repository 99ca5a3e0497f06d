"""Suite-wide fixtures: both anyio backends always, and real tools required on CI."""

from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every async test on asyncio and on trio; a missing trio fails, never skips."""
    return str(request.param)


def require_tool(name: str) -> str:
    """Return the path of an external tool, or skip; on CI (FRAMING_REQUIRE_TOOLS=1) fail."""
    # Servers such as knotd live in sbin, which a user's PATH may leave out.
    path = shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin")
    if path is None:
        if os.environ.get("FRAMING_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{name} is not installed, and .ci/run promises it")
        pytest.skip(f"{name} is not installed")
    return path
