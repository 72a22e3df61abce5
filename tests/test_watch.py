"""core.watch.Watcher: typed events from a run's file, fed to the store exactly once, however many watch."""

from core.events import EventWriter
from core.follow import sync_events
from core.store import Store
from core.watch import Watcher


def make_run(tmp_path, n_steps=20):
    store = Store(tmp_path / "runs.db")
    run_dir = tmp_path / "r1"
    run_dir.mkdir()
    store.create_run({"id": "r1", "status": "running", "run_dir": str(run_dir), "config": {}})
    with EventWriter(run_dir / "events.jsonl") as w:
        w.emit("start", world_size=1, total_steps=n_steps)
        for s in range(1, n_steps + 1):
            w.emit("step", step=s, loss=1.0 / s)
    return store, run_dir


def test_two_watchers_see_every_event_and_the_store_counts_each_once(tmp_path):
    store, run_dir = make_run(tmp_path)
    other = Store(tmp_path / "runs.db")
    a, b = Watcher(store, "r1"), Watcher(other, "r1")
    ba = a.poll()
    bb = b.poll()
    assert [e["type"] for e in ba.events] == ["start"] + ["step"] * 20
    assert [e.get("step") for e in bb.events] == [e.get("step") for e in ba.events]
    assert len(store.metrics("r1")) == 20 and ba.run["event_offset"] == a.offset == b.offset
    with EventWriter(run_dir / "events.jsonl") as w:
        w.emit("end", status="finished", reason="done")
        with open(run_dir / "events.jsonl", "a") as fh:
            fh.write("garbage\n")
    assert [e["type"] for e in b.poll().events] == ["end"]
    last = a.poll()
    assert last.events[0]["type"] == "end" and last.bad_lines == 1
    run = store.get_run("r1")
    assert run["status"] == "finished" and run["bad_lines"] == 1  # counted once, read twice
    assert sync_events(store, "r1") == 0


def test_a_watcher_behind_the_store_reads_its_own_cursor_without_feeding_twice(tmp_path):
    store, _ = make_run(tmp_path, n_steps=300)
    sync_events(store, "r1")  # reconcile (or another follower) already took everything
    w = Watcher(store, "r1", chunk_bytes=4096)
    seen = []
    for _ in range(100):
        batch = w.poll()
        seen += [e["step"] for e in batch.events if e["type"] == "step"]
        if not batch.behind and not batch.events:
            break
    assert seen == list(range(1, 301))
    assert len(store.metrics("r1")) == 300 and store.get_run("r1")["bad_lines"] == 0


def test_exited_when_the_supervisor_left_an_exit_status(tmp_path):
    import os

    store, run_dir = make_run(tmp_path)
    w = Watcher(store, "r1")
    assert w.exited()  # no supervisor pid recorded: nothing left to wait for
    store.update_run("r1", pgid=os.getpid(), created_at=0)  # a live "supervisor" (this test process)
    assert not w.exited()
    (run_dir / "exit.json").write_text('{"returncode": 0}')
    assert w.exited()


def test_the_shared_fold_gives_the_cli_line_and_the_live_state_the_same_numbers(tmp_path):
    from core.progress import RunProgress
    from tui.runstate import RunState

    store, run_dir = make_run(tmp_path, n_steps=10)
    with EventWriter(run_dir / "events.jsonl") as w:
        w.emit("eval", step=10, accuracy=0.75, n=8)
        w.emit("checkpoint", step=5, path="/c/checkpoint-5")
        w.emit("checkpoint", step=10, path="/c/checkpoint-10")
        w.emit("checkpoint_deleted", step=5, path="/c/checkpoint-5")
    events = Watcher(store, "r1").poll().events
    prog, state = RunProgress(), RunState()
    for ev in events:
        prog.update(ev)
    state.apply(events)
    for p in (prog, state):
        assert (p.step, p.total_steps, p.best_accuracy, p.checkpoints) == (10, 10, 0.75, [(10, "/c/checkpoint-10")])
    assert "step 10/10 100%" in prog.line() and "acc 0.7500" in prog.line()
    assert [c["step"] for c in store.checkpoints("r1")] == [10]
