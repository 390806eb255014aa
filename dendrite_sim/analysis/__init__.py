"""Analysis: gradient diagnostics (:mod:`.gradient`), tuning curves and their change with the
statistics of apical-change studies — bootstrap CIs, permutation tests (:mod:`.tuning`),
imaging responses (:mod:`.imaging_responses`) and spike statistics (:mod:`.spike_stats`)."""
