"""Interfaces, registry, units, errors and random streams shared by every part."""
