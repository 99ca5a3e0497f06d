"""The documentation: every guide example runs as written, and the Sphinx build is clean.

Every ```` ```python ```` block of a guide page (``docs/index.md``, ``docs/guide/*.md``)
is compiled and run as a program of its own (``__name__ == "__main__"``). A block
that calls ``anyio.run(main)`` runs once on asyncio and once on trio: ``anyio.run``
is replaced, for the block only, by one that picks the backend and bounds the run
with ``anyio.fail_after``. A block followed directly by a ```` ```text ```` block
must print exactly that text. A block that is not meant to run (a shell session,
a zone file) carries another language tag; an unknown tag fails, so that a
``py`` or ``python3`` block cannot slip past these tests.

The build test runs ``sphinx-build -W --keep-going`` into a temporary directory,
as ``make docs`` does, so the docs cannot rot on CI.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import pkgutil
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

import framing
import protocols

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GUIDE_PAGES = [DOCS / "index.md", *sorted((DOCS / "guide").glob("*.md"))]

# anyio.run itself, before any test replaces it.
REAL_RUN = anyio.run
# Seconds one run of one example may take, servers and clients included.
EXAMPLE_TIMEOUT = 30.0
# Seconds the whole Sphinx build may take on a busy two-core machine.
BUILD_TIMEOUT = 300.0

# Fence tags a guide page may use: python runs; the rest are shown, never run.
RUN = "python"
SHOWN = frozenset({"console", "sh", "text", "none", "ini"})
# MyST directives written as fences.
DIRECTIVES = frozenset({"{toctree}", "{framing-help}", "{literalinclude}", "{eval-rst}"})

FENCE = re.compile(
    r"^(?P<fence>`{3,})(?P<tag>[^\n`]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S
)


@dataclass(frozen=True)
class Block:
    """One fenced block of a guide page."""

    page: Path
    line: int  # of the block's first line of code, 1-based
    tag: str
    code: str
    output: str | None  # the ```text block right after it, if any

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(DOCS)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, with the text block that follows each."""
    text = page.read_text()
    found: list[Block] = []
    matches = list(FENCE.finditer(text))
    for i, match in enumerate(matches):
        tag = match["tag"].strip().split(" ")[0]
        output = None
        if i + 1 < len(matches):
            after = matches[i + 1]
            between = text[match.end() : after.start()]
            if not between.strip() and after["tag"].strip() == "text":
                output = after["body"]
        line = text.count("\n", 0, match.start("body")) + 1
        found.append(Block(page, line, tag, match["body"], output))
    return found


def python_blocks() -> list[Block]:
    return [b for page in GUIDE_PAGES for b in blocks(page) if b.tag == RUN]


def cases() -> list[Any]:
    out = []
    for block in python_blocks():
        if "anyio.run(" in block.code:
            for backend in ("asyncio", "trio"):
                out.append(pytest.param(block, backend, id=f"{block.name}-{backend}"))
        else:
            out.append(pytest.param(block, None, id=block.name))
    return out


def run_block(block: Block, backend: str | None, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run ``block`` as a program; return what it printed."""
    runs: list[str] = []

    def run_on_backend(func: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        assert backend is not None, "anyio.run in a block not run per backend"
        assert "backend" not in kwargs, "a guide example picks no backend: the test runs both"

        async def bounded() -> Any:
            with anyio.fail_after(EXAMPLE_TIMEOUT):
                return await func(*args)

        runs.append(backend)
        return REAL_RUN(bounded, backend=backend)

    monkeypatch.setattr(anyio, "run", run_on_backend)
    # Leading newlines make a traceback's line numbers the page's own.
    source = "\n" * (block.line - 1) + block.code
    code = compile(source, str(block.page), "exec")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {"__name__": "__main__"})
    if backend is not None:
        assert runs == [backend], f"{block.name}: anyio.run was called {len(runs)} times"
    return out.getvalue()


@pytest.mark.parametrize(("block", "backend"), cases())
def test_guide_example_runs(
    block: Block, backend: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    printed = run_block(block, backend, monkeypatch)
    if block.output is not None:
        assert printed == block.output, f"{block.name} printed {printed!r}"


def test_guide_examples_are_found() -> None:
    """The extraction sees the pages and their blocks (an empty list would pass vacuously)."""
    pages = {b.page for b in python_blocks()}
    guide = set(GUIDE_PAGES) - {DOCS / "index.md"}
    assert guide, "no guide pages in docs/guide"
    assert pages >= guide, f"pages without a python example: {sorted(map(str, guide - pages))}"


def test_guide_blocks_have_known_tags() -> None:
    for page in GUIDE_PAGES:
        for block in blocks(page):
            assert block.tag in {RUN, *SHOWN, *DIRECTIVES}, (
                f"{block.name}: fence tag {block.tag!r}: use python (run by the tests) "
                f"or one of {sorted(SHOWN)} (shown only)"
            )


def test_block_runner_fails_a_failing_example(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner reports an example's failure, on either backend (it is not vacuous)."""
    code = "import anyio\n\nasync def main() -> None:\n    assert 1 == 2\n\nanyio.run(main)\n"
    block = Block(DOCS / "guide" / "x.md", 1, RUN, code, None)
    for backend in ("asyncio", "trio"):
        with pytest.raises(AssertionError):
            run_block(block, backend, monkeypatch)


def test_block_runner_runs_the_named_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    code = (
        "import anyio, sniffio\n\n"
        "async def main() -> None:\n"
        "    print(sniffio.current_async_library())\n\n"
        "anyio.run(main)\n"
    )
    block = Block(DOCS / "guide" / "x.md", 1, RUN, code, None)
    assert run_block(block, "asyncio", monkeypatch) == "asyncio\n"
    assert run_block(block, "trio", monkeypatch) == "trio\n"


def test_api_reference_covers_every_module() -> None:
    """Each module of the library and of the applications has a page that runs automodule."""
    pages = "\n".join(p.read_text() for p in (DOCS / "api").glob("*.rst"))
    documented = set(re.findall(r"^\.\. automodule:: (\S+)", pages, flags=re.M))
    modules = {"framing", "protocols"}
    for package in (framing, protocols):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if not info.name.rsplit(".", 1)[-1].startswith("_"):
                modules.add(info.name)
    missing = modules - documented - {"protocols"}  # the bare package has nothing to show
    assert missing == set(), "modules missing from docs/api"
    for name in documented:
        importlib.import_module(name)


def test_docs_build_with_warnings_as_errors(tmp_path: Path) -> None:
    """``make docs``: the guide and the API reference build with no warning."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stdout}\n{result.stderr}"
    assert (tmp_path / "html" / "index.html").exists()
    assert (tmp_path / "html" / "api" / "stream.html").exists()
