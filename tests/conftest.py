import os

# scikit-learn's Array API estimator checks (and array_api_dispatch) need
# SciPy's Array API support, which is read once, when SciPy is imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import json
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

# The suite runs on two worker processes (pytest-xdist, pyproject's addopts):
# one BLAS thread each, so that the two do not oversubscribe the cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    threadpool_limits(1)

DATA = Path(__file__).parent / "data"

# Units of roundoff, at the result's magnitude, that a different order of the
# same float operations may change (row batches, chunks, tiles, threads, sparse
# vs dense products, another BLAS kernel).  Measured: at most ~4 across
# batch_size and working_memory for every sketch, float32 and float64.
REORDER_ULPS = 128


def assert_allclose_reordered(actual, desired, *, ulps=REORDER_ULPS, rtol=0.0):
    """``actual`` equals ``desired`` up to ``ulps * eps * max|desired|``.

    For results the code computes in a different order, which it does not
    guarantee bit-identical.  ``eps`` is that of the less precise dtype.
    """
    actual, desired = np.asarray(actual), np.asarray(desired)
    eps = (
        max(
            np.finfo(a.dtype).eps if np.issubdtype(a.dtype, np.floating) else 0.0
            for a in (actual, desired)
        )
        or np.finfo(np.float64).eps
    )
    scale = float(np.max(np.abs(desired))) if desired.size else 0.0
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=ulps * eps * scale)


def array_api_dispatch_unavailable() -> str | None:
    """Why scikit-learn's ``array_api_dispatch`` cannot be switched on, or None."""
    import sklearn

    try:
        with sklearn.config_context(array_api_dispatch=True):
            pass
    except ImportError as exc:  # array-api-compat missing or SciPy too old
        return str(exc)
    return None


def run_estimator_check(estimator, check):
    """Run one ``parametrize_with_checks`` check, skipping Array API checks
    where dispatch is unavailable (scikit-learn < 1.7 fails them instead)."""
    name = getattr(check, "func", check).__name__
    if name.startswith("check_array_api"):
        reason = array_api_dispatch_unavailable()
        if reason is not None:
            pytest.skip(f"array_api_dispatch unavailable: {reason}")
    check(estimator)


@pytest.fixture
def dispatch(monkeypatch):
    """scikit-learn's ``array_api_dispatch`` on, or a skip where it cannot be."""
    import sklearn

    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    reason = array_api_dispatch_unavailable()
    if reason is not None:
        pytest.skip(f"array_api_dispatch unavailable: {reason}")
    with sklearn.config_context(array_api_dispatch=True):
        yield


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
