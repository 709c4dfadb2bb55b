"""Sphinx extension of the sklearn-ntk docs.

* ``.. activation-table::`` renders one row per activation of
  :func:`sklearn_ntk.activations.available`, read at build time from the
  activation classes themselves (their fields, docstrings, dual and Hermite
  implementations and homogeneity), so the table cannot drift from the code.
* ``.. benchmark-results::`` renders the Markdown reports
  ``benchmarks/results*.md`` (headings, paragraphs, lists and pipe tables, the
  subset the benchmark scripts write) without a Markdown parser; a report that
  does not exist yet gives a short note instead of an error.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import MISSING, fields
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective


def _params(cls: type) -> str:
    out = []
    for f in fields(cls):
        if not f.init:
            continue
        default = "" if f.default is MISSING else f"={f.default!r}"
        out.append(f"``{f.name}{default}``")
    return ", ".join(out) if out else "--"


def _formula(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    first = doc.split("\n\n")[0]
    return " ".join(line.strip() for line in first.splitlines())


def _overrides(cls: type, name: str, bases: tuple[type, ...]) -> bool:
    impl = getattr(cls, name)
    return all(impl is not getattr(b, name) for b in bases)


def activation_rows() -> list[dict[str, str]]:
    """One dict per canonical activation (aliases folded into their row)."""
    from sklearn_ntk import activations as A

    names = A.available()
    canonical: dict[type, dict[str, str]] = {}
    for name in names:
        act = A.get(name)
        cls = type(act)
        if cls in canonical:
            canonical[cls]["aliases"].append(name)
            continue
        quad_base = getattr(A, "_Quadrature", None)
        bases = tuple(b for b in (A.Activation, quad_base) if b is not None)
        has_pointwise = True
        try:
            act(0.0)
        except TypeError:
            has_pointwise = False
        if not has_pointwise:
            dual = "closed form (dual only)"
        elif _overrides(cls, "_dual", bases):
            dual = "closed form"
        else:
            dual = "numerical"
        hermite = (
            "closed form"
            if _overrides(cls, "_hermite", (A.Activation,))
            else ("quadrature")
        )
        hom = act.homogeneous_degree
        if any(f.name == "degree" for f in fields(cls)):
            # The homogeneity may depend on the parameter: probe degree 2.
            hom_text = (
                "``degree``"
                if A.get(name, degree=2).homogeneous_degree == 2
                else "only for ``degree`` <= 1"
            )
        else:
            hom_text = "no" if hom is None else str(hom)
        canonical[cls] = {
            "name": name,
            "aliases": [],
            "class": cls.__name__,
            "params": _params(cls),
            "formula": _formula(cls),
            "dual": dual,
            "hermite": hermite,
            "homogeneous": hom_text,
        }
    return list(canonical.values())


class ActivationTable(SphinxDirective):
    """Render the activation table as a ``list-table``."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        rows = activation_rows()
        lines = [
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 12 22 40 14 10 8",
            "   :class: activation-table",
            "",
            "   * - name",
            "     - parameters (defaults)",
            "     - definition",
            "     - dual kernel",
            "     - Hermite ``a_n(r)``",
            "     - homogeneous degree",
        ]
        for r in rows:
            name = f"``{r['name']}``"
            if r["aliases"]:
                name += " (alias " + ", ".join(f"``{a}``" for a in r["aliases"]) + ")"
            cls_ref = f":class:`~sklearn_ntk.activations.{r['class']}`"
            lines += [
                f"   * - {name}",
                f"     - {r['params']}",
                f"     - {r['formula']} ({cls_ref})",
                f"     - {r['dual']}",
                f"     - {r['hermite']}",
                f"     - {r['homogeneous']}",
            ]
        lines += [
            "   * - any callable",
            "     - ``fn``, ``derivative=None``, ``kinks=()``",
            "     - wrapped in :class:`~sklearn_ntk.activations.Numerical`",
            "     - numerical",
            "     - quadrature",
            "     - no",
        ]
        container = nodes.container()
        self.state.nested_parse(
            StringList(lines, source="activation-table"), 0, container
        )
        return container.children


# --------------------------------------------------------------------------
# Benchmark reports: a small Markdown -> reST converter
# --------------------------------------------------------------------------
_CODE = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def _escape(text: str) -> str:
    return re.sub(r"([\\*_`|])", r"\\\1", text)


def md_inline(text: str) -> str:
    """Markdown inline markup (code, links, bold) to reST, everything else escaped."""
    out, pos = [], 0
    tokens = []
    for rx, kind in ((_CODE, "code"), (_LINK, "link"), (_BOLD, "bold")):
        for m in rx.finditer(text):
            tokens.append((m.start(), m.end(), kind, m))
    tokens.sort()
    for start, end, kind, m in tokens:
        if start < pos:
            continue  # overlaps an earlier token (e.g. a link inside code)
        out.append(_escape(text[pos:start]))
        if kind == "code":
            code = m.group(1).strip()
            out.append(f"\\ ``{code}``\\ " if code else "")
        elif kind == "link":
            out.append(f"\\ `{_escape(m.group(1))} <{m.group(2)}>`__\\ ")
        else:
            out.append(f"\\ **{_escape(m.group(1))}**\\ ")
        pos = end
    out.append(_escape(text[pos:]))
    return "".join(out).strip() or "--"


def _cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return [c.strip() for c in line.split("|")]


def markdown_to_rst(text: str) -> list[str]:
    """Convert the Markdown subset of the benchmark reports to reST lines."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
            continue
        if stripped.startswith("```"):
            block = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                block.append(lines[i])
                i += 1
            i += 1
            out += ["::", ""] + [f"   {b}" for b in block] + [""]
            continue
        if stripped.startswith("#"):
            title = stripped.lstrip("#").strip()
            out += [f".. rubric:: {md_inline(title)}", ""]
            i += 1
            continue
        if stripped.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                cells = _cells(lines[i])
                if not all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c):
                    rows.append(cells)
                i += 1
            width = max(len(r) for r in rows)
            out += [
                ".. list-table::",
                "   :header-rows: 1",
                "   :class: benchmark-table",
                "",
            ]
            for r in rows:
                r = r + [""] * (width - len(r))
                out.append(f"   * - {md_inline(r[0])}")
                out += [f"     - {md_inline(c)}" for c in r[1:]]
            out.append("")
            continue
        if re.match(r"^\s*([-*+]|\d+\.)\s+", line):
            while i < len(lines) and re.match(r"^\s*([-*+]|\d+\.)\s+", lines[i]):
                item = re.sub(r"^\s*([-*+]|\d+\.)\s+", "", lines[i])
                i += 1
                while (
                    i < len(lines)
                    and lines[i].strip()
                    and lines[i].startswith((" ", "\t"))
                    and not re.match(r"^\s*([-*+]|\d+\.)\s+", lines[i])
                ):
                    item += " " + lines[i].strip()
                    i += 1
                out.append(f"* {md_inline(item)}")
            out.append("")
            continue
        para = [stripped]
        i += 1
        while (
            i < len(lines)
            and lines[i].strip()
            and not lines[i].strip().startswith(("#", "|", "```"))
            and not re.match(r"^\s*([-*+]|\d+\.)\s+", lines[i])
        ):
            para.append(lines[i].strip())
            i += 1
        out += [md_inline(" ".join(para)), ""]
    return out


class BenchmarkResults(SphinxDirective):
    """Render ``benchmarks/results*.md`` (``results.md`` first)."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        bench = Path(self.env.srcdir).parent / "benchmarks"
        files = sorted(
            bench.glob("results*.md"), key=lambda p: (p.name != "results.md", p.name)
        )
        lines: list[str] = []
        if not files:
            lines = [
                ".. note::",
                "",
                "   No benchmark report has been generated yet: run",
                "   ``python benchmarks/run_all.py`` (see ``benchmarks/``) and rebuild.",
                "",
            ]
        for path in files:
            self.env.note_dependency(str(path))
            lines += markdown_to_rst(path.read_text(encoding="utf-8"))
            lines += [f"*Source:* ``benchmarks/{path.name}``", ""]
        container = nodes.container()
        self.state.nested_parse(
            StringList(lines, source="benchmark-results"), 0, container
        )
        return container.children


# --------------------------------------------------------------------------
# Docstrings: bare ``name_`` words are reST references
# --------------------------------------------------------------------------
_FIELD = re.compile(r"^\s*[\w*, ]+ :( |$)")
_TRAILING = re.compile(r"(?<![\w`])([A-Za-z]\w*_)(?=[\s,.;:)\]]|$)")


def quote_trailing_underscores(app, what, name, obj, options, lines):
    """Quote words like ``n_features_in_`` in docstring prose.

    scikit-learn style docstrings mention fitted attributes in descriptions
    (``ndarray of shape (n_features_in_,)``), where reST reads ``word_`` as a
    link to a target that does not exist.  Parameter header lines and lines
    with inline literals are left alone.
    """
    for i, line in enumerate(lines):
        if "`" in line or ">>>" in line or "..." in line:
            continue
        if _FIELD.match(line):  # "name : type": quote in the type only
            head, sep, tail = line.partition(" : ")
            lines[i] = head + sep + _TRAILING.sub(r"``\1``", tail)
        else:
            lines[i] = _TRAILING.sub(r"``\1``", line)


def setup(app):
    # Before numpydoc (priority 500), so numpydoc parses the quoted text.
    app.connect("autodoc-process-docstring", quote_trailing_underscores, priority=400)
    app.add_directive("activation-table", ActivationTable)
    app.add_directive("benchmark-results", BenchmarkResults)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
