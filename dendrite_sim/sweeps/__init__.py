"""Sweeps: one scenario run over grids of its keys, zipped lists, seeds or a search.

``dendrite-sim sweep S.toml --out DIR`` (:mod:`dendrite_sim.commands.sweep`) works in four
steps, one module each:

- :mod:`~dendrite_sim.sweeps.define`: the sweep definition (a ``[sweep]`` table in the scenario
  and/or ``--grid``, ``--zip``, ``--seeds``, ``--search``) expanded into points, every point
  validated as ``dendrite-sim check`` would before anything runs, each named by the hash of its
  resolved configuration;
- :mod:`~dendrite_sim.sweeps.execute`: the points run on Dask ``distributed`` (a
  ``LocalCluster`` of worker processes, or any cluster by its scheduler address), each into an
  ordinary run directory ``DIR/points/<id>/`` that appears under its final name only when the
  point has finished (it is written in ``DIR/points/.partial/<id>/`` and renamed); a rerun skips
  the points whose directory says completed;
- :mod:`~dendrite_sim.sweeps.table`: ``DIR/results.parquet`` (or ``.csv``), one row per point,
  built from the point directories alone, so an interrupted and resumed sweep writes the same
  table as an uninterrupted one;
- :mod:`~dendrite_sim.sweeps.summary`: a metric against a swept key, one line per value of a
  second key, mean and 95 % confidence interval over seeds;
- :mod:`~dendrite_sim.sweeps.search`: random search and Optuna (TPE) search of a named metric
  with a trial budget.

The heavy libraries (``dask.distributed``, ``optuna``, ``pyarrow``) are imported only where they
are used; they come with ``pip install -e ".[sweep]"``.
"""
