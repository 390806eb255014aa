"""``dendrite-sim export RUN_DIR --format nwb|npz``: export a run's synthetic imaging sessions.

A run directory holds one session folder per imaging session (``session`` or ``session-<name>``,
see :mod:`dendrite_sim.imaging.session`). Each becomes ``RUN_DIR/<folder>.nwb`` (or ``.npz``),
written through a temporary file renamed at the end; the run's ``config.toml`` (the resolved
scenario) and ``provenance.json`` are embedded as provenance.
"""

from __future__ import annotations

import json
from pathlib import Path

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.imaging.session import SyntheticSession, find_sessions

FORMATS = ("nwb", "npz")


def run_provenance(run_dir: Path) -> dict:
    """The run's resolved scenario text and provenance record, where present."""
    out = {}
    cfg = run_dir / "config.toml"
    if cfg.is_file():
        out["run_config_toml"] = cfg.read_text(encoding="utf-8")
    prov = run_dir / "provenance.json"
    if prov.is_file():
        try:
            out["run_provenance"] = json.loads(prov.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            out["run_provenance_text"] = prov.read_text(encoding="utf-8")
    return out


def _status(run_dir: Path) -> dict:
    try:
        rec = json.loads((run_dir / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return rec if isinstance(rec, dict) else {}


def export_session(session: SyntheticSession, path: str | Path, fmt: str,
                   extra_provenance: dict | None = None) -> Path:
    if fmt == "nwb":
        from dendrite_sim.io.nwb import write_nwb

        return write_nwb(session, path, extra_provenance=extra_provenance)
    if fmt == "npz":
        from dendrite_sim.io.npz_export import export_npz

        return export_npz(session, path, extra_provenance=extra_provenance)
    raise ScenarioError("--format", f"expected one of {', '.join(FORMATS)}, got {fmt!r}")


def export_all(run_dir: str | Path, fmt: str = "nwb") -> list[Path]:
    """Export every session of ``run_dir``; returns the written files."""
    if fmt not in FORMATS:
        raise ScenarioError("--format", f"expected one of {', '.join(FORMATS)}, got {fmt!r}")
    run_dir = Path(run_dir)
    if run_dir.is_file():
        raise ScenarioError("RUN_DIR", f"expected a run directory (the folder `dendrite-sim run` "
                            f"wrote); {str(run_dir)!r} is a file"
                            + (f": pass {str(run_dir.parent)!r}" if (run_dir.parent / "config.toml").is_file()
                               else ""))
    if not run_dir.is_dir():
        raise ScenarioError("RUN_DIR", f"expected a run directory; {str(run_dir)!r} does not exist")
    status = _status(run_dir)
    if status.get("state") in ("failed", "interrupted", "running"):
        why = f": {status['reason']}" if status.get("reason") else ""
        raise ScenarioError("RUN_DIR", f"expected a finished run; the run in {str(run_dir)!r} is "
                            f"{status['state']}{why} (status.json)")
    folders = find_sessions(run_dir)
    if not folders:
        raise ScenarioError("RUN_DIR", f"expected a run directory with an exportable imaging session "
                            f"(a 'session' folder with meta.json); {str(run_dir)!r} has none")
    extra = run_provenance(run_dir)
    out = []
    for folder in folders:
        try:
            session = SyntheticSession.load(folder)
        except (OSError, ValueError, KeyError) as exc:
            raise ScenarioError("RUN_DIR", f"expected a readable session in {str(folder)!r}: {exc}") from None
        out.append(export_session(session, run_dir / f"{folder.name}.{fmt}", fmt, extra))
    return out


def export_run(run_dir: str | Path, fmt: str = "nwb") -> Path:
    """Export a run; returns the written file, or ``RUN_DIR`` when it held several sessions."""
    paths = export_all(run_dir, fmt)
    return paths[0] if len(paths) == 1 else Path(run_dir)
