"""Neuron and compartment models. One file per model family; see :mod:`.base` for the contract."""
