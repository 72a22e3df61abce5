"""The dashboard's process never imports paddle (2.5 s and hundreds of MB, docs/ARCHITECTURE.md): drive it in a
subprocess through configure -> launch (fake) -> live, then look at sys.modules."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    import asyncio, json, pkgutil, importlib, sys, tempfile
    from pathlib import Path

    import tui
    # Every module of the UI package, imported: none may pull paddle in.
    for m in pkgutil.walk_packages(tui.__path__, "tui."):
        importlib.import_module(m.name)

    from tui.app import Gpt2App
    from tui.screens.live import LiveScreen
    from tui.testing import FakeClock, FakeLauncher, FakeSampler

    async def main():
        d = Path(tempfile.mkdtemp())
        fake = FakeLauncher()
        app = Gpt2App(store_path=d / "runs.db", launcher=fake, sampler=FakeSampler(samples=3),
                      clock=FakeClock(), poll_interval=0.02, sample_interval=0.02)
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(200):
                if getattr(app.screen, "preset", None) and app.screen.query_one("#command").command:
                    break
                await pilot.pause(0.05)
            await pilot.press("ctrl+t")  # the offline preset: its preflight passes here
            await pilot.pause(0.2)
            await pilot.press("ctrl+l")
            for _ in range(200):
                if isinstance(app.screen, LiveScreen) and app.screen.updates:
                    break
                await pilot.pause(0.05)
            live = isinstance(app.screen, LiveScreen) and app.screen.state.step > 0
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("paddle", "paddlenlp"))
        print(json.dumps({"live": live, "heavy": heavy, "launched": len(fake.launched)}))

    asyncio.run(main())
""")


def test_dashboard_never_imports_paddle(tmp_path):
    res = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={"PATH": "/usr/bin:/bin", "PPNLP_HOME": str(tmp_path / "ppnlp"), "HOME": str(tmp_path)})
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["launched"] == 1 and out["live"], out  # the path was really walked
    assert out["heavy"] == [], f"the dashboard imported {out['heavy'][:5]}"
