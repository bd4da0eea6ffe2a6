"""The fast paths: the compiled training kernel, derived from the building blocks' definitions."""
