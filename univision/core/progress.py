"""Progress lines with a rate and an ETA, for training loops and long studies.

One format everywhere a user waits:

  train step 200/1500 (13%) | loss 0.8123 | 4.12 steps/s | ETA 5m16s
  study run 3/12 (25%) | fine/cam seed 1 | 0.21 runs/min | ETA 42m50s

The rate is measured from the first `update` (so start-up such as graph
tracing, which the first unit pays, does not count twice), and the ETA is the
remaining units at that rate.
"""
import time
from typing import Callable, Optional


def format_duration(seconds: float) -> str:
  """'1h02m', '5m16s' or '42s'."""
  seconds = max(0, int(round(seconds)))
  hours, rest = divmod(seconds, 3600)
  minutes, secs = divmod(rest, 60)
  if hours:
    return f'{hours}h{minutes:02d}m'
  if minutes:
    return f'{minutes}m{secs:02d}s'
  return f'{secs}s'


class Progress:
  """Formats progress lines for `total` units of work.

  Attributes:
    total: Units in the whole job (steps, runs, trials).
    label: What is counted, first word of each line (e.g. 'train step').
    unit: The rate's unit ('steps/s' or 'runs/min').
  """

  def __init__(self, total: int, label: str = 'step', unit: str = 'steps/s',
               clock: Callable[[], float] = time.monotonic):
    if total < 1:
      raise ValueError(f'Progress total must be >= 1, got {total}.')
    if unit not in ('steps/s', 'runs/min'):
      raise ValueError(f"Progress unit must be 'steps/s' or 'runs/min', got "
                       f'{unit!r}.')
    self.total = total
    self.label = label
    self.unit = unit
    self._clock = clock
    self._start: Optional[tuple[float, int]] = None

  def line(self, done: int, detail: str = '',
           metrics: Optional[dict[str, float]] = None) -> str:
    """The line for `done` finished units; the first call starts the clock.

    Args:
      done: Units finished so far (resumed work included).
      detail: Free text after the count (e.g. the run's name).
      metrics: Values shown as `name value` (e.g. {'loss': 0.81}).

    Returns:
      The line; rate and ETA are left out until two calls are apart in time.
    """
    now = self._clock()
    if self._start is None:
      self._start = (now, done)
    parts = [f'{self.label} {done}/{self.total} '
             f'({100 * done // self.total}%)']
    if detail:
      parts.append(detail)
    for name, value in (metrics or {}).items():
      parts.append(f'{name} {value:.4g}')
    start_time, start_done = self._start
    elapsed, finished = now - start_time, done - start_done
    if elapsed > 0 and finished > 0:
      per_second = finished / elapsed
      rate = per_second if self.unit == 'steps/s' else per_second * 60
      parts.append(f'{rate:.3g} {self.unit}')
      parts.append('ETA ' + format_duration(
          max(0, self.total - done) / per_second))
    return ' | '.join(parts)
