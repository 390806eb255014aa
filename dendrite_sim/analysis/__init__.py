"""Analysis: gradient diagnostics, tuning, apical-change statistics."""
