"""The demo's chart is a real PNG drawn without a display."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from supervisor.demo.chart import Marker, Sample, draw_chart

ROOT = Path(__file__).resolve().parent.parent


def test_draws_a_png(tmp_path: Path) -> None:
    """Samples and markers become a PNG file (Agg backend, no display needed)."""
    samples = [
        Sample(t, 100 - 10 * t, 20 if t < 5 else 0, 10 * t, 0, 2, 2, 0, 10 * t, 5 * t)
        for t in range(10)
    ]
    markers = [
        Marker(1, "deployment", "rev 2"),
        Marker(3, "kill", "kill t1"),
        Marker(5, "mover", "m"),
    ]
    path = draw_chart(samples, markers, tmp_path / "chart.png", "test")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000


WITHOUT_MATPLOTLIB = """
import sys
from pathlib import Path
sys.modules["matplotlib"] = None  # as if the `demo` extra were not installed
from supervisor.demo.chart import Sample
from supervisor.demo.runner import DemoState, write_outputs
state = DemoState(events=[{"event": "demo_started"}], samples=[Sample(0, 1, 0, 0, 0, 1, 0, 0, 0, 0)])
summary = {"tasks": 1, "strategy": "random", "mode": "exec"}
paths = write_outputs(Path(sys.argv[1]), summary, state)
print(",".join(path.name for path in paths))
"""


def test_without_matplotlib_the_demo_still_writes_summary_and_events(tmp_path: Path) -> None:
    """No chart, one line on stderr naming the extra, and the other two files written."""
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_MATPLOTLIB, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "summary.json,events.jsonl"
    assert result.stderr.strip().splitlines() == [
        "chart.png not drawn: matplotlib is not installed (the demo extra:"
        " pip install -e '.[demo]' in a checkout)"
    ]
    assert json.loads((tmp_path / "events.jsonl").read_text()) == {"event": "demo_started"}
    assert json.loads((tmp_path / "summary.json").read_text())["tasks"] == 1
    assert not (tmp_path / "chart.png").exists()
