"""dendrite-sim sweep (issue 12): definition, validation, execution on Dask, resumption, table,
summary statistics, searches."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dendrite_sim.cli import main
from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.sweeps import define, execute, runner, summary, table

ROOT = Path(__file__).resolve().parents[1]
XOR = str(ROOT / "scenarios" / "xor.toml")

# A fast experiment whose metrics are a closed form of its keys and seed; it fails on request,
# and sleeps to let a test kill a sweep between points.
PROBE = '''
import time

from dendrite_sim import register
from dendrite_sim.core.interfaces import Experiment
from dendrite_sim.core.schema import Field


@register("experiment", "sweep_probe")
class Probe(Experiment):
    """y = a * x + seed; fails when x equals fail_at (test plugin)."""

    sections = {"probe": {"x": Field("float", 1.0, "input"), "a": Field("float", 2.0, "slope", lo=0),
                          "fail_at": Field("float", -1.0, "x that fails"),
                          "sleep_s": Field("float", 0.0, "seconds to sleep", lo=0)}}

    def run(self, cfg, ctx):
        p = cfg["probe"]
        time.sleep(p["sleep_s"])
        if p["x"] == p["fail_at"]:
            raise RuntimeError("probe failure on purpose")
        return {"y": p["a"] * p["x"] + ctx.seed, "nested": {"x2": p["x"] ** 2}, "curve": [1.0, 2.0]}
'''


def probe(tmp_path, sweep="", **probe_keys) -> str:
    (tmp_path / "probe.py").write_text(PROBE)
    keys = "".join(f"{k} = {v}\n" for k, v in probe_keys.items())
    text = (f'[scenario]\nexperiment = "sweep_probe"\nseed = 3\nplugins = ["probe.py"]\n\n[probe]\n{keys}\n'
            + sweep)
    path = tmp_path / "probe.toml"
    path.write_text(text)
    return str(path)


GRID = '[sweep]\nseeds = "1-2"\n[sweep.grid]\n"probe.x" = [1.0, 2.0, 3.0]\n"probe.a" = [0.5, 4.0]\n'


def compare(df):
    return df.drop(columns=["wall_time_s"]).reset_index(drop=True)


# ------------------------------------------------------------------------------ definition
def test_values_seeds_and_grid_order(tmp_path):
    assert define.split_values("a,[1, 2],'x,y', 0.5") == ["a", "[1, 2]", "'x,y'", "0.5"]
    assert [define.parse_value(v) for v in ("0.5", "[8, 8]", "backprop", "true")] == [0.5, [8, 8], "backprop", True]
    assert define.parse_seeds("1-4,9") == [1, 2, 3, 4, 9]
    assert define.parse_seeds([5, 2]) == [5, 2]
    for bad in ("4-1", "x", "1,1", [-1], [1.5]):
        with pytest.raises(ScenarioError):
            define.parse_seeds(bad)
    planner = define.Planner(probe(tmp_path, GRID))
    sdef = define.with_arguments(define.from_table(planner.table), grid=["probe.a=7"],
                                 zips=["probe.fail_at=10,20", "probe.sleep_s=0,0.001"])
    points = define.grid_points(planner, sdef)
    assert len(points) == 3 * 1 * 2 * 2                      # x × a (replaced by --grid) × zip × seeds
    assert [(p.values["probe.x"], p.values["probe.fail_at"], p.seed) for p in points[:4]] == [
        (1.0, 10, 1), (1.0, 10, 2), (1.0, 20, 1), (1.0, 20, 2)]
    assert all(p.values["probe.a"] == 7 for p in points)
    assert points[1].values["probe.sleep_s"] == 0.0 and points[2].values["probe.sleep_s"] == 0.001
    assert len({p.id for p in points}) == len(points)
    # the id is the resolved configuration's: the same point made again has the same id
    assert planner.point(99, points[3].values, points[3].seed).id == points[3].id
    with pytest.raises(ScenarioError, match="same configuration"):
        define.grid_points(planner, define.with_arguments(define.SweepDef(), grid=["probe.x=1.0,1"]))
    with pytest.raises(ScenarioError, match="one length"):
        define.combos(define.with_arguments(define.SweepDef(), zips=["a.b=1,2", "a.c=1"]))


def test_one_bad_point_exits_2_naming_point_and_key_and_starts_nothing(tmp_path, capsys):
    scen = probe(tmp_path, '[sweep]\n[sweep.grid]\n"probe.a" = [1.0, -2.0]\n')
    out = tmp_path / "sweep"
    for argv in (["check", scen], ["sweep", scen, "--out", str(out)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: probe.a: "), err
        assert "sweep point 1" in err[0] and "probe.a=-2.0" in err[0], err
    assert not out.exists()
    assert main(["sweep", XOR, "--out", str(out), "--grid", "rule.nmae=backprop"]) == 2
    assert "rule.nmae" in capsys.readouterr().err
    assert main(["sweep", XOR, "--out", str(out), "--seeds", "3-1"]) == 2
    assert capsys.readouterr().err.startswith("error: --seeds: ")
    assert main(["sweep", XOR, "--out", str(out)]) == 2                 # nothing to sweep
    assert "expected something to sweep" in capsys.readouterr().err
    assert not out.exists()
    assert main(["check", probe(tmp_path, GRID)]) == 0
    assert "12 points" in capsys.readouterr().out
    assert main(["run", scen, "--out", str(tmp_path / "base")]) == 0      # run: the base point
    assert json.loads((tmp_path / "base" / "metrics.json").read_text())["y"] == 2.0 * 1.0 + 3


# ------------------------------------------------------------------------------ execution
@pytest.fixture(scope="module")
def tcp_cluster():
    distributed = pytest.importorskip("distributed")
    import logging

    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                                       host="127.0.0.1", dashboard_address=":0", silence_logs=logging.ERROR)
    yield cluster
    cluster.close()


def test_sweep_on_a_cluster_by_address_records_failures_and_resumes(tmp_path, capsys, tcp_cluster):
    pytest.importorskip("pyarrow")
    scen = probe(tmp_path, GRID, fail_at=3.0)
    out = tmp_path / "sweep"
    addr = tcp_cluster.scheduler_address
    assert addr.startswith("tcp://127.0.0.1:")
    code = main(["sweep", scen, "--out", str(out), "--scheduler", addr, "--summary", "y"])
    text = capsys.readouterr()
    assert code == 4, text                                    # x = 3 fails for 2 slopes × 2 seeds
    assert "12 points: 8 completed, 4 failed" in text.out
    df = table.read(out / "results.parquet")
    assert len(df) == 12 and list(df["point"]) == list(range(12))
    assert list(df.columns[:8]) == ["point", "id", "probe.x", "probe.a", "seed", "status", "error", "wall_time_s"]
    ok = df[df.status == "completed"]
    assert (ok["y"] == ok["probe.a"] * ok["probe.x"] + ok["seed"]).all() and len(ok) == 8
    assert (ok["nested.x2"] == ok["probe.x"] ** 2).all() and "curve" not in df.columns
    bad = df[df.status == "failed"]
    assert (bad["probe.x"] == 3.0).all() and bad["error"].str.contains("probe failure on purpose").all()
    assert bad["y"].isna().all()
    for pid in df["id"]:                                      # ordinary run directories
        d = out / "points" / pid
        assert {"config.toml", "provenance.json", "status.json"} <= {p.name for p in d.iterdir()}
    assert (out / "points" / bad["id"].iloc[0] / "error.log").is_file()
    assert not any((out / "points" / ".partial").iterdir())
    assert (out / "summary.png").stat().st_size > 10_000
    # second run: the 8 completed are skipped, the 4 failed run again (and fail again)
    assert main(["sweep", scen, "--out", str(out), "--scheduler", addr]) == 4
    assert "12 points, 8 already done" in capsys.readouterr().out
    assert compare(table.read(out / "results.parquet")).equals(compare(df))
    # the fixed point completes once its value is changed; matching is by configuration
    assert main(["sweep", scen, "--out", str(out), "--scheduler", addr, "--set", "probe.fail_at=99"]) == 0
    assert "12 points, 0 already done" in capsys.readouterr().out     # fail_at is in every config
    with pytest.raises(ScenarioError, match="--scheduler"):
        runner.sweep(scen, tmp_path / "nowhere", scheduler="tcp://127.0.0.1:9", connect_timeout=1)


def test_sigkill_of_the_whole_process_group_then_resume_gives_the_uninterrupted_table(tmp_path, tcp_cluster):
    """The one test with a real LocalCluster of worker processes (the sweep's default)."""
    pytest.importorskip("pyarrow")
    scen = probe(tmp_path, '[sweep]\nseeds = "1-10"\n[sweep.grid]\n"probe.x" = [1.0]\n', sleep_s=0.3)
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "dendrite_sim.cli", "sweep", scen, "--out", str(out),
                             "--workers", "2"], start_new_session=True, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            finished = [p for p in (out / "points").glob("*") if not p.name.startswith(".")] \
                if (out / "points").is_dir() else []
            if len(finished) >= 3 or proc.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)                  # the sweep, its nannies and workers
        proc.wait()
    kept = [p for p in (out / "points").iterdir() if not p.name.startswith(".")]
    assert 3 <= len(kept) < 10, len(kept)                      # killed mid-way
    for d in kept:                                             # a folder under its final name is whole
        assert execute.done(out, d.name)
        assert json.loads((d / "metrics.json").read_text())["y"] > 0
    for f in out.rglob("*"):
        if f.is_file() and ".partial" not in f.parts:
            assert not f.name.endswith(".tmp"), f
    res = runner.sweep(scen, out, processes=False, workers=1, echo=lambda s: None)
    assert res.skipped == len(kept) and res.ran == 10 - len(kept) and not res.failed
    ref = runner.sweep(scen, tmp_path / "straight", scheduler=tcp_cluster.scheduler_address, echo=lambda s: None)
    a, b = table.read(res.table), table.read(ref.table)
    assert len(a) == 10 and compare(a).equals(compare(b))
    assert list(a["y"]) == [2.0 * 1.0 + s for s in range(1, 11)]


# ------------------------------------------------------------------------------ summary
def test_summary_mean_and_t_interval_over_seeds():
    import pandas as pd

    df = pd.DataFrame({"status": ["completed"] * 7 + ["failed"], "lr": [0.1, 0.1, 0.1, 1.0, 1.0, 1.0, 1.0, 1.0],
                       "rule": ["bp", "bp", "bp", "bp", "bp", "bp", "fa", "fa"],
                       "acc": [1.0, 2.0, 3.0, 5.0, 5.0, 8.0, 4.0, 100.0]})
    s = summary.summarise(df, "acc", "lr", "rule")
    first = s.iloc[0]
    assert (first["rule"], first["lr"], first["n"], first["mean"]) == ("bp", 0.1, 3, 2.0)
    half = 4.302652729749462 / math.sqrt(3)                  # t_{0.975, 2} · s / √n, s = 1
    assert first["ci_low"] == pytest.approx(2.0 - half, rel=1e-12)
    assert first["ci_high"] == pytest.approx(2.0 + half, rel=1e-12)
    second = s.iloc[1]
    assert second["mean"] == 6.0 and second["ci_high"] - 6.0 == pytest.approx(
        4.302652729749462 * math.sqrt(3.0) / math.sqrt(3), rel=1e-12)
    single = s.iloc[2]                                        # the failed point is left out
    assert single["n"] == 1 and single["mean"] == 4.0 and math.isnan(single["ci_low"])
    fig = summary.figure(df, "acc", "lr", "rule")
    ax = fig.axes[0]
    assert ax.get_title() and ax.get_xlabel() == "lr" and "acc" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["rule = bp", "rule = fa"]
    with pytest.raises(ScenarioError, match="summary.metric"):
        summary.summarise(df, "nope", "lr")


# ------------------------------------------------------------------------------ searches
def test_random_search_is_drawn_and_validated_before_it_runs(tmp_path):
    scen = probe(tmp_path)
    _, sdef, points = runner.plan(scen, search="random", metric="y", trials=6, params=["probe.x=0.001:1000:log"])
    xs = [p.values["probe.x"] for p in points]
    assert len(xs) == 6 and all(0.001 <= x <= 1000 for x in xs) and len(set(xs)) == 6
    assert [p.values for p in runner.plan(scen, search="random", metric="y", trials=6,
                                          params=["probe.x=0.001:1000:log"])[2]] == [p.values for p in points]
    with pytest.raises(ScenarioError, match="probe.a"):        # a corner of the space is refused
        runner.plan(scen, search="random", metric="y", params=["probe.a=-1:1"])
    with pytest.raises(ScenarioError, match="--metric"):
        runner.plan(scen, search="optuna", params=["probe.x=0:1"])


def test_optuna_search_is_seeded_resumable_and_finds_the_maximum(tmp_path, tcp_cluster):
    pytest.importorskip("optuna")
    scen = probe(tmp_path, '[sweep.search]\nmethod = "optuna"\nmetric = "y"\ntrials = 8\n'
                 '[sweep.search.params]\n"probe.x" = {low = 0.0, high = 10.0}\n')
    out = tmp_path / "search"
    res = runner.sweep(scen, out, scheduler=tcp_cluster.scheduler_address, echo=lambda s: None)
    df = table.read(res.table)
    assert len(df) == 8 and res.ran == 8 and (df["y"] == 2.0 * df["probe.x"] + 3).all()
    assert res.best["value"] == df["y"].max() and res.best["values"]["probe.x"] == df["probe.x"].max()
    again = runner.sweep(scen, out, scheduler=tcp_cluster.scheduler_address, echo=lambda s: None)
    assert again.ran == 0 and again.skipped == 8                 # the same trials, found by configuration
    assert compare(table.read(again.table)).equals(compare(df))


@pytest.mark.slow
def test_optuna_search_of_20_trials_finds_a_learning_rate_that_learns_xor(tmp_path, tcp_cluster):
    pytest.importorskip("optuna")
    out = tmp_path / "search"
    code = main(["sweep", XOR, "--out", str(out), "--scheduler", tcp_cluster.scheduler_address,
                 "--set", "rule.name=backprop", "--set", "training.epochs=60",
                 "--search", "optuna", "--metric", "final_train_loss", "--direction", "minimize",
                 "--trials", "20", "--param", "training.learning_rate=0.0001:10:log"])
    assert code == 0
    best = json.loads((out / "best.json").read_text())
    df = table.read(table.path_of(out))
    assert len(df) == 20 and (df.status == "completed").all()
    assert best["value"] == df["final_train_loss"].min() and best["trials"] == 20
    won = df[df.point == best["trial"]].iloc[0]
    assert won["final_train_accuracy"] == 1.0 and best["value"] < 0.05          # it learns XOR
    assert (df["final_train_accuracy"] < 1.0).any()                            # and not every rate does
    lr = best["values"]["training.learning_rate"]
    assert 0.1 < lr <= 10
