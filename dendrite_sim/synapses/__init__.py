"""Synapses: connectivity (CSR), short-term plasticity, spike-timing-dependent plasticity.

* :mod:`dendrite_sim.synapses.stp`  — Tsodyks–Markram short-term plasticity (variants
  ``tsodyks2``, ``mongillo``, ``payeur``), elementwise kernels and closed-form references.
* :mod:`dendrite_sim.synapses.stdp` — Pfister & Gerstner (2006) triplet STDP (pair rule as the
  special case A₃ = 0), all-to-all and nearest-spike, trace and CSR/CSC weight-update kernels.

Kernels are written elementwise (arithmetic, ``np.exp``, :func:`dendrite_sim.neurons.base.select`)
so that one definition runs vectorised in numpy and on scalars inside a Numba-compiled loop.
"""
