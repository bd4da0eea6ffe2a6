"""Tools that work on a model: the Ensemble (K models at once), LSUV, diagnostics, theory."""
