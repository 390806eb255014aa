"""``docs/scenarios.md`` is generated from the schemas (``dendrite-sim docs``) and kept fresh.

When this test fails after you added or changed a part, regenerate the reference with::

    dendrite-sim docs
"""

from pathlib import Path

from dendrite_sim.cli import main
from dendrite_sim.core import registry
from dendrite_sim.io import reference

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "docs" / "scenarios.md"


def test_committed_reference_is_fresh(tmp_path, capsys):
    fresh = tmp_path / "scenarios.md"
    assert main(["docs", "--out", str(fresh)]) == 0
    assert COMMITTED.is_file(), "docs/scenarios.md is missing: run `dendrite-sim docs`"
    assert COMMITTED.read_text(encoding="utf-8") == fresh.read_text(encoding="utf-8"), (
        "docs/scenarios.md is stale: regenerate it with `dendrite-sim docs`")


def test_reference_covers_every_built_in_part_and_key():
    text = reference.scenario_reference()
    builtin = set(registry.builtin_modules())
    for kind in ("experiment", "task", "architecture", "objective", "rule", "neuron", "indicator"):
        for name, cls in registry.available(kind).items():
            if cls.__module__ in builtin:
                assert f"{kind} `{name}`" in text, (kind, name)
    for name, cls in registry.available("experiment").items():
        if cls.__module__ not in builtin:
            continue
        for sec, spec in cls.sections.items():
            if isinstance(spec, dict):
                assert f"#### `[{sec}]`" in text
                for key in spec:
                    assert f"| `{key}` |" in text, (name, sec, key)
    for word in ("## Presets", "payeur_stf", "visual_all_to_all", "[network.projections.<name>]",
                 "metrics.json keys", "| `tau_m` | 20 | ms | > 0 |"):
        assert word in text, word


def test_reference_is_deterministic_and_ignores_plugins():
    a = reference.scenario_reference()

    @registry.register("rule", "zz_docs_test_rule")
    class _Rule:  # a plugin-like part registered at run time
        """Not built in."""

    try:
        assert reference.scenario_reference() == a
        assert "zz_docs_test_rule" not in a
    finally:
        registry._REGISTRY["rule"].pop("zz_docs_test_rule", None)


def test_check_flag_and_version(tmp_path, capsys):
    stale = tmp_path / "old.md"
    stale.write_text("old\n")
    assert main(["docs", "--out", str(stale), "--check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert main(["docs", "--out", str(stale)]) == 0
    assert main(["docs", "--out", str(stale), "--check"]) == 0
    capsys.readouterr()
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert capsys.readouterr().out.startswith("dendrite-sim ")


def test_list_shows_whole_sentences_and_presets(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "preset:" in out and "stp payeur_stf" in out and "rule stdp pair" in out
    for line in out.splitlines():
        if line.startswith("  ") and not line.startswith("  stp ") and not line.startswith("  rule "):
            desc = line.split(None, 1)[1] if len(line.split(None, 1)) > 1 else ""
            assert not desc or desc.rstrip()[-1] in ".)]" or len(desc) < 160, line
