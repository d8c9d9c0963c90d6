"""The model-patch study's rows and method names.

`univision.studies.model_patches` writes these rows (`runs.csv`,
`base_curve.csv`); `univision.studies.model_patches_report` reads them.
"""
import dataclasses

FULL = 'full'
BASE = 'base'
SPOT = 'spot@'


@dataclasses.dataclass(frozen=True)
class Run:
  """One finished run (a row of `runs.csv`); `ap`, `ap50` are on test-*."""
  task: str
  method: str  # FULL, BASE, a patch spec or 'spot@<lambda>'.
  seed: int
  ap: float
  ap50: float
  val_ap: float | None  # At the end of training; None for a given base.
  parameters: int  # Per-task trained parameters.
  percent: float  # Of the detector's trainable parameters.
  file_bytes: int  # The patch file on disk; full: 4 x every weight.
  gates_on: int | None  # A learned patch's gated-on layers (or blocks).
  steps: int  # 0 for a given base.
  # Wall time of training and its validation, over every process that
  # trained the run (`core.run_clock`); the test evaluation left out.
  seconds: float


@dataclasses.dataclass(frozen=True)
class CurvePoint:
  """The base after `steps` steps (a row of `base_curve.csv`)."""
  steps: int
  ap: float  # Test AP.
  ap50: float
  val_ap: float
  seconds: float  # Wall time of the chunk that ended here.


def spot_method(size_weight: float) -> str:
  """The method name of a learned patch: 0.2 -> 'spot@0.2'."""
  return f'{SPOT}{size_weight:g}'


def spot_lambda(method: str) -> float | None:
  """The size weight of a 'spot@<lambda>' method; None for the others."""
  return float(method[len(SPOT):]) if method.startswith(SPOT) else None
