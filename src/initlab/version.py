"""The version of initlab, in one place: the package, its results and its stores read it."""

__version__ = "0.1.0"
