"""Sphinx configuration of pgtorchrl's documentation site.

    pip install -c constraints.txt -e ".[docs]"
    sphinx-build -W --keep-going -n docs docs/_build/html     # what .ci/run runs

The API reference is generated from the docstrings (autodoc, autosummary), the spec reference from
the registries (``docs/_ext/spec_reference.py``), and the benchmark pages include the committed
result files under ``benchmarks/results/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))

import pgtorchrl  # noqa: E402 (after the path)

project = "pgtorchrl"
author = "the pgtorchrl developers"
copyright = "2026, the pgtorchrl developers"
release = version = pgtorchrl.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax served from the site itself: the maths renders offline
    "sphinx.ext.viewcode",
    "myst_parser",
    "spec_reference",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
myst_enable_extensions = ["colon_fence", "dollarmath", "amsmath"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"pgtorchrl {release}"
html_static_path: list[str] = []

autosummary_generate = True
autosummary_imported_members = False
autosummary_ignore_module_all = False  # a module page lists exactly its __all__
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"  # a type beside each documented parameter, no type-only entries
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False  # an undocumented override (a gymnasium env's step) stays undocumented
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# Cross-references are checked (-n): every reference into pgtorchrl must resolve. References into
# other projects (torch, TorchRL, TensorDict, numpy, pydantic, MLflow, the standard library ...)
# are not checked: their inventories would be fetched over the network at every build.
nitpick_ignore_regex = [
    (r"py:.*", r"(?!pgtorchrl\b).*"),
    # private names (``_AcceptedKeys``, ``_ReturnWeighted``) are not part of the API reference
    (r"py:.*", r"pgtorchrl\..*\._\w+.*"),
    # a spec section's generated models (``env:gym``, ``optim:adam``): the spec reference lists them
    (r"py:class", r"pgtorchrl\.config\.registry\.\w+:.*"),
]


def _init_signature(app, what, name, obj, options, signature, return_annotation):
    """TorchRL's ``LossModule`` classes have a metaclass whose ``__call__(*args, **kwargs)`` autodoc
    would show as the class's signature: show their ``__init__``'s instead."""
    import inspect

    if what == "class" and signature == "(*args, **kwargs)" and "__init__" in vars(obj):
        params = list(inspect.signature(obj.__init__).parameters.values())[1:]  # less self
        bare = inspect.Signature([p.replace(annotation=inspect.Parameter.empty) for p in params])
        return str(bare), None  # the types are in the description, as for every other signature
    return None


def setup(app):
    app.connect("autodoc-process-signature", _init_signature)
