"""The demo's chart is a real PNG drawn without a display."""

from __future__ import annotations

from pathlib import Path

from supervisor.chart import Marker, Sample, draw_chart


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
