"""Tests for a short study run's trainer override."""
from official.core import exp_factory

from univision import registry_imports  # pylint: disable=unused-import
from univision.studies import schedule


def test_override_sets_the_run_schedule_on_an_experiment():
  params = exp_factory.get_exp_config('mnv4_fashion_mnist')
  warmup_before = (params.trainer.optimizer_config.warmup.linear
                   .warmup_steps)
  params.override({'trainer': schedule.trainer_override(250)})
  trainer = params.trainer
  assert (trainer.train_steps, trainer.validation_interval,
          trainer.checkpoint_interval, trainer.steps_per_loop,
          trainer.summary_interval) == (250, 250, 125, 100, 100)
  assert trainer.optimizer_config.learning_rate.cosine.decay_steps == 250
  # Unset options keep the experiment's values.
  assert trainer.optimizer_config.warmup.linear.warmup_steps == warmup_before


def test_checkpoints_warmup_and_validation_steps():
  trainer = schedule.trainer_override(30, checkpoints=3, warmup_steps=2,
                                      validation_steps=-1)
  assert trainer['checkpoint_interval'] == 10
  assert trainer['steps_per_loop'] == trainer['summary_interval'] == 30
  assert trainer['validation_steps'] == -1
  assert trainer['optimizer_config']['warmup'] == {
      'linear': {'warmup_steps': 2}}
  assert schedule.trainer_override(1, checkpoints=3)[
      'checkpoint_interval'] == 1
