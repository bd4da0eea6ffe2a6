"""One registry mechanism for every family of building blocks, as Keras keeps its registries.

A family (activations, losses, optimizers, layers) is a `Registry`: a dict from names to classes,
filled by the `register` decorator where each class is defined, and read by `get`, which takes a
name, a config dict ({"name": ..., **arguments}), an instance of the family, or None (the
family's default). A user adds a building block from their own code the same way the package
does:

    >>> from initlab.blocks import activations
    >>> @activations.register("cube")
    ... class Cube(activations.Activation):
    ...     def function(self, z, math):
    ...         return z * z * z
    ...     def derivative(self, z, a, math):
    ...         return 3.0 * z * z
    >>> activations.get("cube").forward(2.0)
    8.0
    >>> del activations.ACTIVATIONS["cube"]   # undone, for the other examples

An unknown name raises a ValueError that lists the valid names and suggests the closest ones.
"""

import difflib


class Block:
    """What every registered building block has: a `name` (set by `register`) and a config of
    the arguments that rebuild it, listed in `config_keys`."""

    name = None
    config_keys = ()

    def get_config(self):
        return {"name": self.name, **{key: getattr(self, key) for key in self.config_keys}}

    def __repr__(self):
        arguments = ", ".join(f"{key}={getattr(self, key)!r}" for key in self.config_keys)
        return f"{type(self).__name__}({arguments})"


class Registry(dict):
    """Names (lower case) -> classes of one family, with `register` and `get`.

    kind : what the family's members are called in messages ("activation", "loss", ...).
    base : the class every member derives from; instances of it pass through `get`.
    default : the name `get(None)` resolves to, or None if the family has no default.
    """

    def __init__(self, kind, base, default=None):
        super().__init__()
        self.kind, self.base, self.default = kind, base, default

    def register(self, *names):
        """Class decorator: file the class under `names`; the first becomes its `name`, unless
        the class already has one of its own."""

        def decorate(cls):
            if not (isinstance(cls, type) and issubclass(cls, self.base)):
                raise ValueError(
                    f"only subclasses of {self.base.__name__} can be registered as "
                    f"{self.kind}s, got {cls!r}"
                )
            if not names or not all(isinstance(name, str) and name for name in names):
                raise ValueError(
                    f"register a {self.kind} under one or more non-empty names, got {names!r}"
                )
            if "name" not in vars(cls):  # a second registration adds an alias, not a name
                cls.name = names[0]
            for name in names:
                self[name.lower()] = cls
            return cls

        return decorate

    def lookup(self, name, argument=None):
        """The class registered as `name`; ValueError with suggestions if there is none."""
        key = name.lower() if isinstance(name, str) else name
        if isinstance(key, str) and key in self:
            return self[key]
        argument = argument or self.kind
        close = difflib.get_close_matches(key, list(self), n=3) if isinstance(key, str) else []
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"{argument} {name!r} is not known; expected one of {sorted(self)}{hint}")

    def get(self, identifier, argument=None):
        """An instance from a name, a config dict, an instance (returned as is) or None."""
        argument = argument or self.kind
        if isinstance(identifier, self.base):
            return identifier
        if identifier is None and self.default is not None:
            identifier = self.default
        if isinstance(identifier, dict):
            config = dict(identifier)
            cls = self.lookup(config.pop("name", None), argument)
            try:
                return cls(**config)
            except TypeError as error:
                raise ValueError(
                    f"{argument} config {identifier!r} does not fit {cls.__name__}: {error}"
                ) from None
        if isinstance(identifier, str):
            return self.lookup(identifier, argument)()
        raise ValueError(
            f"{argument} must be a name, a config dict or a {self.base.__name__}"
            f"{' or None' if self.default else ''}, got {identifier!r} of type "
            f"{type(identifier).__name__}"
        )
