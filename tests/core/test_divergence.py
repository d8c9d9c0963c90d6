"""Tests for the divergence guard: NaN/inf loss or weights stop training."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras
from official.core import config_definitions as cfg

from univision.core import divergence


@pytest.fixture
def setup(tmp_path):
  """A small model, its step counter and a checkpoint at step 4."""
  model = tf_keras.Sequential([tf_keras.layers.Dense(3, name='head')])
  model.build([None, 2])
  step = tf.Variable(4, dtype=tf.int64)
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model),
                                       str(tmp_path), max_to_keep=2)
  manager.save(checkpoint_number=4)
  step.assign(6)
  return model, step, manager


def _guard(setup, optimizer=None, **trainer):
  model, step, manager = setup
  config = cfg.TrainerConfig(steps_per_loop=2, **trainer)
  return divergence.DivergenceGuard(model, step, manager, config, optimizer)


def test_finite_loss_and_weights_pass(setup):
  _guard(setup)({'training_loss': tf.constant(2.3)})


@pytest.mark.parametrize('loss', [np.nan, np.inf, -np.inf])
def test_non_finite_loss_names_step_loss_checkpoint_and_advice(setup, loss):
  with pytest.raises(divergence.TrainingDivergedError) as error:
    _guard(setup)({'training_loss': tf.constant(loss, tf.float32)})
  message = str(error.value)
  assert 'train loop ending at step 6 (trainer.steps_per_loop=2)' in message
  assert f'the mean training loss is {float(loss)}' in message
  assert f'The latest checkpoint, {setup[2].latest_checkpoint}' in message
  assert 'Lower the learning rate' in message
  assert message.endswith(f'resume from {setup[2].latest_checkpoint}.')


def test_non_finite_weights_stop_even_with_a_finite_loss(setup):
  model = setup[0]
  kernel = model.get_layer('head').kernel
  kernel.assign(tf.fill(kernel.shape, np.nan))
  with pytest.raises(divergence.TrainingDivergedError,
                     match=r'1 weights or optimizer variables hold NaN or inf '
                     r'values after the last update \(first: head/kernel:0\)'):
    _guard(setup)({'training_loss': tf.constant(1.0)})


def test_non_finite_optimizer_slots_stop_training(setup):
  model = setup[0]
  optimizer = tf_keras.optimizers.Adam()
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(model(tf.ones([1, 2])))
  optimizer.apply_gradients(zip(tape.gradient(loss, model.weights),
                                model.weights))
  slot = next(v for v in optimizer.variables if v.shape == (2, 3))
  slot.assign(tf.fill(slot.shape, np.inf))
  with pytest.raises(divergence.TrainingDivergedError,
                     match=rf'1 weights or optimizer variables .*first: '
                     rf'{slot.name}'):
    _guard(setup, optimizer)({'training_loss': tf.constant(1.0)})


def test_nan_losses_are_left_to_model_garden_while_trials_last(setup):
  guard = _guard(setup, recovery_max_trials=1)
  guard({'training_loss': tf.constant(np.nan)})  # Model Garden restores.
  with pytest.raises(divergence.TrainingDivergedError,
                     match=r'loss is nan after 1 restore\(s\) '
                     r'\(trainer.recovery_max_trials=1\)'):
    guard({'training_loss': tf.constant(np.nan)})


@pytest.mark.parametrize('loss, trainer', [
    (-np.inf, {}),  # Never above the bound: Model Garden would not restore.
    (np.inf, {'recovery_begin_steps': 100}),  # Not before step 100 either.
])
def test_infinite_losses_model_garden_misses_stop_here(setup, loss, trainer):
  guard = _guard(setup, recovery_max_trials=3, **trainer)
  with pytest.raises(divergence.TrainingDivergedError,
                     match=rf'the mean training loss is {float(loss)}\. '):
    guard({'training_loss': tf.constant(loss)})


def test_finite_losses_over_the_bound_use_up_trials_as_model_garden(setup):
  guard = _guard(setup, recovery_max_trials=1, loss_upper_bound=10.)
  guard({'training_loss': tf.constant(1e3)})  # Model Garden's restore.
  with pytest.raises(divergence.TrainingDivergedError, match='loss is nan'):
    guard({'training_loss': tf.constant(np.nan)})


def test_without_model_garden_recovery_the_first_nan_stops(setup):
  with pytest.raises(divergence.TrainingDivergedError, match='loss is nan\\.'):
    _guard(setup, recovery_max_trials=-1)(
        {'training_loss': tf.constant(np.nan)})


def test_without_checkpoint_says_none_was_written(setup):
  model, step, _ = setup
  guard = divergence.DivergenceGuard(model, step, None, cfg.TrainerConfig())
  with pytest.raises(divergence.TrainingDivergedError,
                     match='No checkpoint was written.*resume from step 0'):
    guard({'training_loss': tf.constant(np.nan)})
