"""core.models: names -> folders, and downloads against a local HTTP server (never the real network)."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from localhttp import closed_port, serve_dir

from core import models
from core.models import DownloadError, ModelError, download_file, resolve_model

ROOT = Path(__file__).resolve().parent.parent
TINY_DIR = ROOT / "assets" / "gpt2-tiny"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """PPNLP_HOME in a not-yet-existing folder, so leftovers (even empty folders) are visible."""
    h = tmp_path / "ppnlp"
    monkeypatch.setenv("PPNLP_HOME", str(h))
    return h


@pytest.fixture
def site(tmp_path):
    """The bcebos layout, with small stand-ins: real tokenizer files (the tiny model's), fake weights."""
    s = tmp_path / "site"
    s.mkdir()
    shutil.copy(TINY_DIR / "vocab.json", s / "gpt-en-vocab.json")
    shutil.copy(TINY_DIR / "merges.txt", s / "gpt-en-merges.txt")
    for name in ("gpt2-en", "gpt2-medium-en"):
        (s / f"{name}.pdparams").write_bytes(os.urandom(300_000))  # several 64 KB reads: progress moves
    return s


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


# ----------------------------------------------------------------------------- names
def test_known_models_and_tiny():
    assert models.known_models() == ["gpt2-tiny", "gpt2-en", "gpt2-medium-en"]
    assert resolve_model("gpt2-tiny") == TINY_DIR
    assert resolve_model(" gpt2-tiny ") == TINY_DIR
    assert models.is_available_locally("gpt2-tiny")


def test_unknown_name_lists_known_and_nearest():
    with pytest.raises(ModelError) as ei:
        resolve_model("gpt2-medium")
    msg = str(ei.value)
    assert "Unknown model 'gpt2-medium'" in msg and "gpt2-tiny, gpt2-en, gpt2-medium-en" in msg
    assert "Did you mean 'gpt2-medium-en'?" in msg and "\n" not in msg
    with pytest.raises(ModelError, match="No model given"):
        resolve_model("  ")


def test_local_folder(tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(TINY_DIR, folder)
    assert resolve_model(str(folder)) == folder
    assert models.is_available_locally(str(folder))
    (folder / "merges.txt").unlink()
    (folder / "model_state.pdparams").unlink()
    with pytest.raises(ModelError) as ei:
        resolve_model(str(folder))
    assert "model_state.pdparams or model.safetensors" in str(ei.value) and "merges.txt" in str(ei.value)
    assert not models.is_available_locally(str(folder))
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(str(tmp_path / "nope"))
    with pytest.raises(ModelError, match="is a file"):
        resolve_model(str(folder / "vocab.json"))


def test_legacy_config_name_accepted(tmp_path):
    folder = tmp_path / "old"
    shutil.copytree(TINY_DIR, folder)
    (folder / "config.json").rename(folder / "model_config.json")
    assert models.missing_files(folder) == []


def test_cache_location_follows_ppnlp_home(home):
    assert models.cache_dir("gpt2-medium-en") == home / "models" / "gpt2-medium-en"
    assert not models.is_available_locally("gpt2-medium-en")


# ----------------------------------------------------------------------------- downloads
@pytest.mark.parametrize("name", ["gpt2-en", "gpt2-medium-en"])
def test_download_into_paddlenlp_cache(name, home, site, monkeypatch):
    calls: list[tuple[int, int | None]] = []
    with serve_dir(site) as url:
        monkeypatch.setenv(models.BASE_URL_ENV, url)
        folder = resolve_model(name, progress=lambda d, t: calls.append((d, t)), timeout=10)
    assert folder == home / "models" / name
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "merges.txt", "model_state.pdparams", "tokenizer_config.json", "vocab.json"]
    assert (folder / "model_state.pdparams").read_bytes() == (site / f"{name}.pdparams").read_bytes()
    assert (300_000, 300_000) in calls
    assert all(t is None or d <= t for d, t in calls)
    cfg = json.loads((folder / "config.json").read_text())
    want = {"gpt2-medium-en": (24, 1024, 16, 4096, 50304), "gpt2-en": (12, 768, 12, 3072, 50257)}[name]
    assert (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"], cfg["intermediate_size"],
            cfg["vocab_size"]) == want
    assert cfg["max_position_embeddings"] == 1024 and cfg["eos_token_id"] == 50256 == cfg["pad_token_id"]
    assert cfg["model_type"] == "gpt"
    assert models.is_available_locally(name)
    # Cached: resolving again needs no server.
    monkeypatch.setenv(models.BASE_URL_ENV, f"http://127.0.0.1:{closed_port()}")
    assert resolve_model(name, timeout=1) == folder


def test_download_config_loads_in_paddlenlp(home, site, monkeypatch):
    """The written config.json and tokenizer files are what from_pretrained(folder) reads (no network)."""
    from paddlenlp.transformers import GPTConfig, GPTTokenizer

    with serve_dir(site) as url:
        monkeypatch.setenv(models.BASE_URL_ENV, url)
        folder = resolve_model("gpt2-medium-en", timeout=10)
    cfg = GPTConfig.from_pretrained(str(folder))
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.vocab_size, cfg.eos_token_id) == (24, 1024, 50304, 50256)
    tok = GPTTokenizer.from_pretrained(str(folder))
    assert tok.model_max_length == 1024 and tok.pad_token == "<|endoftext|>"


def test_offline_fails_fast_and_leaves_nothing(home, monkeypatch):
    base = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv(models.BASE_URL_ENV, base)
    t0 = time.monotonic()
    with pytest.raises(ModelError) as ei:
        resolve_model("gpt2-medium-en")
    assert time.monotonic() - t0 < 30
    msg = str(ei.value)
    assert f"{base}/gpt-en-vocab.json" in msg and "connection refused" in msg
    assert "--model_name_or_path /path/to/dir" in msg and "\n" not in msg
    assert not home.exists(), f"left behind: {leftovers(home)}"


def test_failure_midway_keeps_whole_files_only(home, site, monkeypatch):
    (site / "gpt2-en.pdparams").unlink()  # HTTP 404 for the weights
    with serve_dir(site) as url:
        monkeypatch.setenv(models.BASE_URL_ENV, url)
        with pytest.raises(ModelError, match="HTTP 404"):
            resolve_model("gpt2-en", timeout=10)
    # The finished tokenizer files stay for next time; no temp file, no config without weights.
    assert leftovers(home) == ["models", "models/gpt2-en", "models/gpt2-en/merges.txt", "models/gpt2-en/vocab.json"]
    assert not models.is_available_locally("gpt2-en")


def test_legacy_cache_names_reused_without_network(home, site, monkeypatch):
    folder = home / "models" / "gpt2-en"
    folder.mkdir(parents=True)
    for f in ("gpt-en-vocab.json", "gpt-en-merges.txt", "gpt2-en.pdparams"):
        shutil.copy(site / f, folder / f)
    monkeypatch.setenv(models.BASE_URL_ENV, f"http://127.0.0.1:{closed_port()}")
    assert resolve_model("gpt2-en", timeout=1) == folder
    assert models.missing_files(folder) == []


# ----------------------------------------------------------------------------- download_file
def test_no_answer_times_out(tmp_path):
    """A server that accepts the connection and never answers (a half-open network)."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)  # the kernel completes the handshake; nobody ever reads or writes
        url = f"http://127.0.0.1:{srv.getsockname()[1]}/x"
        t0 = time.monotonic()
        with pytest.raises(DownloadError, match="no answer within 1 s|timed out"):
            download_file(url, tmp_path / "x", timeout=1)
        assert time.monotonic() - t0 < 5
    assert leftovers(tmp_path) == []


def test_truncated_body_is_an_error(tmp_path):
    class Short(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Short)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with pytest.raises(DownloadError, match="after 10 of 1000 bytes|timed out"):
            download_file(f"http://127.0.0.1:{srv.server_address[1]}/x", tmp_path / "x", timeout=5)
    finally:
        srv.shutdown()
        srv.server_close()
    assert leftovers(tmp_path) == []


def test_progress_can_cancel(tmp_path, site):
    def stop(done, total):
        raise KeyboardInterrupt

    out = tmp_path / "out"
    out.mkdir()
    with serve_dir(site) as url, pytest.raises(KeyboardInterrupt):
        download_file(f"{url}/gpt2-en.pdparams", out / "w", progress=stop, timeout=10)
    assert leftovers(out) == []


def test_deadline(tmp_path):
    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.05)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        t0 = time.monotonic()
        with pytest.raises(DownloadError, match="not finished within 0.5 s"):
            download_file(f"http://127.0.0.1:{srv.server_address[1]}/x", tmp_path / "x", timeout=5, deadline=0.5)
        assert time.monotonic() - t0 < 3
    finally:
        srv.shutdown()
        srv.server_close()
    assert leftovers(tmp_path) == []
