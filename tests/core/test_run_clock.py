"""A run's wall time added up over the processes that train it."""
import json

import pytest

from univision.core import run_clock


def test_the_total_carries_over_to_the_next_process(tmp_path, monkeypatch):
  now = [100.0]
  monkeypatch.setattr(run_clock.time, 'monotonic', lambda: now[0])
  assert run_clock.read(str(tmp_path)) is None
  first = run_clock.RunClock(str(tmp_path))
  now[0] += 30.0
  first({'training_loss': 1.0})  # As an Orbit action, after a loop.
  assert run_clock.read(str(tmp_path)) == 30.0
  now[0] += 12.0  # Killed here: these seconds are lost.
  second = run_clock.RunClock(str(tmp_path))  # The resumed process.
  now[0] += 20.0
  assert second.write() == 50.0
  assert json.loads((tmp_path / run_clock.FILE).read_text()) == {
      'seconds': 50.0}
  assert not list(tmp_path.glob('*.tmp'))


def test_a_damaged_record_is_named(tmp_path):
  (tmp_path / run_clock.FILE).write_text('{"secs": 3}')
  with pytest.raises(ValueError, match='run_seconds.json: not a run clock'):
    run_clock.read(str(tmp_path))
