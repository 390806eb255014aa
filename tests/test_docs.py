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


# --------------------------------------------------------------------------- docs/models.md
MODELS = ROOT / "docs" / "models.md"
DESIGN = ROOT / "docs" / "design.md"


def _sections(text):
    """{anchor id: [table rows (cells)]} — rows of the tables that follow a heading, for every
    anchor written just before that heading."""
    import re
    out, pending, current = {}, [], []
    for line in text.splitlines():
        m = re.fullmatch(r'<a id="([^"]+)"></a>', line.strip())
        if m:
            pending.append(m.group(1))
            out.setdefault(m.group(1), [])
        elif line.startswith("#"):
            current, pending = pending, []
        elif line.startswith("| `"):
            cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
            for a in current + pending:
                out[a].append(cells)
    return out


def _same(doc: str, value) -> bool:
    if isinstance(value, bool):
        return doc == str(value).lower()
    try:
        return abs(float(doc) - float(value)) <= 1e-4 * max(1.0, abs(float(value)))
    except ValueError:
        return doc == str(value)


def test_models_doc_has_a_section_for_every_built_in_part():
    sections = _sections(MODELS.read_text(encoding="utf-8"))
    builtin = set(registry.builtin_modules())
    for kind in ("neuron", "rule", "objective", "indicator"):
        for name, cls in registry.available(kind).items():
            if cls.__module__ in builtin:
                assert f"{kind}-{name}" in sections, f"docs/models.md has no section for {kind} {name!r}"


def test_models_doc_parameter_tables_match_the_registered_parts():
    sections = _sections(MODELS.read_text(encoding="utf-8"))
    checked = 0
    builtin = set(registry.builtin_modules())                  # not plugins other tests registered
    for name, cls in registry.available("neuron").items():
        if cls.__module__ not in builtin:
            continue
        rows = {r[0]: r for r in sections[f"neuron-{name}"] if len(r) == 3}
        defaults = cls.Params._field_defaults
        assert set(rows) == set(defaults), (name, set(rows) ^ set(defaults))
        for field, (_, value, unit) in rows.items():
            assert _same(value, defaults[field]), (name, field, value, defaults[field])
            assert unit == cls.units.get(field, "1"), (name, field, unit)
            checked += 1
    us = registry.get("rule", "urbanczik_senn")
    for field, value, unit in (r for r in sections["rule-urbanczik_senn"] if len(r) == 3):
        assert _same(value, us.Params._field_defaults[field]) and unit == us.units[field], field
        checked += 1
    assert checked > 100


def test_models_doc_preset_tables_match_the_code():
    from dendrite_sim.synapses import stp
    sections = _sections(MODELS.read_text(encoding="utf-8"))
    variants = {0: "tsodyks2", 1: "mongillo", 2: "payeur"}
    rows = {r[0]: r for r in sections["stp"] if r[0] in stp.PRESETS}
    assert set(rows) == set(stp.PRESETS)
    for name, p in stp.PRESETS.items():
        _, U, tau_D, tau_F, f, variant, _src = rows[name]
        assert all(_same(a, b) for a, b in ((U, p.U), (tau_D, p.tau_D), (tau_F, p.tau_F), (f, p.f))), name
        assert variant == variants[int(p.variant)], name
    stdp = registry.get("rule", "stdp")
    rows = {r[0]: r[1:] for r in sections["stdp"] if r[0] in stdp.presets}
    assert set(rows) == set(stdp.presets)
    fields = ("A2_plus", "A3_plus", "A2_minus", "A3_minus", "tau_plus", "tau_minus", "tau_x", "tau_y",
              "nearest")
    for name, p in stdp.presets.items():
        assert (p.w_min, p.w_max) == (0.0, 1.0)
        for field, doc in zip(fields, rows[name]):
            assert _same(doc, getattr(p, field)), (name, field, doc)


def test_user_docs_links_resolve():
    import re
    anchors = {p.name: set(_sections(p.read_text(encoding="utf-8"))) for p in (MODELS, DESIGN)}
    for page in (MODELS, DESIGN, ROOT / "docs" / "user_model.md", ROOT / "README.md"):
        for target, anchor in re.findall(r"\]\(((?:docs/)?[\w.]+\.md)(?:#([\w-]+))?\)", page.read_text(encoding="utf-8")):
            path = (page.parent / target) if page.parent.name == "docs" else ROOT / target
            assert path.is_file(), (page.name, target)
            if anchor:
                assert anchor in anchors.get(path.name, set()), (page.name, target, anchor)
