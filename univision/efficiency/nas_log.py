"""The NAS trial log (`trials.csv`) and the run's summary.

One row per distinct candidate, appended as soon as it is decided, so an
interrupted search resumes by replaying the log: a candidate with a row is
never costed or trained again.
"""
import csv
import dataclasses
import os

FIELDS = ('index', 'phase', 'key', 'status', 'reason', 'mmacs', 'params',
          'latency_ms', 'accuracy', 'reward', 'seconds')
TRAINED, REJECTED = 'trained', 'rejected'
_FLOATS = ('mmacs', 'latency_ms', 'accuracy', 'reward', 'seconds')


@dataclasses.dataclass(frozen=True)
class Trial:
  """What the search decided about one candidate.

  Attributes:
    index: Row number in the log (0-based).
    phase: `coarse` or `fine`, the stage that first met the candidate.
    key: The candidate's key (`nas_space.Candidate.key`).
    status: `trained` or `rejected` (never trained).
    reason: Why it was rejected ('' if trained).
    mmacs: MACs in millions at the deployment resolution (None if the
      candidate was invalid and never costed).
    params: Trainable parameters (None likewise).
    latency_ms: Roofline latency on the profile (None likewise).
    accuracy: The accuracy proxy (None if rejected).
    reward: The reward (None if rejected).
    seconds: Wall time spent on it.
  """
  index: int
  phase: str
  key: str
  status: str
  reason: str = ''
  mmacs: float | None = None
  params: int | None = None
  latency_ms: float | None = None
  accuracy: float | None = None
  reward: float | None = None
  seconds: float = 0.0


def _parse(row: dict[str, str]) -> Trial:
  values = {}
  for key, text in row.items():
    if key in _FLOATS:
      values[key] = float(text) if text else None
    elif key in ('index', 'params'):
      values[key] = int(text) if text else None
    else:
      values[key] = text
  values['seconds'] = values['seconds'] or 0.0
  return Trial(**values)


def read(path: str) -> list[Trial]:
  """The trials logged in `path` (none if it does not exist)."""
  if not os.path.exists(path):
    return []
  with open(path, newline='') as f:
    reader = csv.DictReader(f)
    if tuple(reader.fieldnames or ()) != FIELDS:
      raise ValueError(f'{path}: columns {reader.fieldnames} are not a NAS '
                       f'trial log ({", ".join(FIELDS)}).')
    return [_parse(row) for row in reader]


def append(path: str, trial: Trial) -> None:
  """Appends one row, writing the header to a new file."""
  new = not os.path.exists(path)
  row = dataclasses.asdict(trial)
  row = {k: ('' if v is None else repr(v) if isinstance(v, float) else v)
         for k, v in row.items()}
  with open(path, 'a', newline='') as f:
    writer = csv.DictWriter(f, FIELDS)
    if new:
      writer.writeheader()
    writer.writerow(row)


def _cell(value, fmt: str) -> str:
  return '' if value is None else format(value, fmt)


def summary_markdown(trials: list[Trial], winners: dict[str, Trial],
                     settings: dict[str, object]) -> str:
  """The settings, each stage's winner, then every trial in order."""
  lines = ['# MobileNetV4 NAS run', '', '| setting | value |', '|---|---|']
  lines += [f'| {k} | {v} |' for k, v in settings.items()]
  lines += ['', '| stage winner | key | MMACs | latency (ms) | accuracy | '
            'reward |', '|---|---|---:|---:|---:|---:|']
  for phase, t in winners.items():
    lines.append(f'| {phase} | `{t.key}` | {t.mmacs:.1f} | '
                 f'{t.latency_ms:.4f} | {t.accuracy:.4f} | {t.reward:.4f} |')
  trained = sum(t.status == TRAINED for t in trials)
  lines += ['', f'{len(trials)} candidates: {trained} trained, '
            f'{len(trials) - trained} rejected by the constraints (never '
            'trained).', '',
            '| # | stage | key | status | MMACs | latency (ms) | accuracy | '
            'reward | seconds | reason |',
            '|---:|---|---|---|---:|---:|---:|---:|---:|---|']
  for t in trials:
    lines.append(
        f'| {t.index} | {t.phase} | `{t.key}` | {t.status} | '
        f'{_cell(t.mmacs, ".1f")} | {_cell(t.latency_ms, ".4f")} | '
        f'{_cell(t.accuracy, ".4f")} | {_cell(t.reward, ".4f")} | '
        f'{t.seconds:.0f} | {t.reason} |')
  return '\n'.join(lines) + '\n'
