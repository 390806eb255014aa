"""Summary of a sweep: a metric against a swept key, one line per value of a second key.

For each (``by``, ``x``) cell the completed points' values of ``metric`` over seeds give the
mean and the 95 % confidence interval of the mean from Student's t distribution,

    mean ± t_{0.975, n-1} · s / √n,      s the sample standard deviation (ddof = 1),

(no interval for a single seed). A numeric ``x`` is drawn on a numeric axis (logarithmic when
its positive values span more than two decades), any other ``x`` as categories in sweep order.
"""

from __future__ import annotations

import math

from dendrite_sim.core.errors import ScenarioError


def summarise(df, metric: str, x: str, by: str | None = None):
    """``[by,] x, n, mean, ci_low, ci_high`` per cell (a DataFrame), completed points only, in
    the order the values first appear."""
    import numpy as np
    import pandas as pd
    from scipy import stats

    for key, what in ((metric, "metric"), (x, "x"), (by, "by")):
        if key is not None and key not in df.columns:
            cols = ", ".join(c for c in df.columns if c not in ("point", "id", "status", "error"))
            raise ScenarioError(f"summary.{what}", f"expected a column of the results table; "
                                f"{key!r} is not one (columns: {cols})")
    ok = df[df["status"] == "completed"]
    groups = [by, x] if by else [x]
    rows = []
    for keys, sub in ok.groupby(groups, sort=False, dropna=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        vals = pd.to_numeric(sub[metric], errors="coerce").dropna().to_numpy(float)
        n = len(vals)
        mean = float(vals.mean()) if n else math.nan
        half = float(stats.t.ppf(0.975, n - 1) * vals.std(ddof=1) / np.sqrt(n)) if n > 1 else math.nan
        rows.append({**dict(zip(groups, keys)), "n": n, "mean": mean,
                     "ci_low": mean - half, "ci_high": mean + half})
    return pd.DataFrame(rows)


def _numeric(values) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def figure(df, metric: str, x: str, by: str | None = None, title: str | None = None):
    """The summary figure (a matplotlib Figure): mean and 95 % CI band of ``metric`` against
    ``x``, one line per value of ``by``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    s = summarise(df, metric, x, by)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    xs_all = list(dict.fromkeys(s[x].tolist())) if len(s) else []
    numeric = _numeric(xs_all)
    pos = (lambda v: v) if numeric else (lambda v: xs_all.index(v))
    lines = list(dict.fromkeys(s[by].tolist())) if by else [None]
    for value in lines:
        sub = s[s[by] == value] if by else s
        if numeric:
            sub = sub.sort_values(x)
        xs = np.array([pos(v) for v in sub[x]], float)
        label = f"{by} = {value}" if by else metric
        ax.plot(xs, sub["mean"], marker="o", label=label)
        ax.fill_between(xs, sub["ci_low"], sub["ci_high"], alpha=0.2)
    if numeric:
        pos_x = [v for v in xs_all if v > 0]
        if pos_x and len(pos_x) == len(xs_all) and max(pos_x) / min(pos_x) > 100:
            ax.set_xscale("log")
    else:
        ax.set_xticks(range(len(xs_all)), [str(v) for v in xs_all])
    n = s["n"].max() if len(s) else 0
    ax.set_xlabel(x)
    ax.set_ylabel(f"{metric} (mean, 95 % CI)")
    ax.set_title(title or f"{metric} against {x}" + (f" by {by}" if by else "") + f" (n ≤ {n} seeds)")
    ax.legend(title=None, fontsize="small")
    fig.tight_layout()
    return fig
