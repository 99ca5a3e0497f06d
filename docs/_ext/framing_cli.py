"""A directive that shows ``framing <command> --help`` as the program prints it.

In a Markdown page::

    ```{framing-help} echo
    ```

The text comes from the command line's own parser at build time, so the options
listed in the guide are always the ones the program takes.
"""

from __future__ import annotations

import contextlib
import io
import os
from typing import ClassVar

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.application import Sphinx

from protocols.cli import main

#: The width the help is wrapped at, whatever the terminal building the docs.
COLUMNS = "88"


def help_text(command: str) -> str:
    """Return what ``framing <command> --help`` prints (``""``: the top-level help)."""
    argv = [command, "--help"] if command else ["--help"]
    out = io.StringIO()
    # A fixed width, and no colour (Python 3.14's argparse may add it).
    settings = {"COLUMNS": COLUMNS, "NO_COLOR": "1"}
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main(argv)
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value
    text = out.getvalue()
    if not text:
        raise ValueError(f"framing {command} --help printed nothing")
    return text


class FramingHelp(Directive):
    """``framing-help COMMAND``: a literal block with that command's ``--help``."""

    optional_arguments = 1
    has_content = False
    option_spec: ClassVar[dict[str, object]] = {}

    def run(self) -> list[nodes.Node]:
        """Render the help as a console block."""
        command = self.arguments[0] if self.arguments else ""
        text = help_text(command)
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def setup(app: Sphinx) -> dict[str, object]:
    """Register the directive."""
    app.add_directive("framing-help", FramingHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
