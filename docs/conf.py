"""Sphinx configuration: the user guide (Markdown, MyST) and the API reference (autodoc).

Build with ``make docs`` (warnings are errors); ``tests/test_docs.py`` runs the same
build, and every ``python`` block of the guide, so the docs cannot rot.
"""

from __future__ import annotations

import sys
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

HERE = Path(__file__).resolve().parent
# The project's own packages, importable without installing, and the local extension.
sys.path[:0] = [str(HERE.parent), str(HERE / "_ext")]

import framing  # noqa: E402 (after the path is set)

project = "framing"
author = "the framing authors"
copyright = "2026, the framing authors"
release = version = framing.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "myst_parser",
    "framing_cli",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# The docstrings are Google style (ruff enforces it): napoleon reads them.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
# Keep the aliases' names in signatures instead of expanding their unions.
autodoc_type_aliases = {"BytesLike": "framing.base.BytesLike"}

# ``##`` headings get anchors, so pages can link to a section: [text](page.md#anchor).
myst_heading_anchors = 3
myst_enable_extensions = ["deflist"]

html_theme = "alabaster"
html_title = f"framing {release}"


# A module's ``__all__`` may re-export names defined elsewhere in the project
# (``framing.stream`` re-exports the timeouts of ``framing.errors``): document each
# name once, in the module that defines it. Autodoc reads a module's docstring
# before its members, so the module being documented is the last one seen there.
_documenting: list[str] = [""]


def _note_module(app: object, what: str, name: str, *args: object) -> None:
    if what == "module":
        _documenting[0] = name


def _skip_reexport(app: object, what: str, name: str, obj: object, *_: object) -> bool | None:
    home = getattr(obj, "__module__", None)
    if (
        what == "module"
        and isinstance(home, str)
        and home.startswith(("framing", "protocols"))
        and home != _documenting[0]
    ):
        return True
    return None


def _keep_attribute_prose(app: object, what: str, *args: object) -> None:
    r"""Keep napoleon from reading a data or attribute docstring's first words as its type.

    Google style lets an attribute's docstring begin ``type: description``; this
    project never writes that (types come from the annotations), but napoleon would
    turn "The proxy's own address: what..." into a type "The proxy's own address".
    An escaped blank first line (``\ ``, nothing once rendered) leaves it no
    colon to split on. Runs before napoleon (priority 400 < 500).
    """
    lines = args[-1]  # after name, obj and options
    assert isinstance(lines, list)
    if what in {"attribute", "data", "property"} and lines and ":" in lines[0]:
        lines.insert(0, "\\ ")


def _home_of(target: str) -> str | None:
    """Where ``target`` (``module.Name[.attr]``) is documented, if it is a re-export."""
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is not None:
            break
    else:
        return None
    if not module.__name__.startswith(("framing", "protocols")):
        return None
    home = getattr(getattr(module, parts[cut], None), "__module__", None)
    if not isinstance(home, str) or home == module.__name__:
        return None
    return ".".join([home, *parts[cut:]])


def _resolve_reexport(
    app: Sphinx, env: BuildEnvironment, node: addnodes.pending_xref, contnode: nodes.TextElement
) -> nodes.reference | None:
    """Resolve a re-exported name to where it is defined and documented.

    ``framing.FramingError``, as the docstrings write it, is documented as
    ``framing.errors.FramingError``; a bare ``FramedStream`` in a module that imports
    it is that module's import.
    """
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    candidates = [target]
    current = node.get("py:module")
    if current:
        candidates.append(f"{current}.{target}")
    domain = env.get_domain("py")
    for candidate in candidates:
        home = _home_of(candidate)
        if home is not None:
            found = domain.resolve_xref(
                env, node["refdoc"], app.builder, node["reftype"], home, node, contnode
            )
            if found is not None:
                return found
    return None


def setup(app: Sphinx) -> None:
    """Connect the re-export filter and resolver."""
    app.connect("autodoc-process-docstring", _note_module)
    app.connect("autodoc-process-docstring", _keep_attribute_prose, priority=400)
    app.connect("autodoc-skip-member", _skip_reexport)
    app.connect("missing-reference", _resolve_reexport)
