"""Models by name: registry, downloads through huggingface_hub from a fake Hub on 127.0.0.1 (HF_ENDPOINT), per-adapter
fetching, offline use, interrupted transfers, the URL downloader for original files. No network."""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import re
import shutil
import socket
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mms import hub, langs
from tests.conftest import random_audio

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """A local HTTP server: the part of the Hugging Face Hub protocol that hf_hub_download speaks (HEAD and GET
    /<owner>/<repo>/resolve/<revision>/<file> answered with X-Repo-Commit, ETag, Content-Length, Range support,
    404 with X-Error-Code) and plain files under /files/ (original downloads). Every request is logged.

    cut[name] = n: the next n GETs of that file send half of it and close the connection.
    busy[name] = n: the next n requests of that file are answered 503 (a server under load).
    A Range request with an If-Range that is not the file's ETag gets the whole file (200), as HTTP says.
    hold = {name}: GETs of that file send half, set `half_sent`, and wait for `release` (a process killed mid-way).
    ignore_range: answer Range requests with the whole file (200), as some servers do.
    The server stops when the test ends, and by itself after `lifetime` seconds in any case."""

    def __init__(self, repos: dict[str, Path] | None = None, files: dict[str, bytes] | None = None,
                 lifetime: float = 300):
        self.repos = dict(repos or {})
        self.files = dict(files or {})
        self.log: list[tuple[str, str, str | None]] = []
        self.cut: dict[str, int] = {}
        self.busy: dict[str, int] = {}
        self.hold: set[str] = set()
        self.ignore_range = False
        self.commit = COMMIT  # the repos' revision (a new one: the Hub moved on)
        self.half_sent, self.release = threading.Event(), threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.timer = threading.Timer(lifetime, self.stop)
        self.timer.daemon = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.release.set()
        self.timer.cancel()
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()

    def requested(self, method: str = "GET") -> list[str]:
        return [path.rsplit("/", 1)[-1] for m, path, _ in self.log if m == method]

    def _handler(self):
        hub_ = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 20  # a stuck client cannot keep a server thread forever

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.answer(head=True)

            def do_GET(self):
                self.answer(head=False)

            def answer(self, head: bool):
                hub_.log.append((self.command, self.path, self.headers.get("Range")))
                match = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", self.path)
                if match:
                    repo, _, name = match.groups()
                    if repo not in hub_.repos:
                        return self.error(404, "RepoNotFound")
                    path = hub_.repos[repo] / name
                    if hub_.busy.get(name, 0) > 0:
                        hub_.busy[name] -= 1
                        return self.error(503, None)
                    if not path.is_file():
                        return self.error(404, "EntryNotFound", commit=True)
                    return self.send(path.read_bytes(), name, head, commit=True)
                if self.path.startswith("/files/") and self.path[len("/files/"):] in hub_.files:
                    name = self.path[len("/files/"):]
                    if hub_.busy.get(name, 0) > 0:
                        hub_.busy[name] -= 1
                        return self.error(503, None)
                    return self.send(hub_.files[name], name.rsplit("/", 1)[-1], head)
                self.error(404, None)

            def error(self, status: int, code: str | None, commit: bool = False):
                self.send_response(status)
                if code:
                    self.send_header("X-Error-Code", code)
                if commit:
                    self.send_header("X-Repo-Commit", hub_.commit)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def send(self, data: bytes, name: str, head: bool, commit: bool = False):
                start, status, etag = 0, 200, f'"{hashlib.sha256(data).hexdigest()}"'
                ranged = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if_range = self.headers.get("If-Range")
                if ranged and not hub_.ignore_range and if_range in (None, etag):  # If-Range: only the same file
                    start, status = int(ranged.group(1)), 206
                    if start >= len(data):
                        return self.error(416, None)
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", etag)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                if commit:
                    self.send_header("X-Repo-Commit", hub_.commit)
                self.end_headers()
                if head:
                    return
                if hub_.cut.get(name, 0) > 0 or name in hub_.hold:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    if name in hub_.hold:
                        hub_.half_sent.set()
                        hub_.release.wait(30)
                    else:
                        hub_.cut[name] -= 1
                    self.close_connection = True
                    return
                self.wfile.write(body)

        return Handler


# ---------------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def asr_repo(hf_dir):
    """facebook/mms-1b-all as the Hub has it, in miniature (tests.factory.write_hf): base weights, vocab.json nested
    by language, one adapter file per language (eng, fra)."""
    return hf_dir


def fake_tts_repo(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps({"model_type": "vits"}))
    (root / "vocab.json").write_text(json.dumps({"a": 1, " ": 0}))
    (root / "tokenizer_config.json").write_text(json.dumps({"language": root.name}))
    (root / "model.safetensors").write_bytes(b"weights of " + root.name.encode() * 500)
    return root


def fake_lid_repo(root: Path, labels: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps({"model_type": "wav2vec2",
                                                  "id2label": {str(i): x for i, x in enumerate(labels)}}))
    (root / "model.safetensors").write_bytes(b"lid weights" * 100)
    return root


@pytest.fixture
def hub_env(tmp_path, monkeypatch):
    """An empty cache (HF_HOME) and online mode, whatever the environment running the tests says."""
    from huggingface_hub import constants

    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                 "HF_HUB_DISABLE_PROGRESS_BARS", "MMS_FILES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr(hub.download, "RETRY_WAITS", (0,))
    monkeypatch.setattr(hub.download, "_licence_notice_printed", False)
    monkeypatch.setattr(hub.download, "_unreachable", {})
    return tmp_path / "hf-home"


@pytest.fixture
def no_retry_wait(monkeypatch):
    """huggingface_hub waits a second before each new try of a broken transfer: not here."""
    import types

    from huggingface_hub import file_download
    from huggingface_hub.utils import _http

    for module in (file_download, _http):
        monkeypatch.setattr(module, "time", types.SimpleNamespace(sleep=lambda s: None), raising=False)


@pytest.fixture
def fake_hub(asr_repo, hub_env, monkeypatch, tmp_path):
    repos = {"facebook/mms-1b-all": asr_repo, "facebook/mms-1b-fl102": asr_repo,
             "facebook/mms-tts-amh": fake_tts_repo(tmp_path / "tts" / "amh"),
             "facebook/mms-lid-126": fake_lid_repo(tmp_path / "lid", ["eng", "fra", "swh"])}
    with FakeHub(repos) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


# ---------------------------------------------------------------------------------------------------------
# registry


def test_registry_lists_the_published_models():
    models = hub.registry()
    for name in ("mms-1b-fl102", "mms-1b-l1107", "mms-1b-all", "mms-lid-126", "mms-lid-256", "mms-lid-512",
                 "mms-lid-1024", "mms-lid-2048", "mms-lid-4017", "mms-tts", "mms-fa", "mms-300m", "mms-1b"):
        info = models[name]
        assert info.task in hub.TASKS and info.source in hub.SOURCES and info.languages
        assert (info.hf if info.source == "hf" else info.url)
        assert all(url.startswith(hub.ORIGINAL_HOST + "/mms/") for url in info.url)
    for task, name in hub.defaults().items():
        assert models[name].task == task
    assert hub.licence()[0] == "CC-BY-NC-4.0"
    assert models["mms-lid-4017"].url[1].endswith("/mms/lid/dict/l4017/dict.lang.txt")


def test_find_model_by_name_repo_id_and_per_language_name():
    assert hub.find_model("mms-1b-all").hf == "facebook/mms-1b-all"
    assert hub.find_model("facebook/mms-lid-256").name == "mms-lid-256"
    tts = hub.find_model("mms-tts-azj-script_latin")
    assert (tts.name, tts.lang, tts.repo()) == ("mms-tts", "azj-script_latin", "facebook/mms-tts-azj-script_latin")
    assert hub.find_model("facebook/mms-tts-amh").lang == "amh"
    custom = hub.find_model("someone/my-mms-finetune", task="asr")
    assert custom.hf == "someone/my-mms-finetune" and custom.adapter and not custom.url
    assert hub.find_model("model.pt") is None and hub.find_model("./a/b") is None


def test_local_paths_resolve_to_themselves(asr_repo, hub_env):
    assert hub.resolve_model(asr_repo, task="asr", lang="xyz") == asr_repo
    with pytest.raises(ValueError, match="no such model file"):
        hub.resolve_model("missing.pt")


def test_a_mistyped_path_or_a_folder_named_like_a_model(asr_repo, hub_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    # `models/tiny-mmz` beside a folder `models` is a path with a typo, not a Hub repo to ask for
    with pytest.raises(ValueError, match="models/tiny-mmz: no such model file or directory"):
        hub.resolve_model("models/tiny-mmz")
    # a folder that shares a model's name but holds no model does not hide the model
    (tmp_path / "demo").mkdir()
    assert hub.resolve_model("demo", task="asr") == hub.demo_model("asr")
    shutil.copytree(asr_repo, tmp_path / "demo", dirs_exist_ok=True)  # one that holds a model is the user's
    assert hub.resolve_model("demo", task="asr") == Path("demo")


def test_wrong_task_is_named():
    with pytest.raises(hub.HubError, match="mms-lid-126 is a lid model, not a asr model"):
        hub.resolve_model("mms-lid-126", task="asr")


# ---------------------------------------------------------------------------------------------------------
# Hugging Face downloads


def test_only_the_adapters_asked_for_are_fetched(fake_hub, asr_repo, capsys):
    path = hub.resolve_model("mms-1b-all", task="asr", lang="fra")
    gets = fake_hub.requested("GET")
    assert sorted(gets) == sorted(["config.json", "vocab.json", "tokenizer_config.json", "preprocessor_config.json",
                                   "adapter.fra.safetensors", "model.safetensors"])
    assert gets.index("adapter.fra.safetensors") < gets.index("model.safetensors")  # a missing adapter fails fast
    assert path.parent.name == "snapshots" and path.name == COMMIT
    assert sorted(p.name for p in path.iterdir()) == sorted(gets)
    for name in gets:
        assert (path / name).read_bytes() == (asr_repo / name).read_bytes()
    err = capsys.readouterr().err
    assert err.count("CC-BY-NC 4.0") == 0 and err.count("CC-BY-NC-4.0") == 1  # licence notice, once
    assert "100%" in err  # progress bars

    # the snapshot is a model directory like any other: same transcript as the original directory
    from mms.asr import ASR

    audio = random_audio(24000, seed=5)
    fetched = ASR.load(path, lang="fra", device="cpu").transcribe([audio])[0]
    original = ASR.load(asr_repo, lang="fra", device="cpu").transcribe([audio])[0]
    assert fetched.text == original.text and fetched.error is None

    fake_hub.log.clear()
    assert hub.resolve_model("mms-1b-all", task="asr", lang="fra") == path
    assert fake_hub.log == []  # cached: no request at all
    assert hub.resolve_model("mms-1b-all", task="asr", lang=["eng", "fra"]) == path
    assert fake_hub.requested("GET") == ["adapter.eng.safetensors"]  # the new adapter, nothing else
    assert hub.cached_languages(hub.registry()["mms-1b-all"]) == ["eng", "fra"]
    assert "CC-BY-NC" not in capsys.readouterr().err


def test_a_vocabulary_only_fetch_takes_the_small_files(fake_hub, asr_repo, tmp_path):
    from mms.checkpoints import load_vocabulary
    from mms.cli import main

    with pytest.raises(hub.NotCachedError, match="run the command once online: it fetches only those files"):
        hub.resolve_model("mms-1b-all", task="asr", lang="fra", vocabulary_only=True, offline=True)  # not the GBs
    path = hub.resolve_model("mms-1b-all", task="asr", lang="fra", vocabulary_only=True)
    assert sorted(fake_hub.requested()) == ["config.json", "preprocessor_config.json", "tokenizer_config.json",
                                            "vocab.json"]  # no weights, no adapter
    assert load_vocabulary(path, "fra").tokens == load_vocabulary(asr_repo, "fra").tokens
    with pytest.raises(hub.MissingLanguageError):  # the language is still checked, against vocab.json
        hub.resolve_model("mms-1b-fl102", task="asr", lang="abi", vocabulary_only=True)
    fake_hub.log.clear()
    (tmp_path / "corpus.txt").write_text("le chat\nabc bad cab\n", encoding="utf-8")
    assert main(["lexicon", "--model", "mms-1b-all", "--lang", "eng", str(tmp_path / "corpus.txt"),
                 "-o", str(tmp_path / "lex.txt")]) == 0
    assert fake_hub.requested() == []  # mms lexicon: the cached vocabulary (every language) is enough
    assert main(["lexicon", "--model", str(asr_repo), "--lang", "eng", str(tmp_path / "corpus.txt"),
                 "-o", str(tmp_path / "direct.txt")]) == 0
    assert (tmp_path / "lex.txt").read_text() == (tmp_path / "direct.txt").read_text()


def test_asr_load_by_name_fetches_the_language_of_the_run(fake_hub):
    from mms.asr import ASR

    asr = ASR.load(None, lang="eng", device="cpu")  # None: the registry default, mms-1b-all
    assert asr.lang == "eng" and "adapter.eng.safetensors" in fake_hub.requested()
    assert "adapter.fra.safetensors" not in fake_hub.requested()


def test_offline_uses_the_cache_and_names_the_command_for_the_rest(fake_hub, monkeypatch):
    with pytest.raises(hub.NotCachedError, match=r"fetch with: mms models download mms-1b-all --lang fra$"):
        hub.resolve_model("mms-1b-all", lang="fra", offline=True)
    assert fake_hub.log == []
    path = hub.resolve_model("mms-1b-all", lang="fra")
    fake_hub.log.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.resolve_model("mms-1b-all", lang="fra") == path
    with pytest.raises(hub.NotCachedError) as e:
        hub.resolve_model("mms-1b-all", lang="eng")
    assert "adapter.eng.safetensors" in str(e.value) and "mms models download mms-1b-all --lang eng" in str(e.value)
    with pytest.raises(hub.NotCachedError, match="mms models download mms-tts --lang amh"):
        hub.resolve_model("mms-tts", task="tts", lang="amh")
    assert fake_hub.log == []  # offline means no request, not a failed one


def test_a_language_the_model_lacks_names_the_models_that_have_it(fake_hub):
    lid_only = sorted(set(langs.shipped_languages("mms-lid-256")) - set(langs.shipped_languages("mms-1b-all")))[0]
    with pytest.raises(hub.MissingLanguageError) as e:
        hub.resolve_model("mms-1b-all", lang=lid_only)
    assert f"mms-1b-all has no language '{lid_only}'" in str(e.value)
    assert "models that have it" not in str(e.value)  # only an LID model has it: no use for speech recognition
    assert fake_hub.log == []  # known from the shipped list: nothing fetched
    # other ASR models that have it, or a script variant of it (named)
    with pytest.raises(hub.MissingLanguageError, match=r"models that have it: omniasr-ctc-300m \(aze_\w+\)"):
        hub.resolve_model("mms-1b-all", lang="aze")

    # no list shipped for mms-1b-fl102: its own vocab.json decides, before adapters and weights are fetched
    with pytest.raises(hub.MissingLanguageError) as e:
        hub.resolve_model("mms-1b-fl102", lang="abi")
    assert "mms-1b-fl102 has no language 'abi' (Abidji) (2 language codes)" in str(e.value)
    assert "models that have it: mms-1b-all" in str(e.value)
    assert "model.safetensors" not in fake_hub.requested() and not any("adapter" in n for n in fake_hub.requested())

    with pytest.raises(hub.MissingLanguageError, match=r"mms-1b-all has no language 'azj' .*close: "
                                                       r"azj-script_cyrillic, azj-script_latin"):
        hub.resolve_model("mms-1b-all", lang="azj")


def test_per_language_models_and_missing_voices(fake_hub, tmp_path):
    path = hub.resolve_model("mms-tts", task="tts", lang="amh")
    assert path.parent.parent.name == "models--facebook--mms-tts-amh"
    assert hub.resolve_model("mms-tts-amh", task="tts") == path
    assert hub.resolve_model(None, task="tts", lang="amh") == path  # no model: the registry's voices, mms-tts-<lang>
    assert hub.cached_languages(hub.registry()["mms-tts"]) == ["amh"]
    # `mms langs` knows a voice's language from its name, and the family's from the voices downloaded
    assert langs.model_languages("mms-tts-amh") == ["amh"] and langs.model_languages("mms-tts-eng") == ["eng"]
    assert [(x.code, x.models) for x in langs.search("amh", task="tts")] == [("amh", ["mms-tts"])]
    with pytest.raises(hub.MissingLanguageError, match="mms-tts has no language 'xyz'.*no repository facebook/mms-tts-xyz"):
        hub.resolve_model("mms-tts", task="tts", lang="xyz")
    for model in ("mms-tts", None):  # None: `mms tts` without --model or --lang is told to give --lang
        with pytest.raises(hub.HubError, match=r"one model per language: give exactly one language \(e.g. --lang"):
            hub.resolve_model(model, task="tts")


def test_lid_languages_come_from_the_cached_model(fake_hub):
    info = hub.registry()["mms-lid-126"]
    assert langs.known_languages(info) is None  # no list shipped, nothing cached
    path = hub.resolve_model("mms-lid-126", task="lid", lang="qqq")  # LID: the language changes nothing fetched
    assert langs.languages_at(path) == ["eng", "fra", "swh"]
    assert langs.known_languages(info) == ["eng", "fra", "swh"]
    assert "mms-lid-126" in langs.models_with("swh")


def test_an_interrupted_hub_transfer_is_retried(fake_hub, asr_repo, no_retry_wait):
    fake_hub.cut["model.safetensors"] = 1
    path = hub.resolve_model("mms-1b-all", lang="eng")
    assert (path / "model.safetensors").read_bytes() == (asr_repo / "model.safetensors").read_bytes()
    # huggingface_hub resumes from the last whole 10 MB chunk it wrote: for this small file, from the start
    gets = [p for m, p, _ in fake_hub.log if m == "GET" and p.endswith("/model.safetensors")]
    assert len(gets) == 2


def test_a_failed_hub_transfer_leaves_nothing_taken_as_complete(fake_hub, asr_repo, no_retry_wait):
    fake_hub.cut["model.safetensors"] = 100  # every try breaks off (huggingface_hub tries 6 times)
    with pytest.raises(hub.HubError, match="download failed"):
        hub.resolve_model("mms-1b-all", lang="eng")
    info = hub.registry()["mms-1b-all"]
    assert hub.hf_snapshot(info, ["eng"]) is None
    assert not list(hub.hub_cache().rglob("model.safetensors"))
    fake_hub.cut.clear()
    path = hub.resolve_model("mms-1b-all", lang="eng")
    assert (path / "model.safetensors").read_bytes() == (asr_repo / "model.safetensors").read_bytes()


@pytest.fixture
def connections(monkeypatch):
    """Every connection attempt (host, port), DNS failures included: socket.create_connection is where both
    huggingface_hub (httpcore) and urllib open theirs."""
    attempts, real = [], socket.create_connection

    def connect(address, *args, **kwargs):
        attempts.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", connect)
    return attempts


@pytest.fixture(params=["closed port", "unknown host", "no answer"])
def unreachable(request, monkeypatch):
    """The URL of a host that cannot be connected to: nothing listening, a name that does not resolve, or a
    listener whose queue is full (connecting times out; CONNECT_TIMEOUT made short for the test)."""
    if request.param == "unknown host":
        yield "http://nonexistent.invalid"
    elif request.param == "closed port":
        with FakeHub() as server:
            url = server.url
        yield url
    else:
        monkeypatch.setattr(hub.download, "CONNECT_TIMEOUT", 0.5)
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(0)
            queued = []  # never accepted: once they fill the queue, a new connection gets no answer
            for _ in range(3):
                queued.append(socket.socket())
                queued[-1].setblocking(False)
                queued[-1].connect_ex(listener.getsockname())
            yield f"http://127.0.0.1:{listener.getsockname()[1]}"
            for s in queued:
                s.close()


def test_an_unreachable_hub_is_one_attempt_and_one_line(hub_env, monkeypatch, unreachable, connections):
    """huggingface_hub tries a file that is not cached 6 times over ~25 s; a host that cannot be connected to is
    tried once and the run stops with one line (not a "missing file", not a bug)."""
    monkeypatch.setenv("HF_ENDPOINT", unreachable)
    waits = []  # huggingface_hub's backoff sleeps between its retries
    monkeypatch.setattr(time, "sleep", waits.append)
    with pytest.raises(hub.UnreachableError, match=r"^facebook/mms-1b-all/config.json: download failed \(cannot "
                                                   r"connect to [^)]+\); .*HF_HUB_OFFLINE=1") as e:
        hub.resolve_model("mms-1b-all", lang="fra")
    assert "\n" not in str(e.value) and isinstance(e.value, hub.HubError)
    host = unreachable.split("//")[1].split(":")[0]
    assert len([a for a in connections if a[0] == host]) == 1
    assert waits == []  # no retries, no waits between them


def test_an_unreachable_file_host_is_one_attempt(hub_env, unreachable, connections, tmp_path):
    with pytest.raises(hub.UnreachableError, match="download failed \\(cannot connect"):
        hub.download_url(f"{unreachable}/files/big.pt", tmp_path / "big.pt")
    assert len(connections) == 1 and not list(tmp_path.glob("big.pt*.incomplete"))


def test_a_web_page_from_the_hub_is_not_cached_as_a_model_file(fake_hub, asr_repo, tmp_path):
    repo = tmp_path / "portal"
    shutil.copytree(asr_repo, repo)
    (repo / "vocab.json").write_text("<!DOCTYPE html><html><body>Sign in to the network</body></html>")
    fake_hub.repos["facebook/mms-1b-all"] = repo
    with pytest.raises(hub.HubError, match="vocab.json: the server sent a web page, not the model file"):
        hub.fetch(hub.registry()["mms-1b-all"], ["fra"])
    assert hub.hf_snapshot(hub.registry()["mms-1b-all"], ["fra"]) is None  # nothing taken for the model
    assert not [p for p in hub.hub_cache().rglob("*") if p.is_file() and b"Sign in" in p.read_bytes()]
    fake_hub.repos["facebook/mms-1b-all"] = asr_repo  # the network works again: a plain run gets the real file
    path = hub.fetch(hub.registry()["mms-1b-all"], ["fra"])
    assert (path / "vocab.json").read_text() == (asr_repo / "vocab.json").read_text()


def test_a_busy_hub_is_retried(fake_hub, no_retry_wait):
    fake_hub.busy["config.json"] = 2  # HTTP 503 twice: it can pass, so huggingface_hub tries again
    path = hub.resolve_model("mms-1b-all", lang="fra")
    assert (path / "config.json").is_file()
    assert len([p for m, p, _ in fake_hub.log if p.endswith("/config.json")]) >= 3


def test_refresh_offline_force_and_the_reasons_of_failures(fake_hub, asr_repo, no_retry_wait, tmp_path):
    path = hub.resolve_model("mms-1b-all", lang="fra")
    fake_hub.log.clear()
    # offline, --refresh cannot ask the Hub: the cache answers (it had failed, naming no file)
    assert hub.resolve_model("mms-1b-all", lang="fra", offline=True, refresh=True) == path and fake_hub.log == []
    # --force fetches every file again (a damaged blob is replaced)
    blob = (path / "model.safetensors").resolve()
    blob.write_bytes(blob.read_bytes()[:100])
    assert hub.fetch(hub.registry()["mms-1b-all"], ["fra"], force=True) == path
    assert "model.safetensors" in fake_hub.requested() and (path / "model.safetensors").read_bytes() == \
        (asr_repo / "model.safetensors").read_bytes()
    # a file that changed on the Hub since (a page cached by an older version, another ETag): --force replaces
    # what the snapshot shows, not only the blob
    (path / "vocab.json").resolve().write_text("<html>log in</html>")
    vocab = json.loads((asr_repo / "vocab.json").read_text())
    vocab["deu"] = vocab["fra"]
    repo = tmp_path / "changed-repo"
    shutil.copytree(asr_repo, repo)
    (repo / "vocab.json").write_text(json.dumps(vocab))
    fake_hub.repos["facebook/mms-1b-all"] = repo
    assert hub.fetch(hub.registry()["mms-1b-all"], ["fra"], force=True) == path
    assert json.loads((path / "vocab.json").read_text()) == vocab
    # a --force whose download fails leaves the cached file where it was (an offline run keeps working)
    fake_hub.busy["vocab.json"] = 100
    with pytest.raises(hub.HubError, match="vocab.json: download failed"):
        hub.fetch(hub.registry()["mms-1b-all"], ["fra"], force=True)
    fake_hub.busy.clear()
    assert json.loads((path / "vocab.json").read_text()) == vocab and not list(path.glob("*.mms-replaced"))
    with pytest.raises(hub.HubError, match="--force fetches the files again: it needs the network"):
        hub.fetch(hub.registry()["mms-1b-all"], ["fra"], force=True, offline=True)
    # a Hub that keeps failing: its HTTP status is in the message, not only "check your connection"
    fake_hub.busy["adapter.eng.safetensors"] = 100
    with pytest.raises(hub.HubError, match=r"adapter.eng.safetensors: download failed \(.*503"):
        hub.resolve_model("mms-1b-all", lang="eng")


def test_a_refresh_to_a_new_commit_keeps_the_adapters_fetched_before(fake_hub):
    info = hub.registry()["mms-1b-all"]
    old = hub.fetch(info, ["fra", "eng"])
    fake_hub.commit = "f" * 40  # the Hub moved on; only fra is asked for now
    fake_hub.log.clear()
    new = hub.fetch(info, ["fra"], refresh=True)
    assert new.name == "f" * 40 and new != old
    assert hub.resolve_model("mms-1b-all", lang="eng", offline=True) == new  # eng is still there offline
    assert "adapter.eng.safetensors" not in fake_hub.requested()  # unchanged: linked, not downloaded again


def test_a_cache_that_cannot_be_written_is_not_called_a_network_failure(fake_hub, monkeypatch, tmp_path):
    home = tmp_path / "a-file"
    home.write_text("")
    monkeypatch.setenv("HF_HOME", str(home))
    with pytest.raises(hub.HubError, match=r"cannot write the model cache .*a-file/hub .*set HF_HOME") as e:
        hub.resolve_model("mms-1b-all", lang="fra")
    assert "retry" not in str(e.value)


def test_set_offline_is_the_offline_option(fake_hub, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # restored after the test: set_offline() changes os.environ
    assert not hub.is_offline()
    hub.set_offline()
    assert os.environ["HF_HUB_OFFLINE"] == "1" and hub.is_offline() and constants.HF_HUB_OFFLINE
    with pytest.raises(hub.NotCachedError, match="mms models download mms-1b-all --lang fra"):
        hub.resolve_model("mms-1b-all", lang="fra")
    assert fake_hub.log == []


def test_the_hub_does_not_import_the_language_catalogue():
    """mms.langs builds on mms.hub; the other way round would be a cycle."""
    for path in Path(hub.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            assert "mms.langs" not in names, path


# ---------------------------------------------------------------------------------------------------------
# original files by URL


PAYLOAD = b"PK\x03\x04" + bytes(range(256)) * 4099  # a zip's first bytes (a .pt); ~1 MB, not a multiple of the chunk size


@pytest.fixture
def file_server(hub_env):
    with FakeHub(files={"big.pt": PAYLOAD}) as server:
        yield server


def test_url_download_with_size_check_and_progress(file_server, tmp_path, capsys):
    dest = hub.download_url(f"{file_server.url}/files/big.pt", tmp_path / "out" / "big.pt")
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.parent.iterdir()) == ["big.pt", "big.pt.lock"] or \
        sorted(p.name for p in dest.parent.iterdir()) == ["big.pt"]
    assert "100%" in capsys.readouterr().err
    file_server.log.clear()
    assert hub.download_url(f"{file_server.url}/files/big.pt", dest) == dest and file_server.log == []

    with pytest.raises(hub.HubError, match=f"the server has {len(PAYLOAD)} bytes, 1000 were expected"):
        hub.download_url(f"{file_server.url}/files/big.pt", tmp_path / "other.pt", expected_size=1000)
    assert not any(p.name.startswith("other.pt") and not p.name.endswith(".lock") for p in tmp_path.iterdir())
    with pytest.raises(hub.HTTPStatusError, match="HTTP 404"):
        hub.download_url(f"{file_server.url}/files/none.pt", tmp_path / "none.pt")


def test_url_download_resumes_within_a_run(file_server, tmp_path):
    file_server.cut["big.pt"] = 1
    dest = hub.download_url(f"{file_server.url}/files/big.pt", tmp_path / "big.pt")
    assert dest.read_bytes() == PAYLOAD
    assert [r for m, _, r in file_server.log] == [None, f"bytes={len(PAYLOAD) // 2}-"]


def test_url_download_resumes_in_a_later_run_and_never_shows_a_partial_file(file_server, tmp_path):
    url, dest = f"{file_server.url}/files/big.pt", tmp_path / "big.pt"
    file_server.cut["big.pt"] = 1
    with pytest.raises(hub.HubError, match="run the same command again to resume"):
        hub.download_url(url, dest, retries=0)
    partial = tmp_path / "big.pt.incomplete"
    assert not dest.exists() and partial.read_bytes() == PAYLOAD[: len(PAYLOAD) // 2]
    file_server.log.clear()
    assert hub.download_url(url, dest).read_bytes() == PAYLOAD
    assert [r for _, _, r in file_server.log] == [f"bytes={len(PAYLOAD) // 2}-"] and not partial.exists()


def test_url_download_resumes_only_the_same_file(file_server, tmp_path):
    # broken off, then the file changes on the server: the rest of the new file after the old file's first half
    # would load as a model that is neither; If-Range with the first answer's ETag gets the new file whole
    url, dest = f"{file_server.url}/files/big.pt", tmp_path / "big.pt"
    file_server.cut["big.pt"] = 1
    with pytest.raises(hub.HubError, match="run the same command again to resume"):
        hub.download_url(url, dest, retries=0)
    assert (tmp_path / "big.pt.incomplete.etag").read_text().startswith('"')
    changed = PAYLOAD[:4] + bytes(255 - b for b in PAYLOAD[4:])  # same size, other bytes
    file_server.files["big.pt"] = changed
    assert hub.download_url(url, dest).read_bytes() == changed
    assert not (tmp_path / "big.pt.incomplete.etag").exists()


def test_url_download_retries_a_busy_server(file_server, tmp_path):
    file_server.busy["big.pt"] = 2  # HTTP 503 twice, then the file
    assert hub.download_url(f"{file_server.url}/files/big.pt", tmp_path / "big.pt").read_bytes() == PAYLOAD
    file_server.busy["big.pt"] = 100
    with pytest.raises(hub.HTTPStatusError, match="HTTP 503"):
        hub.download_url(f"{file_server.url}/files/big.pt", tmp_path / "other.pt")
    assert [p for _, p, _ in file_server.log].count("/files/big.pt") == 3 + 4  # 4 tries: the first and 3 retries


def test_url_download_restarts_when_the_server_ignores_range(file_server, tmp_path):
    (tmp_path / "big.pt.incomplete").write_bytes(b"x" * 1000)  # from an older, different file
    file_server.ignore_range = True
    assert hub.download_url(f"{file_server.url}/files/big.pt", tmp_path / "big.pt").read_bytes() == PAYLOAD


def test_url_download_refuses_a_web_page_or_a_file_of_another_kind(hub_env, tmp_path):
    # a captive portal or a wrong mirror answers 200 with a page: kept, it would be "the model" on every later run
    page = b"<!DOCTYPE html><html><body>Please log in to the network</body></html>"
    with FakeHub(files={"a.pt": page, "b.pt": b"\x00" * 4096, "c.tar.gz": b"PK\x03\x04zip", "d.txt": page,
                        "e.txt": b"eng 1\n"}) as server:
        for name, what in (("a.pt", "a web page"), ("b.pt", "not a PyTorch checkpoint"),
                           ("c.tar.gz", "not a gzip archive"), ("d.txt", "a web page")):
            with pytest.raises(hub.HubError, match=f"{name}: the server sent .*{what}.*nothing kept"):
                hub.download_url(f"{server.url}/files/{name}", tmp_path / name)
            assert not (tmp_path / name).exists() and not (tmp_path / f"{name}.incomplete").exists()
        assert hub.download_url(f"{server.url}/files/e.txt", tmp_path / "e.txt").read_bytes() == b"eng 1\n"


def _tarball(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()


def test_original_files_by_name_from_a_mirror(hub_env, monkeypatch):
    files = {"mms/lid/mms1b_l126.pt": b"PK\x03\x04" + b"checkpoint" * 1000,
             "mms/lid/dict/l126/dict.lang.txt": b"eng 1\nfra 1\n",
             "mms/tts/amh.tar.gz": _tarball({"amh/G_100000.pth": b"g" * 100, "amh/config.json": b"{}",
                                             "amh/vocab.txt": b"a\n"})}
    with FakeHub(files=files) as server:
        monkeypatch.setenv("MMS_FILES_ENDPOINT", server.url + "/files")
        pt = hub.resolve_model("mms-lid-126", task="lid", source="url")
        assert pt == hub_env / "mms" / "mms-lid-126" / "mms1b_l126.pt" and pt.read_bytes() == files["mms/lid/mms1b_l126.pt"]
        assert langs.languages_at(pt) == ["eng", "fra"]  # dict.lang.txt beside it, as the fairseq loader wants
        voice = hub.resolve_model("mms-tts-amh", task="tts", source="url")
        assert sorted(p.name for p in voice.iterdir()) == ["G_100000.pth", "config.json", "vocab.txt"]
        assert hub.cached_languages(hub.registry()["mms-tts"]) == ["amh"]
        with pytest.raises(hub.MissingLanguageError, match="mms-tts has no language 'xyz'"):
            hub.resolve_model("mms-tts-xyz", task="tts", source="url")
        server.log.clear()
        assert hub.resolve_model("mms-lid-126", task="lid", source="url", offline=True) == pt
        # by name alone (the Hub copy is the default source), the original files fetched before are the model
        assert hub.resolve_model("mms-lid-126", task="lid", offline=True) == pt
        with pytest.raises(hub.NotCachedError, match="mms models download mms-lid-256 --source url"):
            hub.resolve_model("mms-lid-256", task="lid", source="url", offline=True)
        assert server.log == []
        # --force fetches them again (a damaged download stays damaged otherwise)
        server.files["mms/lid/mms1b_l126.pt"] = b"PK\x03\x04" + b"new" * 100
        assert hub.fetch(hub.registry()["mms-lid-126"], source="url", force=True) == pt
        assert pt.read_bytes() == server.files["mms/lid/mms1b_l126.pt"]


def test_unpack_refuses_paths_outside_the_folder(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(_tarball({"../outside.txt": b"no"}))
    with pytest.raises(hub.HubError, match="cannot unpack"):
        hub.unpack(archive)
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path / "evil").exists()


def test_the_licence_notice_is_shown_once_even_when_the_download_fails(hub_env, monkeypatch, capsys):
    # (it was recorded only after a download succeeded: offline users saw "shown once" on every run)
    hub.download.show_licence_notice()
    assert "CC-BY-NC-4.0" in capsys.readouterr().err
    monkeypatch.setattr(hub.download, "_licence_notice_printed", False)  # a new process
    hub.download.show_licence_notice()
    assert capsys.readouterr().err == ""
