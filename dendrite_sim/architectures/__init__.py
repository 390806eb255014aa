"""Architectures: how populations and pathways are wired."""
