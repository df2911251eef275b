"""A numpy mirror of the generated ``ReferralSpike`` rules, for long simulations.

Running 20 long PromQL expressions over ten simulated years at a one-minute step
takes hours on two cores, so the evaluation computes the rules' conditions with
this mirror (the same float operations in the same order as the PromQL in
:mod:`alerts_eval.rulegen`) and *checks the mirror against the real rule file*
with a real Prometheus on a sample of chunks and times
(:func:`alerts_eval.evaluate.conformance`). Any mismatch fails the evaluation.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from alerts_eval.params import (
    HISTORY_WEEKS,
    PRIOR_WEEKS,
    WEEK_SECONDS,
    YEAR_SECONDS,
    Window,
)

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


def step_counts(times: FloatArray, step: int, n: int) -> npt.NDArray[np.int64]:
    """Counter value at each step ``j * step`` for ``j < n``.

    ``times`` are whole seconds; a sample at ``t`` is seen from the first step at
    or after ``t`` (as an instant lookup at a step time sees it).
    """
    idx = np.ceil(times / step).astype(np.int64)
    idx = idx[idx < n]
    return np.cumsum(np.bincount(idx, minlength=n))[:n].astype(np.int64)


def _shift(values: FloatArray, by: int) -> FloatArray:
    """``values`` ``by`` steps earlier; NaN where that is before the first sample."""
    out = np.full(len(values), np.nan)
    if by < len(values):
        out[by:] = values[: len(values) - by]
    return out


def conditions(
    counts: npt.NDArray[np.int64],
    per_year: float,
    window: Window,
    step: int,
    z_offset: float = 0.0,
) -> dict[str, BoolArray]:
    """Whether ``count >= threshold`` holds at each step, for each severity.

    ``counts`` is :func:`step_counts`; the PromQL's float operations are done in
    the same order, so ``ceil`` rounds identically.
    """
    values = counts.astype(np.float64)
    w = window.seconds // step
    week = WEEK_SECONDS // step
    count = values - _shift(values, w)
    hist = np.zeros(len(values), dtype=np.float64)
    for k in range(1, HISTORY_WEEKS + 1):
        hist = hist + (_shift(values, k * week) - _shift(values, k * week + w))
    mu = per_year * window.seconds / YEAR_SECONDS
    blended = (hist + PRIOR_WEEKS * mu) / (HISTORY_WEEKS + PRIOR_WEEKS)
    base = np.where(np.isnan(blended), mu, np.maximum(blended, mu))
    out: dict[str, BoolArray] = {}
    for severity in ("warning", "critical"):
        z, c = window.tail(severity, z_offset)
        thr = np.ceil(base + z * np.sqrt(base) + c) if z else np.ceil(base + c)
        with np.errstate(invalid="ignore"):
            out[severity] = np.asarray(~np.isnan(count) & (count >= thr), dtype=np.bool_)
    return out


def firing(active: BoolArray, step: int, hold: int, keep: int) -> BoolArray:
    """Apply ``for`` (``hold``) and ``keep_firing_for`` (``keep``) to a condition.

    Mirrors Prometheus: an alert fires once the condition has held at
    ``hold // step`` further consecutive evaluations; a firing alert stays firing
    until the condition has been false for longer than ``keep``.
    """
    n = len(active)
    if n == 0:
        return active.copy()
    need = hold // step + 1
    if need > 1:
        run = np.convolve(active.astype(np.int64), np.ones(need, dtype=np.int64))[:n]
        qualified = run >= need
    else:
        qualified = active.copy()
    idx = np.arange(n)
    last = np.maximum.accumulate(np.where(active, idx, -(10**12)))
    extended = (idx - last) <= keep // step
    start = extended & ~np.concatenate([[False], extended[:-1]])
    segment = np.cumsum(start)
    seen = np.maximum.accumulate(np.where(qualified, segment, 0))
    return np.asarray(extended & (seen == segment), dtype=np.bool_)


def n_steps(span: int, step: int) -> int:
    """Number of evaluation steps in ``[0, span]``."""
    return math.floor(span / step) + 1
