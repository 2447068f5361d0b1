import os

# `--dtype auto` is bfloat16 on CPUs with native bf16 (mms.device): parity tests compare float32 numbers, so the
# suite runs "auto" as float32 everywhere (subprocesses inherit it); tests/test_performance.py measures bf16.
os.environ.setdefault("MMS_CPU_BF16", "0")

import numpy as np
import pytest

from tests.factory import random_model, tiny_config, write_fairseq, write_hf

LANGS = {"eng": 12, "fra": 15}  # two languages with different vocabulary sizes


@pytest.fixture(scope="session")
def tiny():
    return random_model(tiny_config(), LANGS, seed=1)


@pytest.fixture(scope="session")
def hf_dir(tiny, tmp_path_factory):
    return write_hf(tiny, tmp_path_factory.mktemp("hf") / "tiny-mms")


@pytest.fixture(scope="session")
def fairseq_pt(tiny, tmp_path_factory):
    return write_fairseq(tiny, tmp_path_factory.mktemp("fairseq") / "tiny_mms.pt")


def random_audio(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t * (1 + rng.random())) + 0.1 * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    """Two short 16 kHz wav files."""
    import soundfile as sf

    d = tmp_path_factory.mktemp("cli")
    paths = []
    for i, n in enumerate([20000, 36000]):
        paths.append(d / f"a{i}.wav")
        sf.write(paths[-1], random_audio(n, seed=i), 16000)
    return paths


@pytest.fixture(scope="session")
def demo_held_out_set(tmp_path_factory):
    """tests/test_demo.py's held-out set, synthesised once per session (test_demo and test_performance read it)."""
    from tests.test_demo import make_held_out

    return make_held_out(tmp_path_factory.mktemp("demo-held-out"))


@pytest.fixture
def python_ctrl_c():
    """Python's own Ctrl-C handler for the test (a job started in the background, as CI may run, ignores SIGINT,
    and then the trainers leave it alone)."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
