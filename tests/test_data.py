"""core.data: SST-2 TSV validation (every bad-data case names file and line) and the GLUE download."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from localhttp import closed_port, serve_dir

from core import data
from core.data import DataError, read_split, validate_dir

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, content: bytes | str, name: str = "train.tsv") -> Path:
    p = tmp_path / name
    p.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return p


def error_for(path: Path, labelled: bool = True) -> DataError:
    with pytest.raises(DataError) as ei:
        read_split(path, labelled=labelled)
    e = ei.value
    assert "\n" not in str(e), "one paragraph"
    assert e.path == str(path)
    return e


# ----------------------------------------------------------------------------- bad rows
@pytest.mark.parametrize(
    ("content", "line", "words"),
    [
        ("sentence\tlabel\ngood film\t1\nbad film\t2\n", 3, ["label is '2'", "0 (negative) or 1 (positive)"]),
        ("sentence\tlabel\ngood film\t1\nno tab here 0\n", 3, ["no tab"]),
        ("sentence\tlabel\ngood\t1\ta\textra\n", 2, ["4 tab-separated columns", "must not contain a tab"]),
        ("sentence\tlabel\n\t1\n", 2, ["sentence is empty"]),
        ("sentence\tlabel\n   \t0\n", 2, ["sentence is empty"]),
        ("sentence\tlabel\ngood\t1\n\nbad\t0\n", 3, ["empty line"]),
        ("sentence\tlabel\ngood\tyes\n", 2, ["label is 'yes'"]),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, content, line, words):
    p = write(tmp_path, content)
    e = error_for(p)
    assert e.line == line
    assert str(e).startswith(f"{p}:{line}: ")
    for w in words:
        assert w in str(e)


def test_non_utf8_names_the_line(tmp_path):
    p = write(tmp_path, b"sentence\tlabel\nfine\t1\ncaf\xe9 society\t1\nok\t0\n")
    e = error_for(p)
    assert e.line == 3 and f"{p}:3:" in str(e)
    assert "UTF-8" in str(e) and "0xe9" in str(e) and "column 4" in str(e)


def test_empty_file(tmp_path):
    for content in (b"", b"\n\n", b"\xef\xbb\xbf"):
        p = write(tmp_path, content)
        e = error_for(p)
        assert e.line is None and str(e).startswith(f"{p}: file is empty.")
        assert "sentence<TAB>label" in str(e)


def test_header_only(tmp_path):
    p = write(tmp_path, "sentence\tlabel\n")
    e = error_for(p)
    assert e.line == 1 and f"{p}:1:" in str(e) and "no data rows" in str(e)


@pytest.mark.parametrize("header", ["text\tlabel", "label\tsentence", "sentence", "sentence\tlabel\textra",
                                    "a fine film\t1"])
def test_wrong_header_says_what_was_expected(tmp_path, header):
    p = write(tmp_path, f"{header}\ngood\t1\n")
    e = error_for(p)
    assert e.line == 1 and f"{p}:1:" in str(e)
    assert "wrong header" in str(e) and "'sentence<TAB>label'" in str(e)


def test_missing_column_is_counted(tmp_path):
    e = error_for(write(tmp_path, "sentence\ngood\n"))
    assert "(1 column)" in str(e)


def test_missing_file_and_folder(tmp_path):
    e = error_for(tmp_path / "nope.tsv")
    assert "file not found" in str(e) and "--data_dir" in str(e)
    e = error_for(tmp_path)
    assert "is a folder" in str(e)


# ----------------------------------------------------------------------------- accepted input
def test_bom_crlf_and_trailing_blank_lines_accepted(tmp_path):
    p = write(tmp_path, b"\xef\xbb\xbfsentence\tlabel\r\nit 's great \t1\r\nawful\t0\r\n\r\n\n")
    assert read_split(p) == [("it 's great", 1), ("awful", 0)]


def test_no_final_newline(tmp_path):
    assert read_split(write(tmp_path, "sentence\tlabel\ngood\t1")) == [("good", 1)]


def test_test_split(tmp_path):
    p = write(tmp_path, "index\tsentence\n0\tgood\n1\tbad\n", "test.tsv")
    assert read_split(p, labelled=False) == [("good", -1), ("bad", -1)]
    e = error_for(write(tmp_path, "index\tsentence\nx\tgood\n", "test.tsv"), labelled=False)
    assert e.line == 2 and "index is 'x'" in str(e)
    e = error_for(write(tmp_path, "sentence\tlabel\ngood\t1\n", "test.tsv"), labelled=False)
    assert "'index<TAB>sentence'" in str(e) and "no labels" in str(e)


# ----------------------------------------------------------------------------- folders
def test_validate_sample():
    s = validate_dir(ROOT / "assets" / "sst2-sample")
    assert (s.train_rows, s.dev_rows, s.test_rows) == (3000, 300, 200)
    assert sum(s.train_labels) == 3000 and 0.4 < s.train_positive_share < 0.7
    assert 0.4 < s.dev_positive_share < 0.7
    assert s.warnings == []


def test_validate_dir_errors(tmp_path):
    with pytest.raises(DataError, match="data folder not found.*--data_dir"):
        validate_dir(tmp_path / "missing")
    write(tmp_path, "sentence\tlabel\ngood\t1\n")
    with pytest.raises(DataError, match="is a file"):
        validate_dir(tmp_path / "train.tsv")
    with pytest.raises(DataError, match="no dev.tsv"):
        validate_dir(tmp_path)
    write(tmp_path, "sentence\tlabel\ngood\t1\nbad\t7\n", "dev.tsv")
    with pytest.raises(DataError) as ei:
        validate_dir(tmp_path)
    assert ei.value.path == str(tmp_path / "dev.tsv") and ei.value.line == 3


def test_validate_dir_warnings_and_optional_test(tmp_path):
    write(tmp_path, "sentence\tlabel\ngood\t1\ngreat\t1\n")
    write(tmp_path, "sentence\tlabel\ngood\t1\nbad\t0\n", "dev.tsv")
    s = validate_dir(tmp_path)
    assert s.test_rows is None and s.train_labels == (0, 2) and s.dev_labels == (1, 1)
    assert any("only label 1" in w for w in s.warnings)
    assert any("1 dev sentence" in w for w in s.warnings)
    write(tmp_path, "index\tsentence\n0\tfine\n", "test.tsv")
    assert validate_dir(tmp_path).test_rows == 1


def test_resolve_data_dir_sample():
    assert data.resolve_data_dir("sample") == ROOT / "assets" / "sst2-sample"
    assert data.resolve_data_dir("~/x") == Path.home() / "x"


def test_helpers(tmp_path):
    rows = [("a b c", 1), ("a", 0), ("a b c d e", 1)]
    assert data.count_truncated(rows, lambda s: len(s.split()), 3) == 1
    p = write(tmp_path, b"hello")
    assert data.sha256_file(p) == hashlib.sha256(b"hello").hexdigest()


def test_data_and_models_do_not_import_paddle():
    code = "import sys, core.data, core.models; sys.exit('paddle' in sys.modules or 'paddlenlp' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


# ----------------------------------------------------------------------------- GLUE download
def sst_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("SST-2/train.tsv", "sentence\tlabel\nhide new secretions \t0\ngood fun \t1\n")
        z.writestr("SST-2/dev.tsv", "sentence\tlabel\nit 's charming .\t1\n")
        z.writestr("SST-2/test.tsv", "index\tsentence\n0\tuneasy mishmash .\n")
        z.writestr("SST-2/original/train.tsv", "not the one\n")  # GLUE's zip has extra files: skipped
        z.writestr("../evil.tsv", "zip-slip attempt")
    return buf.getvalue()


def test_glue_download_progress_and_cache(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    payload = sst_zip()
    (site / "SST.zip").write_bytes(payload)
    cache = tmp_path / "cache"
    calls: list[tuple[int, int | None]] = []
    with serve_dir(site) as url:
        monkeypatch.setenv(data.GLUE_URL_ENV, f"{url}/SST.zip")
        folder = data.ensure_glue_sst2(cache_dir=cache, timeout=10, progress=lambda d, t: calls.append((d, t)))
    assert folder == cache / "SST-2"
    assert sorted(p.name for p in folder.iterdir()) == ["dev.tsv", "test.tsv", "train.tsv"]
    assert read_split(folder / "train.tsv")[0] == ("hide new secretions", 0)
    assert calls and calls[-1] == (len(payload), len(payload))
    assert [p.name for p in cache.iterdir()] == ["SST-2"], "no zip, temp file or temp folder left"
    assert not (tmp_path / "evil.tsv").exists()
    # Cached: no network needed the second time (the server is gone).
    monkeypatch.setenv(data.GLUE_URL_ENV, f"http://127.0.0.1:{closed_port()}/SST.zip")
    assert data.ensure_glue_sst2(cache_dir=cache, timeout=1) == folder


def test_glue_default_cache_is_paddlenlps(tmp_path, monkeypatch):
    monkeypatch.setenv("PPNLP_HOME", str(tmp_path))
    assert data.glue_cache_dir() == tmp_path / "datasets" / "Glue"


def test_glue_offline_fails_fast_and_clean(tmp_path, monkeypatch):
    url = f"http://127.0.0.1:{closed_port()}/SST.zip"
    monkeypatch.setenv(data.GLUE_URL_ENV, url)
    monkeypatch.setenv("PPNLP_HOME", str(tmp_path / "home"))
    t0 = time.monotonic()
    with pytest.raises(DataError) as ei:
        data.resolve_data_dir("glue")
    assert time.monotonic() - t0 < 30
    msg = str(ei.value)
    assert url in msg and "--data_dir" in msg and "connection refused" in msg and "\n" not in msg
    assert not (tmp_path / "home").exists(), "created folders are removed again"


def test_glue_bad_zip_is_a_clear_error(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "SST.zip").write_bytes(b"<html>captive portal</html>")
    cache = tmp_path / "cache"
    with serve_dir(site) as url:
        monkeypatch.setenv(data.GLUE_URL_ENV, f"{url}/SST.zip")
        with pytest.raises(DataError, match="not a valid zip"):
            data.ensure_glue_sst2(cache_dir=cache, timeout=10)
    assert not cache.exists()
