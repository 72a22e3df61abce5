"""runs.db under stress: many ingesting processes at once, damaged or foreign files, migrations, bad lines."""

import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import BIN, ROOT, gpt2_tui
from faultkit import assert_store_matches_events, cli, reaper  # noqa: F401  (fixture)

from core.store import SCHEMA_VERSION, Store

pytestmark = pytest.mark.usefixtures("reaper")
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

# Appends a run's events like rank 0 does, plus what a crash or a foreign writer leaves: garbage lines and
# lines written in two halves (a follower reading between the halves must wait for the rest).
WRITER = r"""
import os, sys, time
from core.events import EventWriter
path, n = sys.argv[1], int(sys.argv[2])
w = EventWriter(path)
w.emit("start", world_size=1, total_steps=n)
fh = open(path, "a")
for s in range(1, n + 1):
    w.emit("step", step=s, loss=1.0 / s, lr=1e-3, samples_per_s=100.0)
    if s % 50 == 0:
        w.emit("log", level="info", text=f"at {s}")
    if s % 100 == 0:
        w.emit("checkpoint", step=s, path=f"/ck/checkpoint-{s}")
    if s % 150 == 0:
        fh.write("garbage: not an event\n"); fh.flush()
    if s % 120 == 0:
        line = '{"v":1,"seq":%d,"t":%f,"type":"log","level":"info","text":"torn then whole"}\n' % (w._seq, time.time())
        fh.write(line[:17]); fh.flush(); time.sleep(0.05)
        fh.write(line[17:]); fh.flush(); w._seq += 1
    if s % 25 == 0:
        time.sleep(0.01)
w.emit("end", status="finished", reason="done")
open(path + ".done", "w").close()
"""

# A dashboard's follower: ingest in a loop until the writer is done and nothing new is left.
FOLLOWER = r"""
import json, os, sqlite3, sys, time
from core.store import Store
from core.follow import sync_events
db, rid, done = sys.argv[1], sys.argv[2], sys.argv[3]
store = Store(db)
n, errors = 0, []
while True:
    finished = os.path.exists(done)
    try:
        got = sync_events(store, rid)
        n += got
    except sqlite3.Error as e:
        errors.append(str(e)); got = -1
    if finished and got == 0:
        break
    time.sleep(0.005)
print(json.dumps({"ingested": n, "errors": errors}))
"""

# The CLI at the same time: `gpt2-tui show` over and over.
SHOWER = r"""
import json, os, subprocess, sys
exe, rid, done = sys.argv[1], sys.argv[2], sys.argv[3]
fails = []
while not os.path.exists(done):
    r = subprocess.run([exe, "--db", "runs.db", "show", rid, "--json"], capture_output=True, text=True)
    if r.returncode != 0 or "locked" in r.stderr:
        fails.append(r.stderr[-500:])
print(json.dumps({"fails": fails}))
"""


def test_two_dashboards_and_a_cli_ingest_at_once_exactly_once(tmp_path):
    db = tmp_path / "runs.db"
    run_dir = tmp_path / "runs" / "rc"
    run_dir.mkdir(parents=True)
    events = run_dir / "events.jsonl"
    done = str(events) + ".done"
    n_steps = 1200
    t0 = time.time()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(events), str(n_steps)], env=ENV, cwd=tmp_path)
    store = Store(db)
    # The writer stands in for the supervisor, so that `show` (which reconciles) sees a live run.
    store.create_run({"id": "rc", "status": "running", "run_dir": str(run_dir), "config": {}, "kind": "train",
                      "pgid": writer.pid, "created_at": t0})
    store.close()
    followers = [subprocess.Popen([sys.executable, "-c", FOLLOWER, str(db), "rc", done], env=ENV, cwd=tmp_path,
                                  stdout=subprocess.PIPE, text=True) for _ in range(2)]
    shower = subprocess.Popen([sys.executable, "-c", SHOWER, str(BIN), "rc", done], env=ENV, cwd=tmp_path,
                              stdout=subprocess.PIPE, text=True)
    assert writer.wait(120) == 0
    outs = [json.loads(f.communicate(timeout=120)[0]) for f in followers]
    shown = json.loads(shower.communicate(timeout=120)[0])
    assert all(o["errors"] == [] for o in outs), outs  # no "database is locked" reached anyone
    assert shown["fails"] == [], shown["fails"][:2]
    assert sum(o["ingested"] for o in outs) > 0
    assert_store_matches_events(db, "rc", run_dir)
    rec = json.loads(cli(tmp_path, "show", "rc", "--json").stdout)
    assert [s["step"] for s in rec["steps"]] == list(range(1, n_steps + 1))
    assert rec["bad_lines"] == n_steps // 150  # each garbage line counted once, torn lines never
    assert rec["status"] == "finished"


# ---------------------------------------------------------------------------- damaged and foreign files
def _files(tmp_path):
    return sorted(p.name for p in tmp_path.iterdir())


def _our_db_with_a_run(path):
    s = Store(path)
    s.create_run({"id": "r1", "status": "finished", "run_dir": "/nowhere", "config": {}, "kind": "train"})
    s.ingest("r1", 0, 10, [{"v": 1, "seq": i, "t": 1.0, "type": "step", "step": i, "loss": 0.5}
                           for i in range(1, 400)])
    s.close()


@pytest.mark.parametrize("kind", ["garbage", "foreign", "newer", "damaged", "text file"])
def test_a_bad_database_is_refused_with_exit_2_and_left_untouched(tmp_path, kind):
    p = tmp_path / "x.db"
    if kind == "garbage":
        p.write_bytes(os.urandom(8192))
        needle = "not a usable gpt2-tui database"
    elif kind == "text file":
        p.write_text("# my notes\n" * 100)
        needle = "not a usable gpt2-tui database"
    elif kind == "foreign":
        c = sqlite3.connect(p)
        c.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
        c.execute("INSERT INTO customers VALUES (1, 'x')")
        c.commit()
        c.close()
        needle = "another program"
    elif kind == "newer":
        _our_db_with_a_run(p)
        c = sqlite3.connect(p)
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        c.commit()
        c.close()
        needle = "newer than this gpt2-tui understands"
    else:  # damaged: the header page is fine, every other page is noise
        _our_db_with_a_run(p)
        data = bytearray(p.read_bytes())
        page = int.from_bytes(data[16:18], "big") or 65536
        assert len(data) > 2 * page
        data[page:] = os.urandom(len(data) - page)
        p.write_bytes(bytes(data))
        needle = "cannot be read as a gpt2-tui database"
    before, files = p.read_bytes(), _files(tmp_path)
    for args in (["runs"], ["runs", "--json"], ["show", "last"], ["train", "--max_steps", "1"]):
        r = gpt2_tui("--db", str(p), *args, cwd=tmp_path, timeout=120)
        assert r.returncode == 2, (args, r.stderr[-2000:])
        assert needle in r.stderr and str(p) in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        assert p.read_bytes() == before  # never overwritten, never "repaired"
        assert _files(tmp_path) == files  # no -wal/-shm, no runs/ folder


# ---------------------------------------------------------------------------- migration
OPENER = r"""
import sys, time
from core.store import Store
t0 = float(sys.argv[2])
while time.time() < t0:
    time.sleep(0.001)
s = Store(sys.argv[1])
print(s.conn.execute("PRAGMA user_version").fetchone()[0])
"""


def test_an_older_schema_migrates_in_place_once_with_many_openers(tmp_path):
    p = tmp_path / "runs.db"
    c = sqlite3.connect(p)  # version 0: the meta table only, a rollback journal
    c.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    c.execute("INSERT INTO meta VALUES ('note', 'kept')")
    # Counts how often a migration writes its 'app' row: it must be once, whoever wins the lock.
    c.execute("CREATE TABLE migrations_seen (n INTEGER)")
    c.execute("CREATE TRIGGER count_migration AFTER INSERT ON meta WHEN NEW.key = 'app' "
              "BEGIN INSERT INTO migrations_seen VALUES (1); END")
    c.commit()
    c.close()
    inode = p.stat().st_ino
    start = time.time() + 2.0
    procs = [subprocess.Popen([sys.executable, "-c", OPENER, str(p), str(start)], env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(5)]
    outs = [pr.communicate(timeout=60) for pr in procs]
    assert [pr.returncode for pr in procs] == [0] * 5, [o[1][-500:] for o in outs]
    assert [o[0].strip() for o in outs] == [str(SCHEMA_VERSION)] * 5
    assert p.stat().st_ino == inode  # in place, not a new file
    c = sqlite3.connect(p)
    assert c.execute("SELECT COUNT(*) FROM migrations_seen").fetchone()[0] == 1
    assert c.execute("SELECT value FROM meta WHERE key = 'note'").fetchone()[0] == "kept"
    assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert {"runs", "metrics", "evals"} <= {r[0] for r in c.execute("SELECT name FROM sqlite_master")}
    c.close()
    r = cli(tmp_path, "runs", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == []


# ---------------------------------------------------------------------------- bad lines in an event file
BAD_LINES = [
    b"garbage, not JSON",
    b'{"v":1,"seq":3,"t":1.0,"type":"step","step":"two","loss":0.5}',  # lies about the step
    b'{"v":99,"seq":4,"t":1.0,"type":"step","step":2}',  # a schema version this app does not know
    b"\x00\x00\x00\x00\x00\x00",  # what a power cut leaves at the end of a file on some filesystems
    b'{"v":1,"seq":5,"t":1.0,"type":"mystery"}',
    b"\xff\xfe not utf-8",
    b'{"v":1,"seq":6,"t":1.0,"type":"checkpoint","step":2}',  # a checkpoint without a path
    b'{"v":1,"seq":7,"t":1.0,"type":"ranks","step":2,"ranks":5}',
    b'[1, 2, 3]',
    b'{"v":1,"seq":"8","t":1.0,"type":"step","step":2}',
]


def test_torn_and_garbage_lines_are_skipped_counted_and_shown(tmp_path):
    run_dir = tmp_path / "runs" / "r-bad"
    run_dir.mkdir(parents=True)
    s = Store(tmp_path / "runs.db")
    s.create_run({"id": "r-bad", "status": "running", "run_dir": str(run_dir), "config": {}, "kind": "train"})
    s.close()

    def ev(seq, typ, **kw):
        return json.dumps({"v": 1, "seq": seq, "t": 1000.0 + seq, "type": typ, **kw}).encode()

    good = [ev(0, "start", world_size=1, total_steps=3), ev(1, "step", step=1, loss=0.7),
            ev(2, "log", level={"odd": 1}, text=["not", "text"])]  # odd field types: stored, not fatal
    torn = ev(9, "step", step=3, loss=0.5)
    body = b"\n".join(good + BAD_LINES + [ev(8, "step", step=2, loss=0.6)]) + b"\n" + torn[:20]
    (run_dir / "events.jsonl").write_bytes(body)
    r = cli(tmp_path, "show", "r-bad", "--json")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["bad_lines"] == len(BAD_LINES)
    assert [x["step"] for x in rec["steps"]] == [1, 2]  # the torn line waits for its end
    text = cli(tmp_path, "show", "r-bad")
    assert text.returncode == 0 and f"{len(BAD_LINES)} malformed event line(s) skipped" in text.stdout
    assert cli(tmp_path, "runs").returncode == 0
    with open(run_dir / "events.jsonl", "ab") as fh:  # the writer finishes the torn line
        fh.write(torn[20:] + b"\n")
    rec = json.loads(cli(tmp_path, "show", "r-bad", "--json").stdout)
    assert [x["step"] for x in rec["steps"]] == [1, 2, 3]
    assert rec["bad_lines"] == len(BAD_LINES)  # counted once, however often it is read


def test_well_formed_keeps_structured_fields_and_nulls_odd_columns(tmp_path):
    s = Store(tmp_path / "runs.db")
    s.create_run({"id": "r", "status": "running", "run_dir": str(tmp_path), "config": {}, "kind": "train"})
    evs = [{"v": 1, "seq": 0, "t": 1.0, "type": "eval", "step": 5, "accuracy": 0.9, "n": 10,
            "precision": [0.8, 0.9], "confusion": [[4, 1], [0, 5]]},
           {"v": 1, "seq": 1, "t": 1.0, "type": "heartbeat", "step": 5, "rank": 0, "host": {"odd": 1}},
           {"v": 1, "seq": 2, "t": 1.0, "type": "step", "step": True, "loss": 0.1}]  # a bool is not a step
    assert s.ingest("r", 0, 100, evs)
    ev = s.evals("r")[0]
    assert ev["details"]["precision"] == [0.8, 0.9] and ev["details"]["confusion"] == [[4, 1], [0, 5]]
    assert s.rank_health("r")[0]["host"] is None
    assert s.metrics("r") == [] and s.get_run("r")["bad_lines"] == 1
