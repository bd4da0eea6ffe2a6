"""Train the post's three models (zeros, large random values, He) once each and print the table.

The post's experiment: make_moons with 400 training and 100 test samples, noise 0.2; Dense 12 relu,
Dense 6 relu, Dense 1 sigmoid; hidden layers initialised with zeros, randn x 10 or He; the output
layer with randn x 1; plain gradient descent, learning rate 0.01, 15000 full-batch epochs.
"""

from initlab import Dense, Initializer, NeuralNetwork
from initlab.datasets import moons

# The post's three hidden-layer schemes, with its table's numbers for comparison.
POST_SCHEMES = {
    "zeros": (lambda: Initializer(scale=0), "50%", "50%"),
    "random_normal x10": (lambda: Initializer(scale=10), "85%", "82%"),
    "he": (lambda: "he", "95%", "94%"),
}


def post_model(initializer, seed=None):
    """The post's 2-12-6-1 network, hidden layers drawn by `initializer`."""
    model = NeuralNetwork(seed=seed)
    model.add(Dense(units=12, activation="relu", initializer=initializer))
    model.add(Dense(units=6, activation="relu", initializer=initializer))
    model.add(Dense(units=1, activation="sigmoid"))
    model.compile(loss="crossentropy")
    return model


def add_arguments(parser):
    parser.add_argument("--epochs", type=int, default=15000, help="training epochs (default 15000)")
    parser.add_argument("--seed", type=int, default=0, help="seed for data and weights (default 0)")


def run(args):
    X_train, Y_train = moons(400, noise=0.2, seed=args.seed)
    X_test, Y_test = moons(100, noise=0.2, seed=args.seed + 10_000)
    header = f"{'Initialization':<20} {'Train acc':>9} {'Test acc':>9} {'Cost':>8}   post: train/test"
    print(header)
    print("-" * len(header))
    for name, (make_initializer, post_train, post_test) in POST_SCHEMES.items():
        model = post_model(make_initializer(), seed=args.seed)
        model.fit(X_train, Y_train, epochs=args.epochs, learning_rate=0.01)
        train, test = model.evaluate(X_train, Y_train), model.evaluate(X_test, Y_test)
        print(f"{name:<20} {train['accuracy']:>8.1f}% {test['accuracy']:>8.1f}% "
              f"{train['loss']:>8.4f}   {post_train}/{post_test}")
    return 0
