"""``dendrite-sim`` command line.

    dendrite-sim run SCENARIO.toml [--out DIR] [--seed N] [--set key=value ...]
    dendrite-sim check SCENARIO.toml [--set key=value ...]
    dendrite-sim list [KIND]       (learning rules with their substrates, e.g. [rate, spiking])
    dendrite-sim export RUN_DIR [--format nwb|npz]
    dendrite-sim docs [--out docs/scenarios.md] [--check]
    dendrite-sim --version

User errors print one line ``error: <key path>: <what was expected>`` and exit with code 2; so
does a run that diverges (``error: <metrics key>: diverged: ...``). No scenario, ``--set`` value
or argument makes the command print a traceback: an unexpected failure (a bug) prints one line
``error: internal: ...`` and exits with code 1 (``DENDRITE_SIM_TRACEBACK=1`` shows the traceback).

Every run directory holds ``status.json`` (:func:`dendrite_sim.io.results.write_status`):
``running`` while the experiment runs, then ``completed``, ``failed`` (with the one-line reason)
or ``interrupted`` (Ctrl-C, SIGTERM). A directory whose run failed or was interrupted takes a
new run without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from datetime import datetime
from pathlib import Path

import dendrite_sim
from dendrite_sim import commands
from dendrite_sim.core import registry
from dendrite_sim.core.errors import ScenarioError, _printable
from dendrite_sim.io.reference import summary

DEFAULT_DOCS = Path("docs") / "scenarios.md"


class _Terminated(BaseException):
    """SIGTERM during a run (a scheduler or a sweep stopping it): recorded as interrupted."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line, exit 2
        print(f"error: arguments: {message}", file=sys.stderr)
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dendrite-sim", description="Spiking and dendritic credit-assignment simulator.")
    p.add_argument("--version", action="version", version=f"dendrite-sim {dendrite_sim.__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="run a scenario")
    r.add_argument("scenario", nargs="?")
    r.add_argument("--out", help="output directory (default runs/<scenario>-<time>)")
    r.add_argument("--resume", metavar="RUN_DIR",
                   help="continue an interrupted run in RUN_DIR from its newest checkpoint (its config.toml)")
    r.add_argument("--seed", type=_seed, help="root seed (overrides scenario.seed)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario key, e.g. --set training.epochs=5")
    r.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty --out")
    c = sub.add_parser("check", help="validate a scenario without running it")
    c.add_argument("scenario")
    c.add_argument("--seed", type=_seed)
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    lst = sub.add_parser("list", help="list every registered part")
    lst.add_argument("kind", nargs="?", choices=(*registry.KINDS, "preset"))
    e = sub.add_parser("export", help="export a run's data (nwb or npz)")
    e.add_argument("run_dir")
    e.add_argument("--format", choices=("nwb", "npz"), default="nwb")
    d = sub.add_parser("docs", help="write the scenario reference (docs/scenarios.md) from the schemas")
    d.add_argument("--out", default=None, help=f"file to write (default {DEFAULT_DOCS} in the source tree)")
    d.add_argument("--check", action="store_true", help="exit 1 if the file differs from a fresh one")
    for mod in commands.discover():       # one file per further command (dendrite_sim/commands/)
        cmd = sub.add_parser(mod.NAME, help=mod.HELP)
        mod.add_arguments(cmd)
        cmd.set_defaults(command_run=mod.run)
    return p


def _seed(text: str) -> int:
    """``--seed``: a non-negative integer below 2**63 (argparse words the refusal)."""
    if len(text) > 30 or not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text[:40]!r}")
    value = int(text)
    if value > 2**63 - 1:
        raise argparse.ArgumentTypeError("expected an integer below 2**63")
    return value


def _substrates(cls) -> str:
    """``[rate, spiking]``: the substrates a learning rule runs on (its ``substrates`` attribute)."""
    subs = getattr(cls, "substrates", ())
    if isinstance(subs, str):
        subs = (subs,)
    return "[" + ", ".join(str(s) for s in subs) + "]"


def presets() -> dict[str, dict]:
    """Every named parameter preset: ``"stp"`` (short-term plasticity), and one entry per synapse
    rule with ``presets`` (``"rule stdp"``): preset name → parameter record."""
    import importlib

    stp = importlib.import_module("dendrite_sim.synapses.stp")
    out = {"stp": dict(stp.PRESETS)}
    for name, cls in registry.available("rule").items():
        table = getattr(cls, "presets", None)
        if table:
            out[f"rule {name}"] = dict(table)
    return out


def _preset_text(rec) -> str:
    fields = rec._asdict() if hasattr(rec, "_asdict") else dict(rec)
    if type(rec).__name__ == "STPParams":
        import importlib

        fields["variant"] = importlib.import_module("dendrite_sim.synapses.stp").VARIANT_NAMES.get(
            fields["variant"], fields["variant"])
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())


def cmd_list(kind=None) -> int:
    """Every registered part, kinds in :data:`registry.KINDS` order, names sorted; a learning
    rule also shows its substrates, e.g. ``backprop  [rate]  Exact gradient ...``; then the
    parameter presets (``dendrite-sim list preset``)."""
    kinds = [kind] if kind and kind != "preset" else ([] if kind == "preset" else list(registry.KINDS))
    for k in kinds:
        parts = registry.available(k)
        if not parts:
            continue
        print(f"{k}:")
        if k == "rule":
            subs = {name: _substrates(cls) for name, cls in parts.items()}
            width = max(len(s) for s in subs.values())
            for name, cls in parts.items():
                print(f"  {name:28s} {subs[name]:{width}s} {summary(cls)}")
            continue
        for name, cls in parts.items():
            print(f"  {name:28s} {summary(cls)}")
    if kind in (None, "preset"):
        print("preset:")
        for owner, table in presets().items():
            for name, rec in table.items():
                print(f"  {owner + ' ' + name:36s} {_preset_text(rec)}")
    return 0


def cmd_check(args) -> int:
    from dendrite_sim.io.scenario import load, read_toml

    data = read_toml(args.scenario)
    if "sweep" in data and args.seed is None:   # every point of the sweep, as `sweep` checks them
        from dendrite_sim.sweeps import runner

        _, sdef, points = runner.plan(args.scenario, args.set)
        what = f"{len(points)} points" if points is not None else f"a search of {sdef.search.trials} trials"
        print(f"ok: {_printable(args.scenario)} (sweep: {what}, each valid)")
        return 0
    data.pop("sweep", None)
    sc = load(args.scenario, data=data, overrides=args.set, seed=args.seed)
    print(f"ok: {_printable(args.scenario)} (experiment {sc.resolved['scenario']['experiment']!r}, seed {sc.seed})")
    return 0


def _out_dir(args) -> Path:
    from dendrite_sim.io import results

    if args.out:
        out = Path(args.out)
        try:
            if out.exists() and not out.is_dir():
                raise ScenarioError("--out", f"expected a directory; {str(out)!r} is a file")
            if out.exists() and not args.overwrite and not results.reusable(out):
                raise ScenarioError("--out", f"{str(out)!r} already holds files; choose an empty "
                                    "directory or pass --overwrite")
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ScenarioError("--out", f"expected a directory I can write: {exc.strerror or exc}") from None
        return out
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path("runs") / f"{Path(args.scenario).stem}-{stamp}"
    n = 1
    while out.exists():
        out = Path("runs") / f"{Path(args.scenario).stem}-{stamp}-{n}"
        n += 1
    return out


def _on_sigterm(signum, frame):
    raise _Terminated()


def cmd_run(args) -> int:
    from dendrite_sim.io import results

    if args.resume:
        sc, out = _resumable(args)
    else:
        if not args.scenario:
            raise ScenarioError("arguments", "the following arguments are required: scenario "
                                "(or --resume RUN_DIR)")
        sc = _load_for_run(args)
        out = _out_dir(args)
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:                    # not the main thread (a test harness): no handler
        pass
    try:
        outcome = results.execute(sc, out, interrupts=(KeyboardInterrupt, _Terminated),
                                  resume=bool(args.resume))
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(outcome.message, file=sys.stdout if outcome.code == 0 else sys.stderr)
    return outcome.code


def _resumable(args):
    """``run --resume RUN_DIR``: the run's own resolved scenario (``config.toml``; plugins found
    beside the scenario file named in ``provenance.json``), refused when the run completed or
    is still running."""
    import json

    from dendrite_sim.engine.checkpoint import Checkpointer
    from dendrite_sim.io import results
    from dendrite_sim.io.scenario import load, read_toml

    if args.scenario or args.out or args.set or args.seed is not None or args.overwrite:
        raise ScenarioError("--resume", "expected RUN_DIR alone: a resumed run takes its scenario, seed and "
                            "directory from RUN_DIR (config.toml)")
    out = Path(args.resume)
    if not (out / "config.toml").is_file():
        raise ScenarioError("--resume", f"expected a run directory holding config.toml; {str(out)!r} has none")
    status = results.read_status(out) or {}
    if (out / results.METRICS_FILE).is_file() or status.get("state") == "completed":
        raise ScenarioError("--resume", f"{str(out)!r} holds a completed run; nothing to resume")
    if status.get("state") == "running" and results._alive(status.get("pid")):
        raise ScenarioError("--resume", f"{str(out)!r} is being written by a running process (pid {status['pid']})")
    try:
        origin = json.loads((out / "provenance.json").read_text(encoding="utf-8")).get("scenario")
    except (OSError, ValueError):
        origin = None
    data = read_toml(out / "config.toml")
    sc = load(origin if origin and Path(origin).is_file() else out / "config.toml", data=data)
    saved = Checkpointer(out / results.CHECKPOINT_DIR, 1.0).latest()
    print(f"resuming {out}/ from " + (f"{saved.path.name} ({saved.meta.get('progress')})" if saved else
                                      "the start (no checkpoint)"), file=sys.stderr)
    return sc, out


def _load_for_run(args):
    """The scenario of ``run``: a file with a ``[sweep]`` table runs its base point (the table
    is for ``dendrite-sim sweep``)."""
    from dendrite_sim.io.scenario import load, read_toml

    data = read_toml(args.scenario)
    data.pop("sweep", None)
    return load(args.scenario, data=data, overrides=args.set, seed=args.seed)


def cmd_export(args) -> int:
    from dendrite_sim.io.export import export_run

    path = export_run(args.run_dir, args.format)
    print(f"wrote {path}")
    return 0


def cmd_docs(args) -> int:
    from dendrite_sim.io import reference

    out = Path(args.out) if args.out else reference.default_path()
    text = reference.scenario_reference()
    if args.check:
        old = out.read_text(encoding="utf-8") if out.is_file() else None
        if old != text:
            print(f"error: {out}: stale; regenerate it with `dendrite-sim docs`", file=sys.stderr)
            return 1
        print(f"ok: {out} is up to date")
        return 0
    from dendrite_sim.io import atomic

    try:
        atomic.write_text(out, text)
    except OSError as exc:
        raise ScenarioError("--out", f"expected a writable path: {exc.strerror or exc}") from None
    print(f"wrote {out}")
    return 0


_COMMANDS = {"list": lambda a: cmd_list(a.kind), "check": cmd_check, "run": cmd_run,
             "export": cmd_export, "docs": cmd_docs}


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        run = getattr(args, "command_run", None) or _COMMANDS[args.command]
        return run(args)
    except ScenarioError as exc:
        print(exc.line(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted: partial outputs, if any, are kept in the run directory",
              file=sys.stderr)
        return 130
    except BrokenPipeError:               # `dendrite-sim list | head`: the reader left
        try:
            sys.stdout = open(os.devnull, "w")   # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 0
    except RecursionError:
        print("error: scenario: expected tables and arrays nested less deeply (recursion limit)",
              file=sys.stderr)
        return 2
    except MemoryError:
        print("error: scenario: needs more memory than this machine has (MemoryError); "
              "choose smaller sizes", file=sys.stderr)
        return 2
    except Exception as exc:              # a bug: one line, the traceback on request
        if os.environ.get("DENDRITE_SIM_TRACEBACK"):
            raise
        print(f"error: internal: {_printable(f'{type(exc).__name__}: {exc}', 500)} (a bug in "
              "dendrite_sim; DENDRITE_SIM_TRACEBACK=1 shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
