"""A run's wall time, added up over the processes that trained it.

A resumed run is trained by several processes (a study killed and started
again, a session ending); a timer around one process sees only its own
part, so a run resumed after its last step would report seconds where it
took an hour. `RunClock` keeps the total in `<model_dir>/run_seconds.json`:
it starts from the total the earlier processes left there and rewrites it
after every train loop and evaluation (an Orbit action), so a killed
process loses at most its last loop. Paused time (a stopped process)
counts, as it does for any wall clock.
"""
import json
import os
import time
from typing import Any

import tensorflow as tf

FILE = 'run_seconds.json'


def read(model_dir: str) -> float | None:
  """The total seconds recorded for the run in `model_dir`, if any.

  Raises:
    ValueError: naming the file, if it is not a clock's record.
  """
  path = os.path.join(model_dir, FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    text = f.read()
  try:
    seconds = float(json.loads(text)['seconds'])
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(f'{path}: not a run clock record ({text[:80]!r}); '
                     'delete it to start the count again.') from e
  return seconds


class RunClock:
  """Adds this process's wall time to the run's recorded total."""

  def __init__(self, model_dir: str):
    self._model_dir = model_dir
    self._before = read(model_dir) or 0.0
    self._start = time.monotonic()

  def seconds(self) -> float:
    """The run's total so far: earlier processes' and this one's."""
    return self._before + time.monotonic() - self._start

  def write(self) -> float:
    """Records the total (replacing the file in one step); returns it."""
    seconds = round(self.seconds(), 1)
    path = os.path.join(self._model_dir, FILE)
    tf.io.gfile.makedirs(self._model_dir)
    with tf.io.gfile.GFile(path + '.tmp', 'w') as f:
      json.dump({'seconds': seconds}, f)
    tf.io.gfile.rename(path + '.tmp', path, overwrite=True)
    return seconds

  def __call__(self, output: Any = None) -> None:
    """As an Orbit train or eval action: records the total."""
    del output
    self.write()
