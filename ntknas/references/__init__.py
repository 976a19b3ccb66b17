"""The shipped references of the built-in search spaces (see ntknas.objectives.reference)."""
