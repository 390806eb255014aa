"""Substrates: the rate network and the spiking network."""
