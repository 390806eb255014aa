"""User-facing errors.

A :class:`ScenarioError` names the key path that is wrong and what was expected; the CLI prints
it as one line ``error: <key path>: <what was expected>`` and exits with code 2.
"""

from __future__ import annotations


class ScenarioError(ValueError):
    """A user error in a scenario, a CLI argument or a part's parameters."""

    def __init__(self, key: str, expected: str):
        self.key = key
        self.expected = expected
        super().__init__(f"{key}: {expected}")

    def line(self) -> str:
        return f"error: {_printable(self.key) or '<empty key>'}: {_printable(self.expected)}"


def _printable(text: str) -> str:
    """Escape control characters so the message stays on one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))
