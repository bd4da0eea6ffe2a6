"""Flat parameters: every layer's arrays as views into one vector, and its gradients into another.

The optimizer's update is then a few whole-vector operations, whatever the number of layers, and
save/load and the Ensemble move a model's parameters as one array.
"""

import numpy as np


def pack_parameters(layers):
    """Move every layer's parameters (and gradients) into one flat vector each, as views.

    Returns (params, grads). Each layer packs its own slice (`Layer.pack`): its arrays keep their
    shapes, including any leading ensemble axis, and a Dense layer packs [W | b] as one block.
    """
    sizes = [layer.count_params() for layer in layers]
    dtype = next(value.dtype for layer in layers for value in layer.params.values())
    params, grads = np.empty(sum(sizes), dtype), np.zeros(sum(sizes), dtype)
    offset = 0
    for layer, size in zip(layers, sizes, strict=True):
        layer.pack(params[offset : offset + size], grads[offset : offset + size])
        offset += size
    return params, grads
