"""The import layering (``.importlinter``) holds and the package's import graph has no cycles.

Both run in the default test run, so CI enforces them: ``lint-imports`` checks the contracts
(core lowest ... cli highest, core importing nothing outside core, no cycles between
siblings), and grimp's graph of every module of ``dendrite_sim`` — the one import-linter
builds — must have no strongly connected component of more than one module.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from dendrite_sim.core import registry

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dendrite_sim"
CONFIG = ROOT / ".importlinter"


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("dendrite_sim", cache_dir=None)


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    for start in edges:
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = len(index)
                stack.append(v)
                on_stack.add(v)
            if i < len(edges[v]):
                work.append((v, i + 1))
                w = edges[v][i]
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    cycles.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return cycles


def test_import_cycles_finder_finds_a_cycle():
    g = grimp.ImportGraph()
    for m in ("p", "p.a", "p.b", "p.c"):
        g.add_module(m)
    g.add_import(importer="p.a", imported="p.b")
    g.add_import(importer="p.b", imported="p.c")
    assert import_cycles(g) == []
    g.add_import(importer="p.c", imported="p.a")
    assert import_cycles(g) == [["p.a", "p.b", "p.c"]]


def test_package_has_no_import_cycles():
    cycles = import_cycles(_graph())
    assert not cycles, "import cycles (break each by moving code down a layer):\n" + "\n".join(
        f"  {len(c)} modules: {', '.join(c)}" for c in cycles)


def test_import_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports not found: install the test extras (import-linter)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([exe, str(CONFIG), "--no-cache", "--no-logo"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_core_and_package_face_import_only_core():
    g = _graph()
    for m in sorted(g.find_descendants("dendrite_sim.core") | {"dendrite_sim.core", "dendrite_sim"}):
        outside = {t for t in g.find_modules_directly_imported_by(m)
                   if not (t == "dendrite_sim.core" or t.startswith("dendrite_sim.core."))}
        assert not outside, f"{m} imports {sorted(outside)} from outside dendrite_sim.core"


def _registering_modules() -> set[str]:
    """Modules of the package that apply ``@register(...)`` to a class."""
    out = set()
    for f in PACKAGE.rglob("*.py"):
        tree = ast.parse(f.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(d, ast.Call) and getattr(d.func, "id", getattr(d.func, "attr", "")) == "register"
                    for d in node.decorator_list):
                rel = f.relative_to(ROOT).with_suffix("")
                out.add(".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts))
                break
    return out


def test_every_built_in_part_is_found_by_the_registry():
    listed = set(registry.builtin_modules())
    missing = _registering_modules() - listed
    assert not missing, f"modules with @register parts outside registry.BUILTIN_PACKAGES: {sorted(missing)}"
    registry.load_builtins()
    assert set(sys.modules) >= listed


def test_lookup_registers_built_ins_in_a_fresh_interpreter():
    """Importing the package and looking a part up loads the built-ins, without dendrite_sim.builtins."""
    code = ("import sys; import dendrite_sim; from dendrite_sim.core import registry; "
            "assert 'dendrite_sim.rules.backprop' not in sys.modules; "
            "assert 'backprop' in registry.available('rule'); "
            "assert registry.get('experiment', 'train').registered_name == 'train'; "
            "assert 'dendrite_sim.builtins' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=300)


def test_a_plugin_part_replaces_the_built_in_of_the_same_name(tmp_path):
    """Plugins load after the built-ins, so the user's part wins whatever is looked up first."""
    (tmp_path / "mine.py").write_text(
        "from dendrite_sim import register\n"
        "from dendrite_sim.core.interfaces import Objective\n\n"
        "@register('objective', 'mse')\n"
        "class MyMSE(Objective):\n"
        "    '''Mine.'''\n")
    code = ("from dendrite_sim.core import registry; "
            f"registry.load_plugin({str(tmp_path / 'mine.py')!r}, 'scenario.plugins[0]'); "
            "assert registry.get('objective', 'mse').__name__ == 'MyMSE'; "
            "assert 'cross_entropy' in registry.available('objective')")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=300)
