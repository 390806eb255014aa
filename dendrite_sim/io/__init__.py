"""Scenario loading, run directories, provenance and exports."""
