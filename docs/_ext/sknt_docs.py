"""Sphinx extension of the sklearn-ntk docs: the activation table.

``.. activation-table::`` renders one row per activation of
:func:`sklearn_ntk.activations.available`, read at build time from the
activation classes themselves (their fields, docstrings, dual and Hermite
implementations and homogeneity), so the table cannot drift from the code.
"""

from __future__ import annotations

import inspect
from dataclasses import MISSING, fields

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
        elif getattr(cls, "_kinks", ()) == (0.0,):
            dual = "numerical (polar rule)"
        else:
            dual = "numerical (Gauss-Hermite)"
        hermite = "closed form" if _overrides(cls, "_hermite", (A.Activation,)) else (
            "quadrature"
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
            "     - ``fn``, ``derivative=None``, ``n_nodes=120``",
            "     - wrapped in :class:`~sklearn_ntk.activations.Numerical`",
            "     - numerical (Gauss-Hermite)",
            "     - quadrature",
            "     - no",
        ]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="activation-table"), 0, container)
        return container.children


def setup(app):
    app.add_directive("activation-table", ActivationTable)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
