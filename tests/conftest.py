"""Test-wide settings.

Under CI (``CI`` set in the environment) hypothesis runs derandomised, so a CI run explores the
same examples every time and cannot fail by chance on an input no developer has seen; locally it
keeps exploring new examples.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
