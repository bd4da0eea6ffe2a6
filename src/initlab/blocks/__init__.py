"""The building blocks: activations, losses, initializers, optimizers, layers, datasets.

Each is a registry of definitions: what an operation is, once, with every fact other parts ask of
it. Nothing here imports the engine, the fast paths or the tools above it.
"""
