"""Experiments: what a scenario runs (``[scenario] experiment = "..."``)."""
