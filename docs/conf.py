"""Sphinx configuration of the sklearn-ntk documentation.

Build (from the repository root, after ``pip install -e ".[docs]"``)::

    python -m sphinx -W -b html docs docs/_build

The gallery in ``examples/`` is executed at build time by sphinx-gallery.
Nothing is downloaded during the build (no intersphinx inventories).
"""

import os
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(ROOT))

import sklearn_ntk

# -- Project -------------------------------------------------------------------
project = "sklearn-ntk"
author = "sklearn-ntk developers"
copyright = "2024-2025, sklearn-ntk developers"
version = release = sklearn_ntk.__version__

# -- General -------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sknt_docs",  # docs/_ext/sknt_docs.py: the activation table
]

templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.codeobj.json",
]
root_doc = "index"
nitpicky = False
default_role = "literal"
pygments_style = "sphinx"

# -- autodoc / autosummary / numpydoc -------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options: dict = {}
autodoc_typehints = "none"  # numpydoc sections carry the types
autodoc_member_order = "bysource"

numpydoc_show_class_members = False  # autosummary templates list members
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set = set()

# -- sphinx-gallery -------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "ignore_pattern": r"__init__\.py",
    "plot_gallery": "True",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "min_reported_time": 0,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "backreferences_dir": "gen_modules/backreferences",
    "doc_module": ("sklearn_ntk",),
    "write_computation_times": True,
}

# Headless builds: silence the harmless "non-GUI backend" warning of plt.show().
warnings.filterwarnings(
    "ignore", category=UserWarning, message=".*non-interactive.*|.*non-GUI backend.*"
)
os.environ.setdefault("MPLBACKEND", "Agg")

# -- HTML -----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-ntk {release}"
html_static_path: list[str] = []  # no custom assets
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 7,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_sidebars = {"index": [], "getting_started": []}
html_show_sourcelink = True

# MathJax is loaded by the browser when a page is viewed (not at build time).
mathjax3_config = {"tex": {"macros": {"R": "\\mathbb{R}", "E": "\\mathbb{E}"}}}
