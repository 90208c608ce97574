"""The events figures, measured with tiny counts.

Not measurements: checks that the module starts its node, broker and echo,
produces its figures (or names them missing, with the install command, where
Mosquitto is not installed) and stops everything it started.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fixtures.services import MOSQUITTO  # noqa: E402

from bench import _events  # noqa: E402
from bench._model import BenchConfig  # noqa: E402
from bench._report import key  # noqa: E402

SUSTAINED, QUEUED = 300, 100


def no_process_left(tmp_path: Path) -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(tmp_path) in cmdline.read_text():
                return False
        except OSError:
            pass  # the process ended while we looked
    return True


def test_events_figures(tmp_path: Path) -> None:
    config = BenchConfig(repeats=1, requests=20, seconds=0.5, work_dir=tmp_path, smoke=True)
    figures = {f.name: f for f in _events.measure(config)}
    assert all(f.group == _events.GROUP for f in figures.values())
    assert set(figures) == {
        _events.FLOOR,
        _events.LATENCY,
        _events.ABOVE,
        _events.sustained_floor_name(SUSTAINED),
        _events.sustained_name(SUSTAINED),
        _events.delivered_name(SUSTAINED),
        _events.accepted_name(QUEUED),
        _events.completed_name(QUEUED),
    }
    assert figures[_events.LATENCY].floor == key(_events.GROUP, _events.FLOOR)
    floor = key(_events.GROUP, _events.sustained_floor_name(SUSTAINED))
    assert figures[_events.sustained_name(SUSTAINED)].floor == floor
    if not MOSQUITTO.exists():
        for figure in figures.values():
            assert math.isnan(figure.value) and "install" in figure.note, figure
        return
    for name in (_events.FLOOR, _events.LATENCY):
        figure = figures[name]
        assert figure.unit == "ms" and 0 < figure.value <= (figure.p99 or 0), figure
    delivered = figures[_events.delivered_name(SUSTAINED)]
    assert (delivered.value, delivered.errors) == (SUSTAINED, 0), delivered
    for name in (
        _events.sustained_floor_name(SUSTAINED),
        _events.sustained_name(SUSTAINED),
        _events.accepted_name(QUEUED),
        _events.completed_name(QUEUED),
    ):
        assert figures[name].value > 0 and figures[name].errors == 0, figures[name]
    assert no_process_left(tmp_path)
