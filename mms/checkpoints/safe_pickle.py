"""A restricted unpickler for fairseq checkpoints: no fairseq import, no code from the file ever runs.

fairseq `.pt` files pickle fairseq classes (Dictionary, configs, meters), omegaconf containers and
argparse.Namespace next to the tensors, so torch's `weights_only=True` refuses them and `weights_only=False`
would execute whatever the file asks for. Here every global the pickle names is looked up in an allow-list:
  * torch's tensor-rebuild helpers, dtypes and sizes, numpy scalars/arrays, a few inert builtins;
  * anything under `fairseq.` or `omegaconf.` becomes an inert `PickledObject` that only stores its state;
  * everything else (os.system, builtins.eval, subprocess, ...) raises UnsafePickleError before it is called.
Use `load(path)` to read a checkpoint and `to_plain()` to turn configs into dicts and lists.
"""

from __future__ import annotations

import _compat_pickle
import argparse
import collections
import pickle
from typing import Any

import torch

from mms.errors import MMSError


class UnsafePickleError(pickle.UnpicklingError, MMSError):
    pass


class PickledObject:
    """Stand-in for a class we refuse to import; keeps constructor args and pickled state as plain data."""

    qualname = "?"

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        obj.__dict__["_args"] = args
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slots state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state

    def __repr__(self):
        return f"<pickled {self.qualname}>"


_STUBS: dict[str, type] = {}


def _stub(module: str, name: str) -> type:
    qualname = f"{module}.{name}"
    if qualname not in _STUBS:
        _STUBS[qualname] = type(name, (PickledObject,), {"qualname": qualname})
    return _STUBS[qualname]


def _allowed() -> dict[tuple[str, str], Any]:
    import numpy as np

    allowed = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("collections", "defaultdict"): collections.defaultdict,
        ("argparse", "Namespace"): argparse.Namespace,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("numpy", "dtype"): np.dtype,
        ("numpy", "ndarray"): np.ndarray,
        ("typing", "Any"): _stub("typing", "Any"),
    }
    for name in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                 "_rebuild_parameter_with_state"):
        if hasattr(torch._utils, name):
            allowed[("torch._utils", name)] = getattr(torch._utils, name)
    try:
        from numpy._core import multiarray  # numpy 2
    except ImportError:
        from numpy.core import multiarray  # numpy 1
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "scalar")] = multiarray.scalar
        allowed[(mod, "_reconstruct")] = multiarray._reconstruct
    for name in ("int", "float", "str", "bytes", "bool", "complex", "dict", "list", "tuple", "set",
                 "frozenset", "slice", "range", "object", "bytearray"):
        allowed[("builtins", name)] = getattr(__import__("builtins"), name)
    for name in dir(torch):
        if isinstance(getattr(torch, name, None), torch.dtype):
            allowed[("torch", name)] = getattr(torch, name)
    # protocol-2 era helpers: each only calls classes that came through this same allow-list
    import codecs
    import copyreg

    allowed[("_codecs", "encode")] = codecs.encode
    allowed[("copyreg", "_reconstructor")] = copyreg._reconstructor
    return allowed


ALLOWED = _allowed()
STUBBED_PACKAGES = ("fairseq", "omegaconf")


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        # torch.save writes protocol 2 with Python 2 names (__builtin__.dict, copy_reg, ...): map them first
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in ALLOWED:
            return ALLOWED[(module, name)]
        if module.split(".")[0] in STUBBED_PACKAGES:
            return _stub(module, name)
        raise UnsafePickleError(
            f"refusing to load '{module}.{name}' from the checkpoint: not on the allow-list of a model file "
            "(a checkpoint should only hold tensors and configs)")


class _PickleModule:
    """The module-like object torch.load expects for `pickle_module`."""

    Unpickler = RestrictedUnpickler
    UnpicklingError = pickle.UnpicklingError

    @staticmethod
    def load(file, **kwargs):
        return RestrictedUnpickler(file, **kwargs).load()


def load(path, mmap: bool = True) -> Any:
    """Load a torch checkpoint through the restricted unpickler (memory-mapped when the format allows)."""
    kwargs = dict(map_location="cpu", weights_only=False, pickle_module=_PickleModule)
    if mmap:
        try:
            return torch.load(path, mmap=True, **kwargs)
        except RuntimeError as e:  # legacy (pre-zip) serialisation cannot be memory-mapped
            if "mmap" not in str(e):
                raise
    return torch.load(path, **kwargs)


def to_plain(obj: Any) -> Any:
    """Turn omegaconf containers, Namespaces and nested structures into plain dicts, lists and values."""
    if isinstance(obj, argparse.Namespace):
        return {k: to_plain(v) for k, v in vars(obj).items()}
    if isinstance(obj, PickledObject):
        state = obj.__dict__
        if "_content" in state:  # omegaconf DictConfig / ListConfig
            return to_plain(state["_content"])
        if "_val" in state:  # omegaconf value node
            return to_plain(state["_val"])
        return obj
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


def pickle_head(path, size: int = 1 << 16) -> bytes:
    """The first `size` bytes of the pickle inside a torch zip checkpoint (b"" for anything else): enough to
    recognise a format by its key names without reading a tensor."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
            if name is None:
                return b""
            with archive.open(name) as f:
                return f.read(size)
    except (OSError, zipfile.BadZipFile):
        return b""
