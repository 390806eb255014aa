"""Analysis: gradient diagnostics (:mod:`.gradient`), tuning curves and their change with the
statistics of apical-change studies — bootstrap CIs, permutation tests (:mod:`.tuning`),
the per-group apical change of the Fig 5 experiment (:mod:`.apical_change`), imaging responses
(:mod:`.imaging_responses`), the realism statistics of imaging data (:mod:`.realism`) and spike
statistics (:mod:`.spike_stats`)."""
