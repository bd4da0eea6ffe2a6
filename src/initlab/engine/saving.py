"""The model file: NeuralNetwork.save writes it, NeuralNetwork.load reads it without trusting it.

Format "initlab.NeuralNetwork", version 1: a zip archive as numpy.savez writes it (members stored
or deflated), holding only .npy members (format 1.0 or 2.0, little-endian, never object arrays):

    config.npy        0-d unicode array: the JSON config (keys below), at most MAX_CONFIG_BYTES
    <i>.weights.npy   layer i's W, (units, fan_in), the config's dtype ('<f8' or '<f4')
    <i>.bias.npy      layer i's b, (units, 1)
    optimizer.<k>.npy the optimizer's k-th moment, (n_parameters,), present only when the config's
                      optimizer_state says so; laid out as pack_parameters lays out the model

    >>> import numpy as np, os, tempfile
    >>> from initlab import Dense, NeuralNetwork
    >>> model = NeuralNetwork([Dense(3, "relu"), Dense(1, "sigmoid")], seed=0)
    >>> model.compile(loss="crossentropy")
    >>> _ = model.predict(np.ones((2, 4)))        # builds the weights
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> save(model, path)
    >>> load(path, NeuralNetwork).layers[0].weights.shape
    (3, 2)

Reading never trusts the file. Before any array is read: the zip's central directory is bounded;
the config member is bounded and parsed (JSON nesting is bounded by its size and a RecursionError
is caught); the whole config is checked against CONFIG_SCHEMA; the set of members must be exactly
the one the config implies; each member's .npy header (dtype, shape, size) is read from the first
bytes of its stream and compared with what the config implies; the memory the arrays take is
compared with what the machine has. Every failure is a ModelFileError naming the file and what is
wrong. Nothing is unpickled.

Writing is atomic: a temporary file beside the destination, renamed over it once complete, with the
mode a plain open() would give (or the mode of the file it replaces). A save that was killed leaves
its temporary file; the next save to the same place removes it.
"""

import contextlib
import hashlib
import json
import math
import os
import re
import stat
import struct
import tempfile
import time
import zipfile

import numpy as np

from initlab import checks
from initlab.blocks import activations, initializers, losses, optimizers
from initlab.blocks import layers as layers_module
from initlab.engine.parameters import pack_parameters

FILE_FORMAT = "initlab.NeuralNetwork"
FILE_VERSION = 1

# Bounds on what a file may ask for. A real config is a few kB; these leave room for 1000 layers
# with long initializer configs while keeping a hostile file from costing memory or time.
MAX_CONFIG_BYTES = 2**20
MAX_LAYERS = 1000
MAX_UNITS = 2**24
MAX_DIRECTORY_BYTES = 2**20  # the zip's central directory: about 100 bytes a member
MAX_SEED_DIGITS = 1000


class ModelFileError(ValueError):
    """A model file that cannot be read: it names the file and what is wrong with it."""

    def __init__(self, path, problem):
        super().__init__(f"{path!r}: {problem}")
        self.path, self.problem = path, problem


# --- writing --------------------------------------------------------------------------------------


def save(model, path):
    """Write `model` (built) to `path` atomically; see the module docstring for the format."""
    if not model.built:
        raise ValueError("the model has no weights yet; fit (or predict) once before saving")
    path = _fspath(path)
    arrays = {
        f"{i}.{name}": value
        for i, layer in enumerate(model.layers)
        for name, value in layer.params.items()
    }
    config = model.get_config()
    config["optimizer_state"], state_arrays = _optimizer_state(model)
    arrays.update(state_arrays)
    arrays["config"] = np.array(json.dumps(config))
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path) or path.endswith(os.sep):
        raise ValueError(
            f"path {path!r} is a directory; expected a file name, such as "
            f"{os.path.join(path, 'model.npz')!r}"
        )
    if not os.path.isdir(directory):
        what = "is not a directory" if os.path.exists(directory) else "does not exist"
        raise ValueError(
            f"path {path!r}: {directory!r} {what}; expected a file in an existing directory"
        )
    prefix = _temporary_prefix(path)
    remove_stale_temporaries(path)
    mode = _mode_for(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}-", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # mkstemp makes 0600; a plain open() would not
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(tmp)
        if isinstance(error, OSError) and error.errno is not None:
            # The same error (no space, no permission), named by the path the user gave rather
            # than the temporary file beside it.
            raise type(error)(error.errno, error.strerror, path) from None
        raise


def _temporary_prefix(path):
    # One prefix per destination, so that a save cleans up only what earlier saves to the same
    # place left; hashed, so that a long file name still gives a valid temporary name.
    digest = hashlib.sha256(os.path.basename(path).encode("utf-8", "surrogatepass")).hexdigest()
    return f".initlab-{digest[:16]}-"


def remove_stale_temporaries(path):
    """Remove the temporary files that killed saves to `path` left beside it.

    A temporary file is `.initlab-<hash of the name>-<pid>-<random>.tmp`; it is stale when the
    process <pid> no longer runs. A save in progress (its process alive) is left alone. Earlier
    versions named them `.initlab-<8 random characters>.tmp`, which says neither the destination
    nor the process: those are removed once a day old, when no save can still be writing them.
    """
    directory = os.path.dirname(os.path.abspath(path))
    pattern = re.compile(re.escape(_temporary_prefix(path)) + r"(\d+)-[^/]*\.tmp\Z")
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        match = pattern.match(name)
        stale = match is not None and not _process_alive(int(match.group(1)))
        if not stale and _LEGACY_TEMPORARY.match(name):
            with contextlib.suppress(OSError):
                stale = time.time() - os.stat(os.path.join(directory, name)).st_mtime > 86400
        if stale:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(directory, name))


# mkstemp(prefix=".initlab-", suffix=".tmp"): the temporaries of saves from before they were
# named after their destination and process, 8 characters of tempfile's alphabet in between.
_LEGACY_TEMPORARY = re.compile(r"\.initlab-[a-z0-9_]{8}\.tmp\Z")


def _process_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # alive under another user, or not a pid we can judge: leave it
    return True


def _mode_for(path):
    """The permission bits a plain open(path, "w") would leave: the replaced file's, if any, else
    0o666 minus the umask."""
    try:
        existing = os.stat(path)
        if stat.S_ISREG(existing.st_mode):
            return stat.S_IMODE(existing.st_mode)
    except OSError:
        pass
    return 0o666 & ~_umask()


def _umask():
    # /proc gives the umask without changing it; os.umask both reads and sets it, so it is set
    # straight back (a brief window another thread creating a file could fall into).
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _optimizer_state(model):
    """(config entry, arrays) of what the optimizer carries from step to step.

    The moments (Momentum's velocity, Adam's m and v) become arrays "optimizer.0", ..., laid out
    as the flat parameter vector (pack_parameters' order: a change of that layout needs a new
    FILE_VERSION); Adam's step count goes into the config. A state equal to a fresh one (a model
    never trained, plain SGD) is not written: (None, {}).
    """
    optimizer = model.optimizer
    if optimizer is None or not optimizer.has_state(model.parameters):
        return None, {}
    moments = optimizer.moments(model.parameters)
    iterations = getattr(optimizer, "iterations", None)
    if not iterations and not any(moment.any() for moment in moments):
        return None, {}
    if iterations is not None:
        iterations = int(iterations)  # for JSON, whatever integer type set it
    return (
        {"moments": len(moments), "iterations": iterations},
        {f"optimizer.{k}": moment for k, moment in enumerate(moments)},
    )


# --- reading --------------------------------------------------------------------------------------


def load(path, cls):
    """Read a model file into a new `cls` (NeuralNetwork); ModelFileError on any problem."""
    path = _fspath(path)
    try:
        # A FIFO or a device would block or never end: only a regular file is opened.
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ModelFileError(path, "is not a regular file")
        with open(path, "rb") as handle:
            _check_directory_size(handle, path)
            with zipfile.ZipFile(handle) as archive:
                return _load_archive(archive, path, cls)
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, struct.error) as error:
        raise ModelFileError(
            path, f"is not an initlab model file, or it is truncated or damaged ({error})"
        ) from None
    except (NotImplementedError, RuntimeError) as error:  # an unknown compression, encryption
        raise ModelFileError(path, f"is not an initlab model file: {error}") from None
    except MemoryError:
        raise ModelFileError(path, "needs more memory than this machine has to load") from None
    except OSError as error:
        raise ModelFileError(path, f"cannot be read: {error.strerror or error}") from None


def _fspath(path):
    try:
        return os.fspath(path)
    except TypeError:
        raise ValueError(f"path must be a str or os.PathLike, got {path!r}") from None


def _check_directory_size(handle, path):
    """Refuse a zip whose central directory (which ZipFile reads whole) is implausibly large."""
    size = handle.seek(0, os.SEEK_END)
    tail = min(size, 22 + 65535)  # the end record, then at most a 64 kB comment
    handle.seek(size - tail)
    data = handle.read(tail)
    position = data.rfind(b"PK\x05\x06")
    if position < 0 or len(data) - position < 22:
        raise ModelFileError(
            path, "is not an initlab model file, or it is truncated (no zip directory at its end)"
        )
    directory_bytes = struct.unpack("<I", data[position + 12 : position + 16])[0]
    if directory_bytes > MAX_DIRECTORY_BYTES:
        raise ModelFileError(
            path,
            f"has a zip directory of {directory_bytes} bytes; a model "
            f"file's is at most {MAX_DIRECTORY_BYTES}",
        )
    handle.seek(0)


def _load_archive(archive, path, cls):
    names = archive.namelist()
    if len(set(names)) != len(names):
        raise ModelFileError(path, "holds two members of the same name")
    if "config.npy" not in names:
        raise ModelFileError(path, "is not an initlab model file (no config.npy member)")
    config = _read_config(archive, path)
    plan = _validate_config(config, path)
    _check_members(names, plan, path)
    headers = {name: _read_header(archive, name, path) for name in plan.members}
    for name, expected in plan.members.items():
        _check_header(name, headers[name], expected, plan.dtype, path)
    nbytes = sum(math.prod(shape) for shape in plan.members.values()) * plan.dtype.itemsize
    # The arrays, the gradients and a training loop's copies: about three times the file.
    try:
        checks.memory("loading it", 3 * nbytes, "free memory or load it elsewhere")
    except ValueError as error:
        raise ModelFileError(path, str(error)) from None
    arrays = {name: _read_data(archive, name, headers[name], path) for name in plan.members}
    return _build(cls, plan, arrays, path)


def _read_config(archive, path):
    info = archive.getinfo("config.npy")
    shape, fortran, dtype, offset = _read_header(archive, "config.npy", path)
    if dtype.kind != "U" or shape != ():
        raise ModelFileError(
            path,
            f"is not an initlab model file (its config.npy is a {shape} "
            f"array of {dtype}, not a text)",
        )
    if dtype.itemsize > 4 * MAX_CONFIG_BYTES or info.file_size > offset + 4 * MAX_CONFIG_BYTES:
        raise ModelFileError(
            path,
            f"has a config of {dtype.itemsize // 4} characters; the limit is {MAX_CONFIG_BYTES}",
        )
    array = _read_data(archive, "config.npy", (shape, fortran, dtype, offset), path)
    # NumPy turns any 4 bytes into a "character", even beyond Unicode or a lone surrogate.
    codes = np.frombuffer(array.tobytes(), dtype="<u4" if dtype.byteorder != ">" else ">u4")
    if np.any((codes > 0x10FFFF) | ((codes >= 0xD800) & (codes < 0xE000))):
        raise ModelFileError(
            path, "is not an initlab model file (its config is not valid Unicode text)"
        )
    text = str(array[()])
    try:
        config = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise ModelFileError(path, "holds a config nested too deeply") from None
    except ValueError as error:  # JSONDecodeError, a duplicate key, an integer of 5000 digits
        raise ModelFileError(
            path, f"is not an initlab model file (its config is not valid JSON: {error})"
        ) from None
    if not isinstance(config, dict) or config.get("format") != FILE_FORMAT:
        raise ModelFileError(path, "is not an initlab model file (no initlab config inside)")
    # 1 only: not True or 1.0, which compare equal to it.
    if type(config.get("version")) is not int or config["version"] != FILE_VERSION:
        raise ModelFileError(
            path,
            f"was written by file format version "
            f"{config.get('version')!r}; this initlab reads version "
            f"{FILE_VERSION}",
        )
    return config


def _refuse_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def _unique_keys(pairs):
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"a key appears twice in one object: {sorted(keys)}")
    return dict(pairs)


def _read_header(archive, name, path):
    """(shape, fortran_order, dtype, data offset) of member `name`, from its first bytes only."""
    info = archive.getinfo(name)
    with archive.open(info) as stream:
        try:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                raise ValueError(f"npy format version {version} is not 1.0 or 2.0")
        except Exception as error:  # noqa: BLE001
            # NumPy's header parser meets the file's bytes first, and what it raises on garbage
            # is not one type (ValueError, SyntaxError, tokenize's TokenError, EOFError...);
            # the header is a few hundred bytes, so anything it raises means "not a header".
            raise ModelFileError(
                path, f"member {name!r} is not a valid .npy array ({type(error).__name__}: {error})"
            ) from None
        offset = stream.tell()
    if dtype.hasobject:
        raise ModelFileError(
            path,
            f"is not an initlab model file: member {name!r} holds Python "
            f"objects, which are never read (reading them would run code "
            f"from the file)",
        )
    nbytes = math.prod(shape) * dtype.itemsize
    if info.file_size != offset + nbytes:
        raise ModelFileError(
            path,
            f"member {name!r} is {info.file_size} bytes, but its header "
            f"describes {offset + nbytes}: truncated or damaged",
        )
    return shape, fortran, dtype, offset


def _read_data(archive, name, header, path):
    shape, fortran, dtype, offset = header
    nbytes = math.prod(shape) * dtype.itemsize
    with archive.open(name) as stream:
        stream.seek(offset)  # a few bytes on from the start: nothing large is decompressed twice
        data = stream.read(nbytes)
        if len(data) != nbytes or stream.read(1):  # reading to the end also checks the CRC
            raise ModelFileError(path, f"member {name!r} is truncated or damaged")
    array = np.frombuffer(data, dtype=dtype)
    return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


def _check_members(names, plan, path):
    expected, found = set(plan.members) | {"config.npy"}, set(names)
    state = sorted(name[:-4] for name in found if name.startswith("optimizer."))
    wanted = sorted(name[:-4] for name in expected if name.startswith("optimizer."))
    if state != wanted:
        raise ModelFileError(path, f"holds optimizer state arrays {state}; expected {wanted}")
    if found != expected:
        missing, extra = sorted(expected - found), sorted(found - expected)
        problem = []
        if missing:
            problem.append(f"lacks the members {missing}")
        if extra:
            problem.append(f"holds members a model file does not: {extra}")
        raise ModelFileError(path, " and ".join(problem) + " (for the layers its config lists)")


def _check_header(name, header, shape, dtype, path):
    stored_shape, _, stored_dtype, _ = header
    # Little-endian as numpy.save writes it on every common machine; complex, integer and
    # stacked (ensemble) arrays fail here, before a byte of their data is read.
    if stored_shape != shape or stored_dtype != dtype.newbyteorder("<"):
        raise ModelFileError(
            path,
            f"member {name[:-4]!r} has shape {stored_shape} and dtype "
            f"{stored_dtype}; expected shape {shape} and dtype {dtype}, "
            f"as its config implies",
        )


# --- the config's schema ------------------------------------------------------------------------
# A small schema of our own rather than a validation library (jsonschema, pydantic): the config
# has a dozen keys, the core depends on NumPy alone, and the checks that matter most (the fan_in
# chain, shapes that follow from units, an optimizer's own parameters) are relations a generic
# schema does not express. Each check returns the clean value or raises ValueError naming the key.


class _Plan:
    """What a checked config asks for: everything `_build` needs, and the members it implies."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


def _validate_config(config, path):
    try:
        return _plan(config)
    except ModelFileError:
        raise
    except (ValueError, TypeError) as error:
        raise ModelFileError(path, f"holds an invalid initlab config: {error}") from None


def _plan(config):
    keys = {
        "format",
        "version",
        "seed",
        "seed_entropy",
        "dtype",
        "layers",
        "loss",
        "optimizer",
        "learning_rate",
        "shuffle_state",
    }
    _exact_keys("the config", config, keys, optional={"optimizer_state"})
    dtype = np.dtype(_one_of("dtype", config["dtype"], ("float32", "float64")))
    seed = config["seed"]
    if seed is not None:
        seed = _big_integer("seed", seed)
    seed_entropy = config["seed_entropy"]
    if not (
        isinstance(seed_entropy, str)
        and seed_entropy.isdecimal()
        and len(seed_entropy) <= MAX_SEED_DIGITS
        and seed_entropy.isascii()
    ):
        raise ValueError(
            f"seed_entropy must be a string of at most {MAX_SEED_DIGITS} decimal "
            f"digits, got {_short(seed_entropy)}"
        )
    layer_list = config["layers"]
    if not isinstance(layer_list, list) or not 1 <= len(layer_list) <= MAX_LAYERS:
        raise ValueError(
            f"layers must be a list of 1 to {MAX_LAYERS} layer configs, got {_short(layer_list)}"
        )
    layers, members = [], {}
    fan_in = None
    for i, layer_config in enumerate(layer_list):
        layer, shapes = _layer(f"layers[{i}]", layer_config, fan_in)
        layers.append(layer)
        members.update({f"{i}.{name}.npy": shape for name, shape in shapes.items()})
        fan_in = layer.units
    loss = None if config["loss"] is None else _built("loss", config["loss"], losses.get)
    optimizer = (
        None
        if config["optimizer"] is None
        else _built("optimizer", config["optimizer"], optimizers.get)
    )
    learning_rate = config["learning_rate"]
    if learning_rate is not None:
        learning_rate = checks.positive("learning_rate", learning_rate)
    n_params = sum(math.prod(shape) for shape in members.values())
    moments, iterations = _optimizer_state_plan(config.get("optimizer_state"), optimizer)
    members.update({f"optimizer.{k}.npy": (n_params,) for k in range(moments)})
    return _Plan(
        dtype=dtype,
        seed=seed,
        seed_entropy=int(seed_entropy),
        layers=layers,
        loss=loss,
        optimizer=optimizer,
        learning_rate=learning_rate,
        shuffle_state=_shuffle_state(config["shuffle_state"]),
        moments=moments,
        iterations=iterations,
        members=members,
    )


def _layer(where, config, fan_in):
    """(an unbuilt layer, {param name: shape}) for one layer config; fan_in from the layer below."""
    if not isinstance(config, dict):
        raise ValueError(f"{where} must be a layer config (an object), got {_short(config)}")
    # Dense is the only layer whose parameter shapes this format defines.
    _one_of(f"{where}.class", config.get("class"), ["Dense"])
    _exact_keys(
        where,
        config,
        {"class", "units", "activation", "initializer", "input_dim", "bias_initializer"},
    )
    units = _bounded_integer(f"{where}.units", config["units"])
    input_dim = _bounded_integer(f"{where}.input_dim", config["input_dim"])
    if fan_in is not None and input_dim != fan_in:
        raise ValueError(
            f"{where}.input_dim is {input_dim}, but the layer below has {fan_in} units"
        )
    activation = _built(f"{where}.activation", config["activation"], activations.get)
    initializer = _initializer(f"{where}.initializer", config["initializer"])
    bias_initializer = config["bias_initializer"]
    if bias_initializer is not None:
        bias_initializer = _initializer(f"{where}.bias_initializer", bias_initializer)
    layer = layers_module.Dense(
        units,
        activation=activation,
        initializer=initializer,
        input_dim=input_dim,
        bias_initializer=bias_initializer,
    )
    return layer, {"weights": (units, input_dim), "bias": (units, 1)}


def _initializer(where, config):
    # A function initializer cannot be rebuilt from its name (the weights it drew are in the
    # file): a stand-in keeps the name, and refuses to draw.
    if isinstance(config, dict) and "method" not in config:
        _exact_keys(where, config, {"function"})
        if not isinstance(config["function"], str):
            raise ValueError(f"{where}.function must be a string, got {_short(config['function'])}")
        role = where.rsplit(".", 1)[-1]  # initializer or bias_initializer
        return initializers.FunctionNotSaved(config["function"], role)
    return _built(where, config, initializers.get)


def _built(where, config, get):
    """The object `get` makes from a flat config object; the constructor checks the values."""
    if not isinstance(config, dict) or not all(
        value is None or isinstance(value, (str, int, float)) for value in config.values()
    ):
        raise ValueError(
            f"{where} must be an object of names to numbers, strings or null, got {_short(config)}"
        )
    try:
        return get(dict(config))
    except (ValueError, TypeError) as error:
        raise ValueError(f"{where}: {error}") from None


def _optimizer_state_plan(state, optimizer):
    """(number of moment arrays, step count or None) that optimizer_state promises."""
    if state is None:
        return 0, None
    if not isinstance(state, dict):
        raise ValueError(
            f"optimizer_state must be null or {{'moments': n, 'iterations': t}}, "
            f"got {_short(state)}"
        )
    _exact_keys("optimizer_state", state, {"moments"}, optional={"iterations"})
    if optimizer is None:
        raise ValueError("the file holds optimizer state but no optimizer")
    moments, iterations = state["moments"], state.get("iterations")
    if type(moments) is not int or moments != optimizer.n_moments:
        raise ValueError(
            f"its optimizer state has {moments!r} moments; {optimizer.name} "
            f"carries {optimizer.n_moments}"
        )
    if not hasattr(optimizer, "iterations"):
        if iterations is not None:
            raise ValueError(f"{optimizer.name} keeps no step count, got {iterations!r}")
    elif type(iterations) is not int or not 0 <= iterations < 2**63:
        raise ValueError(f"the optimizer's step count must be an integer >= 0, got {iterations!r}")
    return moments, iterations


def _shuffle_state(state):
    """The shuffle Generator's state (PCG64, as numpy gives it) or None, checked by applying it
    to a throwaway Generator."""
    if state is None:
        return None
    if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
        raise ValueError(f"shuffle_state must be null or a PCG64 state, got {_short(state)}")
    _exact_keys("shuffle_state", state, {"bit_generator", "state", "has_uint32", "uinteger"})
    inner = state["state"]
    if not isinstance(inner, dict):
        raise ValueError(f"shuffle_state.state must be an object, got {_short(inner)}")
    _exact_keys("shuffle_state.state", inner, {"state", "inc"})
    for key, value, bits in (
        ("state", inner["state"], 128),
        ("inc", inner["inc"], 128),
        ("has_uint32", state["has_uint32"], 1),
        ("uinteger", state["uinteger"], 32),
    ):
        if type(value) is not int or not 0 <= value < 2**bits:
            raise ValueError(
                f"shuffle_state's {key} must be an integer in [0, 2**{bits}), got {_short(value)}"
            )
    np.random.PCG64().state = state  # raises ValueError if numpy refuses it
    return state


def _exact_keys(where, config, required, optional=frozenset()):
    missing = sorted(required - config.keys())
    unknown = sorted(config.keys() - required - set(optional))
    if missing:
        raise ValueError(f"{where} lacks the keys {missing}")
    if unknown:
        raise ValueError(f"{where} has keys a version-{FILE_VERSION} file does not: {unknown}")


def _one_of(where, value, options):
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{where} must be one of {list(options)}, got {_short(value)}")
    return value


def _bounded_integer(where, value):
    if type(value) is not int or not 1 <= value <= MAX_UNITS:
        raise ValueError(f"{where} must be an integer in [1, {MAX_UNITS}], got {_short(value)}")
    return value


def _big_integer(where, value):
    if type(value) is not int or value < 0 or value.bit_length() > 4 * MAX_SEED_DIGITS:
        raise ValueError(f"{where} must be null or an integer >= 0, got {_short(value)}")
    return value


def _short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- building -----------------------------------------------------------------------------------


def _build(cls, plan, arrays, path):
    """The model a checked plan and its checked arrays describe (nothing can fail here but
    memory)."""

    model = cls(seed=plan.seed, dtype=plan.dtype.name)
    model.seed_entropy = plan.seed_entropy
    for i, layer in enumerate(plan.layers):
        layer.params = {
            name: arrays[f"{i}.{name}.npy"].astype(plan.dtype) for name in ("weights", "bias")
        }
        layer.grads = {name: np.zeros_like(value) for name, value in layer.params.items()}
        model.add(layer)
    if plan.loss is not None:
        model.compile(loss=plan.loss, optimizer=plan.optimizer)
    model.learning_rate = plan.learning_rate
    if plan.shuffle_state is not None:
        model.shuffle_generator().bit_generator.state = plan.shuffle_state
    model.parameters, model.gradients = pack_parameters(model.layers)
    if plan.moments:
        moments = model.optimizer.moments(model.parameters)
        for k, moment in enumerate(moments):
            np.copyto(moment, arrays[f"optimizer.{k}.npy"])
        if plan.iterations is not None:
            model.optimizer.iterations = plan.iterations  # after moments(), which reset it
    return model
