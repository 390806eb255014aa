"""Slow: ≥ 1000 mutated scenarios, built from every shipped ``scenarios/*.toml``, go through
``dendrite-sim check``; none may print a traceback or take longer than 5 s.

Mutations: dropped, renamed and retyped keys; wrong, bare, prefixed and operator-laden units;
NaN, ±inf, huge, negative and zero values; deep nesting; unicode keys and values; truncated
files; random bytes; bad plugin entries; hostile ``--set`` overrides and ``--seed`` values.

The scenarios run in a worker process (imports paid once) that runs ``cli.main(["check", ...])``
in-process and reports the exit code, stderr and any exception that escaped; the parent kills
and restarts the worker when one scenario takes longer than :data:`LIMIT_S` (a hang).

Counts, also from the command line::

    python tests/test_front_door_mutations.py [N] [SEED]
"""

from __future__ import annotations

import copy
import json
import os
import random
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w
import tomllib

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.toml"))
LIMIT_S = 5.0

WORKER = r"""
import io, json, sys, traceback
from dendrite_sim import cli
for line in sys.stdin:
    job = json.loads(line)
    err, out = io.StringIO(), io.StringIO()
    old = sys.stderr, sys.stdout
    sys.stderr, sys.stdout = err, out
    escaped = None
    try:
        try:
            rc = cli.main(job["argv"])
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        rc, escaped = None, traceback.format_exc()
    finally:
        sys.stderr, sys.stdout = old
    text = err.getvalue()
    print(json.dumps({"rc": rc, "err": text[:4000], "lines": text.count("\n"), "escaped": escaped}),
          flush=True)
"""

# ----------------------------------------------------------------------------- mutations
UNIT_SWAPS = ["5 mV", "5 pA", "5 nS", "5 Hz", "5 ms", "5 um", "5 pF", "5 kg", "5", "ms", "5 Ms",
              "5 MV", "5 as", "10**10**10 ms", "10**400 pA", "2**1000 ms", "1e400 ms", "nan Hz",
              "inf ms", "-inf mV", "(5) ms", "5 ms ms", "5 pQ", "1e-7 ms", "1e308 s", "5 µs", "5 μm",
              "", " ", "5 ms extra", "5e", "1_000 ms", "0x10 ms", "5 ms#", "5 ms\n", "٥ ms"]
HOSTILE = [float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 10**18, 2**63, -2**63, 2**64,
           10**30, 10**400, -1, 0, -0.0, 1e-320, True, False, "", "x" * 5000, [], {}, [[[]]],
           {"a": {"b": {}}}, "ünïcødé ✓", "\u202e\u0000", "🐍" * 50, [1, "a", 2.5], ["5 ms"] * 3]
PLUGINS = ["/tmp", "no_such_file.py", "x" * 5000 + ".py", "a\u0000.py", "", "scenario.toml",
           "../" * 300 + "x.py", "ünï.py", "__BROKEN__", "__RAISES__", "__SYNTAX__", "/dev/null"]


def _paths(d, prefix=()):
    if isinstance(d, dict):
        for k, v in d.items():
            yield prefix + (k,), v
            yield from _paths(v, prefix + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield prefix + (i,), v
            yield from _paths(v, prefix + (i,))


def _parent(d, path):
    node = d
    for k in path[:-1]:
        node = node[k]
    return node


def _deep(depth: int, table: bool):
    v = 1
    for _ in range(depth):
        v = {"a": v} if table else [v]
    return v


def _typo(key: str, rng: random.Random) -> str:
    if not key:
        return "x"
    i = rng.randrange(len(key))
    op = rng.choice(["drop", "swap", "add", "case", "unicode"])
    if op == "drop" and len(key) > 1:
        return key[:i] + key[i + 1:]
    if op == "swap" and len(key) > 1 and i < len(key) - 1:
        return key[:i] + key[i + 1] + key[i] + key[i + 2:]
    if op == "case":
        return key.upper()
    if op == "unicode":
        return key[:i] + "é" + key[i:]
    return key[:i] + rng.choice("abcxyz_") + key[i:]


def mutate_data(data: dict, rng: random.Random) -> tuple[str, dict]:
    """One structural mutation of a parsed scenario: (family, new data)."""
    d = copy.deepcopy(data)
    paths = list(_paths(d))
    path, value = rng.choice(paths)
    parent = _parent(d, path)
    leaf = path[-1]
    family = rng.choice(["drop", "rename", "retype", "units", "hostile", "deep", "unicode_key",
                         "add_key", "plugins"])
    if family == "drop":
        del parent[leaf]
    elif family == "rename" and isinstance(parent, dict):
        parent[_typo(str(leaf), rng)] = parent.pop(leaf)
    elif family == "retype":
        parent[leaf] = rng.choice([str(value), 1, 1.5, True, [value], {"x": value}, "5 ms", [1, 2]])
    elif family == "units":
        strings = [(p, v) for p, v in paths if isinstance(v, str) and any(c.isdigit() for c in v)]
        if strings:
            path, _ = rng.choice(strings)
            parent, leaf = _parent(d, path), path[-1]
        parent[leaf] = rng.choice(UNIT_SWAPS)
    elif family == "hostile":
        numbers = [(p, v) for p, v in paths if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if numbers and rng.random() < 0.7:
            path, _ = rng.choice(numbers)
            parent, leaf = _parent(d, path), path[-1]
        parent[leaf] = rng.choice(HOSTILE)
    elif family == "deep":
        parent[leaf] = _deep(rng.choice([33, 40, 100, 200]), table=rng.random() < 0.5)
    elif family == "unicode_key" and isinstance(parent, dict):
        parent[rng.choice(["ключ", "🔑", "k\u0301", "a b", "", "\u00a0"])] = parent.pop(leaf)
    elif family == "add_key" and isinstance(parent, dict):
        parent[rng.choice(["extra", "seed", "name", "n", "dt"])] = rng.choice(HOSTILE)
    else:
        family = "plugins"
        d.setdefault("scenario", {})
        if isinstance(d["scenario"], dict):
            d["scenario"]["plugins"] = [rng.choice(PLUGINS)]
    return family, d


def mutate_text(text: str, rng: random.Random) -> tuple[str, bytes]:
    """One textual mutation: (family, file bytes)."""
    family = rng.choice(["truncate", "random_bytes", "flip_bytes", "deep_text", "garbage_line",
                         "bom_and_nul"])
    raw = text.encode("utf-8")
    if family == "truncate":
        return family, raw[: rng.randrange(max(1, len(raw)))]
    if family == "random_bytes":
        return family, bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 50, 2000])))
    if family == "flip_bytes":
        b = bytearray(raw)
        for _ in range(rng.randint(1, 8)):
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
        return family, bytes(b)
    if family == "deep_text":
        n = rng.choice([100, 1000, 20000])
        opener, closer = ("[", "]") if rng.random() < 0.5 else ("{a=", "}")
        return family, raw + f"\nzz_deep = {opener * n}1{closer * n}\n".encode()
    if family == "garbage_line":
        lines = text.splitlines()
        i = rng.randrange(len(lines) + 1)
        junk = rng.choice(["= 5", "[[", "x = ", "x = 1979-05-27T07:32:00Z", 'x = """', "x = 0b102",
                           "x = 1e400", "x = " + "9" * 5000, "[scenario]", "x = inf", "x = nan"])
        return family, "\n".join(lines[:i] + [junk] + lines[i:]).encode()
    return family, b"\xef\xbb\xbf" + raw.replace(b"\n", b"\n\x00", 1)


def mutate_args(path: str, rng: random.Random) -> tuple[str, list[str]]:
    """Hostile command-line arguments on an unchanged scenario."""
    family = rng.choice(["set", "seed"])
    if family == "seed":
        return family, ["check", path, "--seed", rng.choice(["1e400", "-1", "9" * 30, "9" * 5000, "0x10",
                                                             "nan", "", " 3", "18446744073709551616"])]
    data = tomllib.loads(Path(path).read_text())
    keys = [".".join(str(k) for k in p) for p, v in _paths(data) if all(isinstance(k, str) for k in p)]
    key = rng.choice(keys + ["", ".", "a..b", "x" * 300, ".".join(["a"] * 100)])
    val = rng.choice(["1e400", "nan", "inf", "9" * 5000, "[" * 5000 + "]" * 5000, '"10**10**10 ms"',
                      '"5 Ms"', '"ms"', "{a = {b = {c = 1}}}", "-1", "0", "true", "'\u0000'", "", "=",
                      "10**400", '"1e-7 ms"', "[1, 'a']", "1979-05-27"])
    return family, ["check", path, "--set", f"{key}={val}"]


PLUGIN_FILES = {"__BROKEN__": "broken_plugin.txt", "__RAISES__": "raises_plugin.py",
                "__SYNTAX__": "syntax_plugin.py"}


def _plugin_files(folder: Path) -> None:
    (folder / "raises_plugin.py").write_text("raise RuntimeError('plugin failed on purpose')\n")
    (folder / "syntax_plugin.py").write_text("def f(:\n")
    (folder / "broken_plugin.txt").write_text("not python\n")


def build_cases(n: int, seed: int, folder: Path) -> list[tuple[str, str, list[str]]]:
    """``n`` mutated cases as (scenario name, family, argv), files written under ``folder``."""
    rng = random.Random(seed)
    _plugin_files(folder)
    cases = []
    for i in range(n):
        src = SCENARIOS[i % len(SCENARIOS)]
        text = src.read_text(encoding="utf-8")
        target = folder / f"m{i:05d}.toml"
        kind = rng.random()
        if kind < 0.6:
            family, data = mutate_data(tomllib.loads(text), rng)
            if isinstance(data.get("scenario"), dict):
                plugins = data["scenario"].get("plugins")
                if isinstance(plugins, list) and plugins and isinstance(plugins[0], str):
                    data["scenario"]["plugins"] = [PLUGIN_FILES.get(p, p) for p in plugins]
            try:
                body = tomli_w.dumps(data).encode("utf-8", "surrogatepass")
            except (TypeError, ValueError, RecursionError):   # NaN keys etc.: write what TOML can
                family, body = family + "_unwritable", text.encode()
            target.write_bytes(body)
            argv = ["check", str(target)]
        elif kind < 0.85:
            family, body = mutate_text(text, rng)
            target.write_bytes(body)
            argv = ["check", str(target)]
        else:
            family, argv = mutate_args(str(src), rng)
        cases.append((src.stem, family, argv))
    return cases


class Worker:
    def __init__(self):
        self.proc = None

    def start(self):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)

    def run(self, argv, limit):
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        self.proc.stdin.write(json.dumps({"argv": argv}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], limit)
        if not ready:
            self.kill()
            return None
        line = self.proc.stdout.readline()
        if not line:                       # the worker died (e.g. a plugin called os._exit)
            self.proc = None
            return {"rc": "died", "err": "", "escaped": "worker died"}
        return json.loads(line)

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def run_cases(cases, limit=LIMIT_S, warm=True) -> dict:
    """Run every case; returns counts and examples of each kind of failure."""
    w = Worker()
    stats = {"n": len(cases), "exit_0": 0, "exit_2": 0, "tracebacks": [], "hangs": [], "other_exit": [],
             "multi_line": [], "internal": [], "families": {}, "max_s": 0.0, "accepted": []}
    try:
        if warm:                           # first checks import and compile: not timed
            for path in SCENARIOS:
                w.run(["check", str(path)], 120)
        for name, family, argv in cases:
            stats["families"][family] = stats["families"].get(family, 0) + 1
            t0 = time.perf_counter()
            res = w.run(argv, limit)
            dt = time.perf_counter() - t0
            stats["max_s"] = max(stats["max_s"], dt)
            case = {"scenario": name, "family": family, "argv": [a[:200] for a in argv]}
            if res is None:
                w.start()
                stats["hangs"].append(case)
                continue
            err = res["err"]
            if res["escaped"] or "Traceback (most recent call last)" in err:
                stats["tracebacks"].append({**case, "tb": (res["escaped"] or err)[-1500:]})
            elif res["rc"] == 0:
                stats["exit_0"] += 1
                stats["accepted"].append(case | {"argv": argv})
            elif res["rc"] == 2:
                stats["exit_2"] += 1
                if res.get("lines") != 1 or not err.startswith("error: "):
                    stats["multi_line"].append({**case, "err": err[:500]})
            else:
                stats["other_exit"].append({**case, "rc": res["rc"], "err": err[:500]})
            if "error: internal:" in err:
                stats["internal"].append({**case, "err": err[:500]})
    finally:
        w.kill()
    return stats


def summary(stats) -> str:
    return (f"{stats['n']} mutated scenarios: {stats['exit_0']} accepted, {stats['exit_2']} refused (exit 2), "
            f"{len(stats['tracebacks'])} tracebacks, {len(stats['hangs'])} hangs (> {LIMIT_S:g} s), "
            f"{len(stats['other_exit'])} other exit codes ({len(stats['internal'])} internal errors), "
            f"{len(stats['multi_line'])} not one line; slowest {stats['max_s']:.2f} s")


# ----------------------------------------------------------------------------- run a sample
SMALL_RBV = ["diagnostics.seeds=1", "diagnostics.draws=5", "diagnostics.n_batches=4", "diagnostics.widths=[5]",
             "training.steps=10", "training.checkpoints=2", "diagnostics.pool_size=16"]
#: per shipped scenario: --set overrides that make a run short (applied last, so they win)
SHORTEN = {
    "rule_bias_variance": SMALL_RBV,
    "xor": ["training.epochs=2"], "digits_bp": ["training.epochs=1"], "digits_fa": ["training.epochs=1"],
    "teacher_student_fa": ["training.epochs=1"], "gratings_reward": ["training.epochs=1"],
    "microcircuit_digits": ["training.epochs=1"],
    "microcircuit_self_predicting": ["training.steps=20", "training.record_every=10"],
    "pyr_stp_4000": ['simulation.duration="10 ms"'],
    "burst_multiplexing": ['network.duration="1 s"'],
    "urbanczik_senn_fig1": ["protocol.repetitions=3", "protocol.seeds=1", "analysis.final_repetitions=1"],
}


#: run failures already known and reported to the owner of the code (the regex matches the
#: one-line error); a new kind of failure still fails the test
KNOWN_RUN_FAILURES: tuple[str, ...] = ()


def _known(err: str) -> bool:
    import re

    return any(re.search(p, err) for p in KNOWN_RUN_FAILURES)


def _strict_json(path: Path):
    def refuse(name):
        raise ValueError(f"{name} in {path.name}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def run_sample(stats, folder: Path, n: int = 60, limit: float = 180.0) -> dict:
    """Run up to ``n`` accepted cases (shortened by :data:`SHORTEN`) through ``run``; count exit
    codes other than 0/2, tracebacks, hangs, NaN or invalid JSON, partial files."""
    w = Worker()
    out = {"n": 0, "exit_0": 0, "exit_2": 0, "tracebacks": [], "hangs": [], "other_exit": [], "bad_json": [],
           "partial": [], "status": [], "known": []}
    try:
        picked = [c for c in stats["accepted"] if c["scenario"] in SHORTEN][:n]
        for i, case in enumerate(picked):
            run_dir = folder / f"run{i:03d}"
            argv = ["run", case["argv"][1], "--out", str(run_dir), *case["argv"][2:]]
            for kv in SHORTEN[case["scenario"]]:
                argv += ["--set", kv]
            out["n"] += 1
            out.setdefault("by_scenario", {})
            out["by_scenario"][case["scenario"]] = out["by_scenario"].get(case["scenario"], 0) + 1
            out.setdefault("by_family", {})
            out["by_family"][case["family"]] = out["by_family"].get(case["family"], 0) + 1
            res = w.run(argv, limit)
            rec = {**case, "argv": [a[:200] for a in argv]}
            if res is None:
                w.start()
                out["hangs"].append(rec)
                continue
            if res["escaped"] or "Traceback (most recent call last)" in res["err"]:
                out["tracebacks"].append({**rec, "tb": (res["escaped"] or res["err"])[-1500:]})
                continue
            if res["rc"] not in (0, 2):
                kind = "known" if _known(res["err"]) else "other_exit"
                out[kind].append({**rec, "rc": res["rc"], "err": res["err"][:500]})
                continue
            out[f"exit_{res['rc']}"] += 1
            if not run_dir.is_dir():
                continue
            for f in run_dir.rglob("*"):
                if f.name.endswith(".tmp"):
                    out["partial"].append({**rec, "file": str(f)})
                if f.suffix == ".json":
                    try:
                        _strict_json(f)
                    except ValueError as exc:
                        out["bad_json"].append({**rec, "file": f.name, "why": str(exc)[:200]})
            status = (run_dir / "status.json")
            want = "completed" if res["rc"] == 0 else "failed"
            if status.is_file() and _strict_json(status).get("state") != want:
                out["status"].append({**rec, "status": _strict_json(status)})
            if res["rc"] == 0 and not (run_dir / "metrics.json").is_file():
                out["partial"].append({**rec, "file": "metrics.json missing"})
    finally:
        w.kill()
    return out


def run_summary(r) -> str:
    return (f"{r['n']} accepted scenarios run shortened: {r['exit_0']} exit 0, {r['exit_2']} exit 2, "
            f"{len(r['other_exit'])} other exit codes (+ {len(r['known'])} known, reported), "
            f"{len(r['tracebacks'])} tracebacks, {len(r['hangs'])} hangs, "
            f"{len(r['bad_json'])} non-strict or invalid JSON files, {len(r['partial'])} partial files, "
            f"{len(r['status'])} wrong status.json")


@pytest.mark.slow
def test_1000_mutated_scenarios_never_traceback_or_hang(tmp_path):
    cases = build_cases(1200, seed=14, folder=tmp_path)
    stats = run_cases(cases)
    print(summary(stats))
    assert stats["n"] >= 1000
    assert not stats["tracebacks"], stats["tracebacks"][:3]
    assert not stats["hangs"], stats["hangs"][:3]
    assert not stats["other_exit"], stats["other_exit"][:3]
    assert not stats["multi_line"], stats["multi_line"][:3]
    assert stats["exit_0"] + stats["exit_2"] == stats["n"]


@pytest.mark.slow
def test_a_sample_of_accepted_mutations_runs_cleanly(tmp_path):
    stats = run_cases(build_cases(1200, seed=14, folder=tmp_path))
    r = run_sample(stats, tmp_path, n=60)
    print(run_summary(r))
    assert r["n"] >= 60
    for kind in ("tracebacks", "hangs", "other_exit", "bad_json", "partial", "status"):
        assert not r[kind], (kind, r[kind][:3])


if __name__ == "__main__":
    import tempfile

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1200
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 14
    n_run = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    with tempfile.TemporaryDirectory() as tmp:
        stats = run_cases(build_cases(n, seed, Path(tmp)))
        print(summary(stats))
        if n_run:
            r = run_sample(stats, Path(tmp), n=n_run)
            print(run_summary(r))
            print("run sample by scenario:", json.dumps(r.get("by_scenario", {}), sort_keys=True))
            print("run sample by family:", json.dumps(r.get("by_family", {}), sort_keys=True))
            for kind in ("tracebacks", "hangs", "other_exit", "bad_json", "partial", "status", "known"):
                for case in r[kind][:6]:
                    print("run", kind, json.dumps(case)[:1500])
    print("families:", json.dumps(stats["families"], sort_keys=True))
    for kind in ("tracebacks", "hangs", "other_exit", "multi_line", "internal"):
        for case in stats[kind][:6]:
            print(kind, json.dumps(case)[:1200])
