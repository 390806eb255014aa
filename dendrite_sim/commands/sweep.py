"""``dendrite-sim sweep S.toml --out DIR``: a scenario over a grid, seeds or a search, on Dask.

    dendrite-sim sweep scenarios/xor.toml --out runs/xor-sweep \\
        --grid rule.name=backprop,feedback_alignment --grid training.learning_rate=0.1,0.5 \\
        --seeds 1-4 [--workers N | --scheduler tcp://host:8786] [--summary final_train_accuracy]

Exit code: 0 when every point completed; 2 for a user error (nothing was started); otherwise the
number of failed points (at most :data:`MAX_CODE`); 130 when interrupted. See
:mod:`dendrite_sim.sweeps` and ``docs/sweeps.md``.
"""

from __future__ import annotations

import signal
import sys

NAME = "sweep"
HELP = "run a scenario over a grid of keys, seeds or a search (Dask; resumable)"
MAX_CODE = 100


def add_arguments(p) -> None:
    p.add_argument("scenario")
    p.add_argument("--out", required=True, help="sweep directory (points/, results.parquet); rerun to resume")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a grid axis, e.g. --grid training.learning_rate=0.01,0.1 (repeatable)")
    p.add_argument("--zip", action="append", default=[], metavar="KEY=V1,V2",
                   help="lists of one length taken together (repeatable; one more grid axis)")
    p.add_argument("--seeds", help="seeds, e.g. 1-8 or 1,3,5 (innermost)")
    p.add_argument("--search", choices=("optuna", "random"), help="a search instead of a grid")
    p.add_argument("--param", action="append", default=[], metavar="KEY=LOW:HIGH[:log]",
                   help="a searched key: a range (log-uniform with :log) or choices A,B,C (repeatable)")
    p.add_argument("--metric", help="the metrics.json key a search optimises (dotted for nested keys)")
    p.add_argument("--direction", choices=("maximize", "minimize"))
    p.add_argument("--trials", type=int, help="the search's trial budget (default 20)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the base scenario (every point)")
    p.add_argument("--workers", type=int, help="LocalCluster worker processes (default: cores, at most 4)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--table", choices=("parquet", "csv"), help="results table format (default parquet with pyarrow)")
    p.add_argument("--summary", metavar="METRIC", help="draw summary.png of METRIC over the swept keys")
    p.add_argument("--x", help="the summary's x axis (default: the first swept key)")
    p.add_argument("--by", help="one summary line per value of this key (default: the second swept key)")


class _Stop(BaseException):
    pass


def _on_term(signum, frame):
    raise _Stop()


def run(args) -> int:
    from dendrite_sim.core.errors import ScenarioError
    from dendrite_sim.sweeps import runner

    if args.workers is not None and args.workers < 1:
        raise ScenarioError("--workers", f"expected a positive number of workers; got {args.workers}")
    if args.trials is not None and args.trials < 1:
        raise ScenarioError("--trials", f"expected a positive trial budget; got {args.trials}")
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _on_term)
    except ValueError:
        pass
    try:
        res = runner.sweep(args.scenario, args.out, overrides=args.set, workers=args.workers,
                           scheduler=args.scheduler, table_format=args.table, summary_metric=args.summary,
                           summary_x=args.x, summary_by=args.by, grid=args.grid, zips=args.zip,
                           seeds=args.seeds, search=args.search, metric=args.metric,
                           direction=args.direction, trials=args.trials, params=args.param)
    except (KeyboardInterrupt, _Stop):
        print(f"error: interrupted: finished points are kept in {args.out}/points/; run the same command "
              "again to resume", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    files = ", ".join(str(p.name) for p in (res.table, res.figure) if p is not None)
    print(f"wrote {args.out}/ ({res.total} points: {res.total - len(res.failed)} completed, "
          f"{len(res.failed)} failed, {res.skipped} already done; {files})")
    if res.best:
        print(f"best: trial {res.best['trial']} ({res.best['values']}) {res.best['metric']} = {res.best['value']:.6g}")
    return min(len(res.failed), MAX_CODE)
