"""The query-modulation study's rows: what its CSV files hold.

`univision.studies.query_detection` writes them (`runs.csv`, `curve.csv`,
`breakdown.csv`, `specialists.csv`); `query_detection_report` reads them.
"""
import dataclasses

from univision.studies import runs as runs_lib


@dataclasses.dataclass(frozen=True)
class Run:
  """One finished run (a row of `runs.csv`); APs on the test split.

  `query_*` are None for a setting without a query pass (its query pass
  would be its filtered standard pass exactly).
  """
  setting: str
  seed: int
  map: float  # The standard pass's COCO mAP.
  filtered_present: float  # Standard pass filtered to q, present queries.
  filtered_all: float  # The same over every query.
  query_present: float | None  # The query pass, present queries.
  query_all: float | None  # The same over every query.
  # Referring queries: accuracy of the query pass's top detection, and of
  # detect-then-select-by-rule on the standard pass (None: no rules).
  referring_query: float | None
  referring_rule: float | None
  steps: int
  seconds: float


@dataclasses.dataclass(frozen=True)
class CurvePoint:
  """One evaluated checkpoint of a run (a row of `curve.csv`)."""
  setting: str
  seed: int
  steps: int
  map: float
  filtered_present: float
  query_present: float | None


@dataclasses.dataclass(frozen=True)
class Breakdown:
  """Where one run's present-class query-AP goes (a row of
  `breakdown.csv`; `query_headroom.breakdown` of its last checkpoint)."""
  setting: str
  seed: int
  detections: str  # 'standard_filtered' or 'query_pass'.
  ap: float
  ap_confusion_free: float
  ap50: float
  ap50_confusion_free: float


@dataclasses.dataclass(frozen=True)
class Specialist:
  """A one-class detector of `cls` against the same seed's baselines (a
  row of `specialists.csv`); present-class AP of `cls` on test."""
  cls: int
  seed: int
  # Where it starts: 'backbone' (the study's backbone checkpoint, as every
  # setting) or 'standard_only' (that seed's trained standard-only
  # detector, i.e. from the filtered baseline itself).
  start: str
  specialist: float
  standard_only_filtered: float | None  # None: that run is not found.
  # For start 'standard_only': the control, that detector trained on as
  # long on every class, filtered to `cls` (None for 'backbone').
  continued_filtered: float | None
  joint_query: float | None
  steps: int
  seconds: float


def open_log(path: str) -> runs_lib.RunLog:
  """The study's `runs.csv`: a `Run` per finished (setting, seed)."""
  return runs_lib.RunLog(path, runs_lib.columns_of(Run),
                         key=('setting', 'seed'))


def read_runs(path: str) -> list[Run]:
  """The finished runs of `runs.csv` (none if the file does not exist)."""
  return [Run(**row) for row in open_log(path).rows()]


def open_curve(path: str) -> runs_lib.RunLog:
  """The study's `curve.csv`: a `CurvePoint` per evaluated checkpoint."""
  return runs_lib.RunLog(path, runs_lib.columns_of(CurvePoint),
                         key=('setting', 'seed', 'steps'))


def read_curve(path: str) -> list[CurvePoint]:
  return [CurvePoint(**row) for row in open_curve(path).rows()]


def open_breakdown(path: str) -> runs_lib.RunLog:
  """The study's `breakdown.csv`: a `Breakdown` per (run, detections)."""
  return runs_lib.RunLog(path, runs_lib.columns_of(Breakdown),
                         key=('setting', 'seed', 'detections'))


def read_breakdown(path: str) -> list[Breakdown]:
  return [Breakdown(**row) for row in open_breakdown(path).rows()]


def open_specialists(path: str) -> runs_lib.RunLog:
  """The study's `specialists.csv`: a `Specialist` per (class, seed,
  start)."""
  return runs_lib.RunLog(path, runs_lib.columns_of(Specialist),
                         key=('cls', 'seed', 'start'))


def read_specialists(path: str) -> list[Specialist]:
  return [Specialist(**row) for row in open_specialists(path).rows()]
