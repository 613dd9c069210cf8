"""Sphinx configuration: Markdown (MyST) pages, no network, tables generated from the code.

Build: ``python -m sphinx -W -b html docs docs/_build/html``.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # build from a checkout even when the package is not installed

from facility_apis import __version__  # noqa: E402
from facility_apis.docgen import write_generated  # noqa: E402

project = "facility_apis"
author = "facility_apis contributors"
copyright = "facility_apis contributors"
version = release = __version__

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
# generated/ holds table fragments pulled into the pages with {include}; examples/ holds the code
# and schemas shown with {literalinclude}. Neither is a page of its own.
exclude_patterns = ["_build", "generated", "examples", "Thumbs.db", ".DS_Store"]

myst_heading_anchors = 3
myst_enable_extensions = ["deflist"]
# Nothing is fetched at build time: no intersphinx, no remote images.
html_theme = "alabaster"
html_theme_options = {"description": "Follow-up facility classes for SkyPortal", "fixed_sidebar": False}
html_show_sourcelink = False
pygments_style = "sphinx"


def _generate(app) -> None:
    write_generated(Path(app.srcdir) / "generated")


def setup(app):
    app.connect("builder-inited", _generate)
    return {"parallel_read_safe": True}
