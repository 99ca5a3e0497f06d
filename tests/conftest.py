"""Suite-wide fixtures: both anyio backends always, both framer implementations, tools on CI."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from framing import _accel


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every async test on asyncio and on trio; a missing trio fails, never skips."""
    return str(request.param)


def on_ci() -> bool:
    """Whether this run must not skip what it needs (.ci/run sets FRAMING_REQUIRE_TOOLS=1)."""
    return os.environ.get("FRAMING_REQUIRE_TOOLS") == "1" or bool(os.environ.get("CI"))


@pytest.fixture(params=["c", "python"])
def implementation(request: pytest.FixtureRequest) -> Iterator[str]:
    """Build the framers of a test with the C accelerator (``c``) or in pure Python.

    Used by every framer test module (``pytestmark = pytest.mark.usefixtures(
    "implementation")``), so each test runs on both. Without the extension the
    ``c`` case skips, except on CI, where it fails (test_accel.py also checks
    that CI built it).
    """
    if request.param == "c" and not _accel.available:
        if on_ci():
            pytest.fail("the C accelerator framing._speedups is not built on CI")
        pytest.skip("the C accelerator framing._speedups is not built")
    with _accel.extensions(request.param == "c"):
        yield str(request.param)


def require_tool(name: str) -> str:
    """Return the path of an external tool, or skip; on CI (FRAMING_REQUIRE_TOOLS=1) fail."""
    # Servers such as knotd live in sbin, which a user's PATH may leave out.
    path = shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin")
    if path is None:
        if os.environ.get("FRAMING_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{name} is not installed, and .ci/run promises it")
        pytest.skip(f"{name} is not installed")
    return path
