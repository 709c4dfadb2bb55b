import os

# scikit-learn's Array API estimator checks (and array_api_dispatch) need
# SciPy's Array API support, which is read once, when SciPy is imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import json
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def oracle():
    """Reference kernels computed by neural-tangents 0.6.5 in float64."""
    cases = json.loads((DATA / "oracle.json").read_text())
    arrays = np.load(DATA / "oracle.npz")
    return [
        (case, {k: arrays[f"{case['key']}_{k}"] for k in ("X", "nngp", "ntk")})
        for case in cases
    ]


def act_from_case(act: dict):
    """Our activation for an oracle case's ``act`` description."""
    from sklearn_ntk import activations

    params = {k: v for k, v in act.items() if k not in ("name", "formula", "note")}
    if "coef" in params:
        params["coef"] = tuple(params["coef"])
    return activations.get(act["name"], **params)


def kernel_kwargs_from_case(case: dict) -> dict:
    """Keyword arguments of our kernel functions for an oracle case."""
    kw = dict(
        act=act_from_case(case["act"]),
        depth=case["depth"],
        W_std=case["W_std"],
        b_std=case["b_std"],
    )
    if case["kind"] != "fc":
        kw.update(
            architecture=case["kind"],
            filter_size=case["filter_size"],
            readout=case.get("readout", "global_avg"),
        )
    return kw
