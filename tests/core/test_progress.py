"""Tests for the progress lines."""
import pytest

from univision.core import progress


class FakeClock:

  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


def test_duration_format():
  assert progress.format_duration(42.4) == '42s'
  assert progress.format_duration(316) == '5m16s'
  assert progress.format_duration(3720) == '1h02m'
  assert progress.format_duration(-3) == '0s'


def test_rate_and_eta_count_from_the_first_line():
  clock = FakeClock()
  p = progress.Progress(1500, 'train step', clock=clock)
  # Resumed at step 100: no rate yet.
  assert p.line(100, metrics={'loss': 0.81234}) == (
      'train step 100/1500 (6%) | loss 0.8123')
  clock.now += 50.0  # 200 steps in 50 s: 4 steps/s, 1200 left: 300 s.
  assert p.line(300, metrics={'loss': 0.5}) == (
      'train step 300/1500 (20%) | loss 0.5 | 4 steps/s | ETA 5m00s')


def test_runs_per_minute():
  clock = FakeClock()
  p = progress.Progress(12, 'study run', unit='runs/min', clock=clock)
  p.line(2)
  clock.now += 600.0  # 1 run in 10 minutes; 9 left.
  assert p.line(3, 'fine/cam seed 1') == (
      'study run 3/12 (25%) | fine/cam seed 1 | 0.1 runs/min | ETA 1h30m')


def test_bad_arguments_are_named():
  with pytest.raises(ValueError, match='total must be >= 1, got 0'):
    progress.Progress(0)
  with pytest.raises(ValueError, match="unit must be .* got 'hours'"):
    progress.Progress(3, unit='hours')
