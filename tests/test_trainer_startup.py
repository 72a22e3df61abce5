"""What a worker's start-up costs and where: the phases line (core.trainer.phases) and the wait for rank 0's
TCP store that replaces paddle's 3 s connection retry (core.trainer.runtime.wait_for_store)."""

import socket
import threading
import time

from core.trainer import phases, runtime


def test_phases_line_round_trips():
    p = phases.Phases()
    p.mark("paddle")
    p.mark("model")
    got = phases.parse("[gpt2-tui train] " + p.line())
    assert got is not None and set(got) == {"total", "cpu", "paddle", "paddle_cpu", "model", "model_cpu"}
    assert got["total"] >= got["paddle"] >= 0 and phases.parse("[x] something else") is None


def test_phases_count_from_the_process_start():
    # this test process started well before this line: the first phase covers that time
    assert phases.process_age() > 0.05
    p = phases.Phases()
    p.mark("python")
    assert p.marks[0][1] >= phases.process_age() - 0.5


def test_master_endpoint_is_found_as_paddle_finds_it():
    assert runtime.master_endpoint({"MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "6170",
                                    "PADDLE_MASTER": "127.0.0.1:1"}) == ("10.0.0.1", 6170)
    assert runtime.master_endpoint({"PADDLE_MASTER": "127.0.0.1:43187"}) == ("127.0.0.1", 43187)
    assert runtime.master_endpoint({"PADDLE_TRAINER_ENDPOINTS": "127.0.0.1:5001,127.0.0.1:5002"}) == ("127.0.0.1", 5001)
    assert runtime.master_endpoint({}) is None and runtime.master_endpoint({"PADDLE_MASTER": "nonsense"}) is None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_later_rank_waits_until_the_store_listens_and_no_longer():
    port = _free_port()
    env = {"PADDLE_MASTER": f"127.0.0.1:{port}"}
    assert port not in runtime.listening_ports()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    def open_later():
        time.sleep(0.3)
        server.bind(("127.0.0.1", port))
        server.listen()

    t = threading.Thread(target=open_later)
    t.start()
    try:
        waited = runtime.wait_for_store(1, timeout=30, env=env)
        t.join()
        assert port in runtime.listening_ports()
        # it waited for the listener (opened 0.3 s later), returned before its timeout, and did not connect
        assert 0.2 <= waited < 30
        server.setblocking(False)
        try:
            server.accept()
            raise AssertionError("wait_for_store connected to the store")
        except BlockingIOError:
            pass
    finally:
        server.close()


def test_rank_zero_and_remote_masters_do_not_wait():
    port = _free_port()  # nothing listens there
    assert runtime.wait_for_store(0, timeout=5, env={"PADDLE_MASTER": f"127.0.0.1:{port}"}) == 0.0
    assert runtime.wait_for_store(1, timeout=5, env={"PADDLE_MASTER": f"192.0.2.1:{port}"}) == 0.0  # TEST-NET
    # a master here that never listens: the whole timeout, then paddle's own connect takes over
    assert runtime.wait_for_store(1, timeout=0.2, poll=0.02, env={"PADDLE_MASTER": f"127.0.0.1:{port}"}) >= 0.2
