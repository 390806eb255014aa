"""Cross-simulator validation: the same networks written for Brian2 (an optional dependency)."""
