"""The NAS trial log (`trials.csv`) and the run's summary.

One row per distinct candidate, appended as soon as it is decided, so an
interrupted search resumes by replaying the log: a candidate with a row is
never costed or trained again.
"""
import dataclasses

from univision.studies import runs

TRAINED, REJECTED = 'trained', 'rejected'


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


def _log(path: str) -> runs.RunLog:
  return runs.RunLog(path, runs.columns_of(Trial), key=('key',))


def read(path: str) -> list[Trial]:
  """The trials logged in `path` (none if it does not exist)."""
  return [Trial(**row) for row in _log(path).rows()]


def append(path: str, trial: Trial) -> None:
  """Appends one row, writing the header to a new file."""
  _log(path).append(trial)


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
