"""mms/checkpoints/safe_pickle.py: no code from a checkpoint ever runs, fairseq/omegaconf are never imported,
and real fairseq checkpoints (every config flavour, zip and legacy serialisation) still load."""

import json
import os
import pickle
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import torch

from mms.checkpoints import CheckpointError, load_checkpoint, safe_pickle
from mms.checkpoints.safe_pickle import PickledObject, UnsafePickleError
from tests.factory import _FakeFairseq, fairseq_cfg, fairseq_state, fairseq_symbols, write_fairseq

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------------------
# Malicious checkpoints


class Ref:
    """A global written verbatim into the pickle (`GLOBAL module name`), whatever the object really is."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle's save_reduce wants a callable
        raise AssertionError("never called")


class RefPickler(pickle._Pickler):
    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, Ref):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
            return
        super().save(obj, save_persistent_id)


REF_PICKLE = types.SimpleNamespace(
    __name__="ref_pickle", Pickler=RefPickler,
    dump=lambda obj, f, protocol=2: RefPickler(f, protocol=protocol).dump(obj))


class Payload:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def payload(kind: str, marker: Path) -> tuple[Payload, str]:
    """(object whose unpickling creates `marker`, the global name the loader must refuse)."""
    if kind == "os.system":  # os.system really pickles as posix.system: write the 'os' spelling by hand
        return Payload(Ref("os", "system"), (f"touch '{marker}'",)), "os.system"
    if kind == "posix.system":
        return Payload(os.system, (f"touch '{marker}'",)), "posix.system"
    if kind == "builtins.eval":  # pickled as __builtin__.eval (protocol 2); must be refused under its real name
        return Payload(eval, (f"open({str(marker)!r}, 'w').close()",)), "builtins.eval"
    if kind == "subprocess.Popen":
        return Payload(subprocess.Popen, (["touch", str(marker)],)), "subprocess.Popen"
    raise ValueError(kind)


KINDS = ["os.system", "posix.system", "builtins.eval", "subprocess.Popen"]
FORMATS = ["zip", "legacy", "raw"]


def write_malicious(path: Path, kind: str, fmt: str, marker: Path) -> str:
    evil, refused = payload(kind, marker)
    if fmt == "raw":  # a bare pickle, no torch container at all
        with open(path, "wb") as f:
            RefPickler(f, protocol=4).dump({"model": {}, "cfg": evil})
        return refused
    ckpt = {"model": {"w2v_encoder.proj.weight": torch.arange(6.0).reshape(2, 3)}, "cfg": evil}
    torch.save(ckpt, path, pickle_module=REF_PICKLE, _use_new_zipfile_serialization=fmt == "zip")
    return refused


def wait_for_marker_settle(kind: str):
    if kind == "subprocess.Popen":  # a started process would touch the marker asynchronously
        time.sleep(0.3)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", KINDS)
def test_malicious_checkpoint_is_refused_and_nothing_runs(tmp_path, kind, fmt):
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pt"
    refused = write_malicious(path, kind, fmt, marker)

    for mmap in (True, False):
        with pytest.raises(UnsafePickleError) as info:
            safe_pickle.load(path, mmap=mmap)
        assert f"'{refused}'" in str(info.value), str(info.value)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert f"'{refused}'" in str(info.value) and str(path) in str(info.value), str(info.value)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path)  # the directory holding exactly one .pt goes the same way
    wait_for_marker_settle(kind)
    assert not marker.exists(), f"the {kind} payload ran while loading a {fmt} checkpoint"

    # control: the payload is live, an unrestricted unpickler does run it
    if fmt == "raw":
        with open(path, "rb") as f:
            loaded = pickle.load(f)
    else:
        loaded = torch.load(path, weights_only=False)
    if isinstance(loaded["cfg"], subprocess.Popen):
        loaded["cfg"].wait()
    assert marker.exists(), f"test payload {kind} ({fmt}) is not live: the refusal above proves nothing"


def test_fairseq_globals_become_inert_stubs(tmp_path):
    """A pickle calling a fairseq function gets a PickledObject holding the args; fairseq is never imported."""
    path = tmp_path / "stub.pt"
    torch.save({"model": {}, "task": Payload(Ref("fairseq.tasks", "setup_task"), ("rm -rf x",))}, path,
               pickle_module=REF_PICKLE)
    had_fairseq = "fairseq" in sys.modules
    task = safe_pickle.load(path)["task"]
    assert isinstance(task, PickledObject) and task.qualname == "fairseq.tasks.setup_task"
    assert task._args == ("rm -rf x",)
    assert ("fairseq" in sys.modules) == had_fairseq


def test_unknown_torch_global_is_refused(tmp_path):
    """Only the tensor-rebuild helpers of torch are allowed, not anything under `torch.`."""
    path = tmp_path / "t.pt"
    torch.save({"model": {}, "x": Payload(Ref("torch.hub", "load"), ("a/b", "c"))}, path, pickle_module=REF_PICKLE)
    with pytest.raises(UnsafePickleError, match="'torch.hub.load'"):
        safe_pickle.load(path)


# ---------------------------------------------------------------------------------------------------------
# The factory's fairseq checkpoints, in a fresh interpreter

CFG_KINDS = ["dict", "dictconfig", "namespace"]

CHILD = r"""
import dataclasses, json, sys
sys.path.insert(0, sys.argv[2])  # a booby-trapped `fairseq` package: importing it writes a marker
from mms.checkpoints import load_checkpoint, safe_pickle
out = {}
for name in sys.argv[3:]:
    path = sys.argv[1] + "/" + name
    ckpt = load_checkpoint(path)
    raw = safe_pickle.load(path)
    out[name] = {
        "cfg": safe_pickle.to_plain(raw["cfg"]),
        "args": safe_pickle.to_plain(raw["args"]),
        "normalize": ckpt.normalize,
        "config": dataclasses.asdict(ckpt.config),
        "tokens": ckpt.vocab.tokens,
        "languages": ckpt.languages,
        "fra_tokens": ckpt.adapters.load("fra")[1].tokens,
        "silent": sorted(ckpt.vocab.silent),
    }
out["modules"] = sorted(m for m in sys.modules if m.split(".")[0] in ("fairseq", "omegaconf"))
print(json.dumps(out))
"""


def is_plain(obj) -> bool:
    if isinstance(obj, dict):
        return all(isinstance(k, str) and is_plain(v) for k, v in obj.items())
    if isinstance(obj, list):
        return all(is_plain(v) for v in obj)
    return obj is None or isinstance(obj, (str, int, float, bool))


@pytest.fixture(scope="module")
def fresh_load(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("fresh")
    names = []
    for kind in CFG_KINDS:
        for normalize in (True, False):
            name = f"{kind}_{normalize}.pt"
            write_fairseq(tiny, root / name, cfg_kind=kind, normalize=normalize)
            names.append(name)
    trap = root / "trap"
    marker = root / "FAIRSEQ_IMPORTED"
    for pkg in ("fairseq",):
        (trap / pkg).mkdir(parents=True)
        (trap / pkg / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    proc = subprocess.run([sys.executable, "-c", CHILD, str(root), str(trap), *names], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["fairseq_marker"] = marker.exists()
    return result


def test_fresh_process_imports_neither_fairseq_nor_omegaconf(fresh_load):
    assert fresh_load["modules"] == [], f"loading imported {fresh_load['modules']}"
    assert not fresh_load["fairseq_marker"], "the booby-trapped fairseq package was imported"


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("kind", CFG_KINDS)
def test_fresh_process_reads_fairseq_checkpoint(fresh_load, tiny, kind, normalize):
    got = fresh_load[f"{kind}_{normalize}.pt"]
    assert got["tokens"] == fairseq_symbols(tiny.vocabs["eng"])
    assert got["fra_tokens"] == fairseq_symbols(tiny.vocabs["fra"])
    assert got["languages"] == ["eng", "fra"]
    assert got["silent"] == [0, 2]  # <s> (blank) and </s>
    assert got["normalize"] is normalize
    config = got["config"]
    assert config["do_stable_layer_norm"] is True  # layer_norm_first
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "conv_bias",
                "feat_extract_norm", "num_conv_pos_embeddings", "num_conv_pos_embedding_groups", "adapter_attn_dim"):
        assert config[key] == getattr(tiny.cfg, key), key
    for key in ("conv_dim", "conv_kernel", "conv_stride"):
        assert config[key] == list(getattr(tiny.cfg, key)), key
    assert config["vocab_size"] == len(tiny.vocabs["eng"])

    assert is_plain(got["cfg"]) and is_plain(got["args"])
    if kind == "namespace":
        assert got["cfg"] is None
        args = got["args"]
        assert args["normalize"] is normalize and args["layer_norm_first"] is True
        assert args["w2v_args"]["layer_norm_first"] is True and args["layer_type"] == "trf_adp"
    else:  # a pickled DictConfig becomes exactly the dict it was made from
        assert got["args"] is None
        assert got["cfg"] == fairseq_cfg(tiny.cfg, normalize)


def test_to_plain_in_process(tmp_path, tiny):
    path = write_fairseq(tiny, tmp_path / "dc.pt", cfg_kind="dictconfig")
    raw = safe_pickle.load(path)
    assert isinstance(raw["cfg"], PickledObject) and raw["cfg"].qualname.startswith("omegaconf.")
    assert safe_pickle.to_plain(raw["cfg"]) == fairseq_cfg(tiny.cfg)
    dictionary = raw["task_state"]["target_dictionary"]
    assert isinstance(dictionary, PickledObject) and dictionary.qualname == "fairseq.data.dictionary.Dictionary"
    assert dictionary.symbols == fairseq_symbols(tiny.vocabs["eng"])


# ---------------------------------------------------------------------------------------------------------
# mmap and legacy serialisation


def assert_same_tree(a, b, where="ckpt"):
    assert type(a) is type(b), where
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert_same_tree(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tree(x, y, f"{where}[{i}]")


def test_mmap_and_plain_load_agree(fairseq_pt, tiny):
    mapped = safe_pickle.load(fairseq_pt, mmap=True)
    plain = safe_pickle.load(fairseq_pt, mmap=False)
    assert_same_tree(mapped["model"], plain["model"])
    assert_same_tree(mapped["adapter"]["fra"]["model"], plain["adapter"]["fra"]["model"])
    expected = fairseq_state(tiny.state, tiny.cfg)
    assert list(mapped["model"]) == list(expected)
    for key, value in expected.items():
        assert torch.equal(mapped["model"][key], value), key


def test_legacy_serialisation_loads(fairseq_pt, tmp_path):
    with _FakeFairseq():  # our own file: trusted, re-saved in the pre-zip format
        saved = torch.load(fairseq_pt, weights_only=False)
        legacy = tmp_path / "legacy.pt"
        torch.save(saved, legacy, _use_new_zipfile_serialization=False)
    with open(legacy, "rb") as f:
        assert not f.read(4).startswith(b"PK"), "not a legacy file"
    for mmap in (True, False):
        loaded = safe_pickle.load(legacy, mmap=mmap)
        assert_same_tree(loaded["model"], safe_pickle.load(fairseq_pt)["model"])

    new, old = load_checkpoint(fairseq_pt), load_checkpoint(legacy)
    assert new.vocab.tokens == old.vocab.tokens and new.config == old.config
    assert list(new.state_dict) == list(old.state_dict)
    for key in new.state_dict:
        assert torch.equal(new.state_dict[key], old.state_dict[key]), key
