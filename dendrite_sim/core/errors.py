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
        return f"error: {_printable(self.key, MAX_KEY_CHARS) or '<empty key>'}: {_printable(self.expected)}"


class DivergenceError(ScenarioError):
    """A run whose numbers became NaN or infinite: ``key`` names what diverged (a metrics key
    path such as ``curves.backprop.train_loss[1]``, or a population, variable and time)."""


class ArgumentError(ScenarioError):
    """A bad argument to the Python API (``Network.run(float("nan"))``); a ``ValueError``."""


MAX_KEY_CHARS = 200          # a key path longer than this is cut in the error line
MAX_LINE_CHARS = 2000        # and so is the message


def _printable(text: str, limit: int = MAX_LINE_CHARS) -> str:
    """Escape control characters (and lone surrogates) so the message stays on one printable
    line; cut it to ``limit`` characters."""
    text = "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in str(text))
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 3] + "..."
