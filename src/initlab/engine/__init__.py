"""The engine: NeuralNetwork, the training loop, flat parameters, save and load."""
