"""initlab: a small, exact and fast NumPy neural-network framework for studying initialisation.

    from initlab import NeuralNetwork, Dense, Initializer

The core (this package's top-level modules) imports only NumPy; studies, plots and the command line
import scikit-learn, matplotlib and tqdm when they are used.
"""

from initlab.blocks.initializers import Initializer
from initlab.blocks.layers import Dense, Layer
from initlab.engine.model import NeuralNetwork
from initlab.engine.saving import ModelFileError
from initlab.tools import lsuv  # noqa: F401 - registers model.initialize(X, method="lsuv")
from initlab.tools.ensemble import Ensemble
from initlab.version import __version__

__all__ = [
    "NeuralNetwork",
    "Dense",
    "Layer",
    "Initializer",
    "Ensemble",
    "ModelFileError",
    "__version__",
]
