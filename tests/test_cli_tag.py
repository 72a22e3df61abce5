"""`gpt2-tui tag RUN ...` and `gpt2-tui runs --filter EXPR`: in-process through core.cli, and once for real."""

from __future__ import annotations

import json
import time

import pytest
from conftest import gpt2_tui

from core import cli
from core.store import Store


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "runs.db"
    store = Store(path)
    for i, (rid, name, lr) in enumerate([("20261201-000000-aaaa", "baseline", 3e-4),
                                         ("20261201-000001-bbbb", "low-lr", 2e-5)]):
        store.create_run({"id": rid, "kind": "train", "name": name, "status": "finished",
                          "created_at": time.time() + i, "config": {"learning_rate": lr, "run_name": name},
                          "command": [], "run_dir": str(tmp_path / rid), "model": "gpt2-tiny", "devices": "cpu:2"})
    store.close()
    return path


def tag(db, *argv, capsys):
    rc = cli.main(["tag", *argv, "--db", str(db)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_tag_add_remove_note_and_show(db, capsys):
    rc, out, _ = tag(db, "baseline", "best,", "sweep", "--json", capsys=capsys)  # by name; commas or spaces
    assert rc == 0 and json.loads(out) == {"id": "20261201-000000-aaaa", "name": "baseline",
                                           "tags": ["best", "sweep"], "note": None}
    rc, out, _ = tag(db, "20261201-000000", "--note", "ship this one", capsys=capsys)  # by id prefix
    assert rc == 0 and "tags  best, sweep" in out and "note  ship this one" in out
    rc, out, err = tag(db, "last", "sweep", "nope", "--remove", "--json", capsys=capsys)  # last = newest: low-lr
    assert rc == 0 and json.loads(out)["tags"] == [] and "had no tag sweep, nope" in err
    rc, out, _ = tag(db, "aaaa", "--clear-note", "--json", capsys=capsys)
    assert rc == 2  # not an id prefix, not a name
    rc, out, _ = tag(db, "baseline", "sweep", "--remove", "--clear-note", "--json", capsys=capsys)
    assert rc == 0 and json.loads(out)["tags"] == ["best"] and json.loads(out)["note"] is None
    rc, out, _ = tag(db, "baseline", capsys=capsys)  # no tag: show them
    assert rc == 0 and "tags  best" in out and "note  -" in out
    assert cli.main(["show", "baseline", "--json", "--db", str(db)]) == 0
    assert json.loads(capsys.readouterr().out)["tags"] == ["best"]


@pytest.mark.parametrize(("argv", "message"), [
    (["nope", "x"], "no run matches 'nope'"),
    (["baseline", "--remove"], "name the tags to remove"),
    (["baseline", "--", "-x"], "starts with '-'"),
    (["baseline", "x" * 41], "longer than 40 characters"),
])
def test_tag_mistakes_are_exit_2_with_a_message_and_change_nothing(db, capsys, argv, message):
    rc, out, err = tag(db, *argv, capsys=capsys)
    assert rc == 2 and message in err and "Traceback" not in err
    assert all(r["tags"] == [] for r in Store(db).list_runs())


def test_runs_filter(db, capsys):
    assert cli.main(["tag", "baseline", "best", "--db", str(db)]) == 0
    capsys.readouterr()

    def ids(expr):
        assert cli.main(["runs", "--json", "--filter", expr, "--db", str(db)]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert all("config" not in r for r in rows)  # `show --json` has a run's config
        return [r["name"] for r in rows]

    assert ids("tag:best") == ["baseline"]
    assert ids("lr<1e-4") == ["low-lr"]
    assert ids("-tag:best tiny") == ["low-lr"]
    assert ids("") == ["low-lr", "baseline"]
    assert cli.main(["runs", "--filter", "tag:best", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "baseline" in out and "[best]" in out and "low-lr" not in out
    assert cli.main(["runs", "--filter", "tag:none", "--db", str(db)]) == 0
    assert "no run matches the filter" in capsys.readouterr().out


def test_runs_filter_that_does_not_parse_is_exit_2_before_the_store_is_opened(tmp_path, capsys):
    db = tmp_path / "never.db"
    assert cli.main(["runs", "--filter", "lr>abc", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "--filter: 'lr>abc': 'abc' is not a number" in err and "Traceback" not in err
    assert not db.exists()
    assert cli.main(["runs", "--filter", "foo:1x", "--db", str(db)]) == 2
    assert "unknown key 'foo' (known: " in capsys.readouterr().err


def test_the_installed_command_tags_a_run(db, tmp_path):
    r = gpt2_tui("tag", "baseline", "best", "--note", "from a shell", "--json", "--db", str(db), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["tags"] == ["best"]
    run = Store(db).find_run("baseline")
    assert run["tags"] == ["best"] and run["note"] == "from a shell"
    r = gpt2_tui("tag", "nope", "x", "--db", str(db), cwd=tmp_path)
    assert r.returncode == 2 and "no run matches 'nope'" in r.stderr
