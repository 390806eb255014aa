"""Importing this module registers every built-in part (kept for code that imports it).

The built-in packages are listed in :data:`dendrite_sim.core.registry.BUILTIN_PACKAGES`, and
the registry imports them itself on the first lookup; nothing needs to import this module.
"""

from dendrite_sim.core.registry import load_builtins

load_builtins()
