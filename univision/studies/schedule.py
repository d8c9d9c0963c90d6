"""The trainer settings of one short study run, as a config override.

A study trains many short runs of a registered experiment; each run's
trainer section follows from its step count the same way: validate once at
the end, a few checkpoints (so a killed run resumes), host loops and
summaries of at most 100 steps, and a cosine decay over the whole run.
"""
from typing import Any


def trainer_override(steps: int, checkpoints: int = 2,
                     warmup_steps: int | None = None,
                     validation_steps: int | None = None) -> dict[str, Any]:
  """The `trainer` override of a `steps`-step run.

  Args:
    steps: Training steps of the run.
    checkpoints: Checkpoints written during the run (at least one).
    warmup_steps: Linear warm-up steps; None keeps the experiment's.
    validation_steps: Validation steps (-1: the whole split); None keeps the
      experiment's.

  Returns:
    The mapping to put under 'trainer' in `params.override`.
  """
  trainer = {
      'train_steps': steps,
      'validation_interval': steps,
      'checkpoint_interval': max(1, steps // checkpoints),
      'steps_per_loop': min(100, steps),
      'summary_interval': min(100, steps),
      'optimizer_config': {
          'learning_rate': {'cosine': {'decay_steps': steps}}},
  }
  if validation_steps is not None:
    trainer['validation_steps'] = validation_steps
  if warmup_steps is not None:
    trainer['optimizer_config']['warmup'] = {
        'linear': {'warmup_steps': warmup_steps}}
  return trainer
