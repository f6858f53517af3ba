"""Sphinx configuration: MyST Markdown pages, the API reference from the docstrings, the CLI from click."""

import aiida_mlip_trainer

project = "aiida-mlip-trainer"
author = "aiida-mlip-trainer developers"
release = aiida_mlip_trainer.__version__
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode", "sphinx_click"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = "aiida-mlip-trainer"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# The AiiDA base classes bring their own (sometimes unparsable) docstrings: document what this package defines.
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
