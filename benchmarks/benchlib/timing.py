"""Repeated, interleaved timing and its summary statistics.

Load from other processes on a shared machine comes and goes; timing the
contenders in turn within each round (and alternating their order from round
to round) makes it hit all of them alike, so their ratio stays meaningful
even when the absolute numbers drift.
"""
import dataclasses
import math
import statistics
import time
from typing import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class Summary:
  """Order statistics of repeated measurements."""
  median: float
  q1: float
  q3: float
  minimum: float
  maximum: float
  repeats: int


def summarize(samples: list[float]) -> Summary:
  """The median, quartiles, extremes and count of `samples`."""
  if not samples:
    raise ValueError('summarize: no samples.')
  q1, q3 = np.percentile(samples, [25, 75])
  return Summary(statistics.median(samples), float(q1), float(q3),
                 min(samples), max(samples), len(samples))


def seconds(fn: Callable[[], object]) -> float:
  """Wall-clock seconds of one call of `fn` (which must block until done)."""
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def _calls_per_sample(fn: Callable[[], object], min_sample_s: float) -> int:
  """How many calls of `fn` make one sample last at least `min_sample_s`."""
  if min_sample_s <= 0:
    return 1
  return max(1, math.ceil(min_sample_s / max(seconds(fn), 1e-9)))


def interleaved(contenders: dict[str, Callable[[], object]], repeats: int,
                warmup: int = 0, min_sample_s: float = 0.0
                ) -> dict[str, list[float]]:
  """Times every contender once per round, for `repeats` rounds.

  Args:
    contenders: Name -> a blocking call to time.
    repeats: Number of timed rounds.
    warmup: Untimed calls of each contender before the first round.
    min_sample_s: Each sample is the mean of as many back-to-back calls as
      make it last about this long (after warm-up, one timed call sets the
      count per contender), so that sub-millisecond calls are not
      dominated by timer and scheduler noise; 0 times single calls.

  Returns:
    Name -> the `repeats` per-call durations in seconds, in round order.
  """
  for fn in contenders.values():
    for _ in range(warmup):
      fn()
  names = list(contenders)
  inner = {name: _calls_per_sample(contenders[name], min_sample_s)
           for name in names}
  times = {name: [] for name in names}
  for round_index in range(repeats):
    order = names if round_index % 2 == 0 else names[::-1]
    for name in order:
      fn, count = contenders[name], inner[name]
      times[name].append(seconds(lambda: [fn() for _ in range(count)])
                         / count)
  return times
