"""train.py under faults: SIGKILL and restart, divergence, damaged TFRecords.

Each test runs train.py as a user does, in a subprocess, on the small fake
Fashion-MNIST records (32x32 inputs, batch 8).
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf, tf_keras

from tests import conftest
from tests.core import test_tfrecord_check

YAML = os.path.join(conftest.REPO, 'univision', 'configs', 'experiments',
                    'image_classification',
                    'fashion_mnist_mnv4_conv_small_cpu.yaml')
STEPS_PER_LOOP = 2
CHECKPOINT_INTERVAL = 4
_LOGGED_STEP = re.compile(r'train \| step: +(\d+) \| steps/sec')


def _command(model_dir: str, data_dir: str, steps: int,
             *overrides: str) -> list[str]:
  params = ','.join([
      f"task.train_data.input_path='{data_dir}/train-*'",
      f"task.validation_data.input_path='{data_dir}/test-*'",
      'task.model.input_size=[32,32,3]', 'task.train_data.global_batch_size=8',
      f'trainer.train_steps={steps}',
      f'trainer.steps_per_loop={STEPS_PER_LOOP}',
      f'trainer.summary_interval={STEPS_PER_LOOP}',
      f'trainer.checkpoint_interval={CHECKPOINT_INTERVAL}',
      'trainer.optimizer_config.warmup.linear.warmup_steps=1', *overrides])
  return [sys.executable, 'train.py', '--experiment=mnv4_fashion_mnist',
          '--mode=train', f'--config_file={YAML}', f'--model_dir={model_dir}',
          f'--params_override={params}']


def _run(command: list[str]) -> subprocess.CompletedProcess:
  return subprocess.run(command, cwd=conftest.REPO, capture_output=True,
                        text=True, timeout=600, check=False)


def _checkpoint_step(model_dir: str) -> int:
  """The step of the latest checkpoint (0 if none)."""
  latest = tf.train.latest_checkpoint(model_dir)
  return int(latest.rsplit('-', 1)[1]) if latest else 0


def _read_all(checkpoint: str) -> dict[str, np.ndarray]:
  """Every tensor of a checkpoint: fails if any is unreadable."""
  reader = tf.train.load_checkpoint(checkpoint)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}


def test_sigkill_then_restart_resumes_and_loses_at_most_one_interval(
    fake_fmnist_tfrecords, tmp_path):
  model_dir, total = str(tmp_path / 'run'), 24
  command = _command(model_dir, fake_fmnist_tfrecords, total)
  with open(tmp_path / 'killed.log', 'w') as log:
    process = subprocess.Popen(command, cwd=conftest.REPO, stdout=log,
                               stderr=subprocess.STDOUT,
                               env={**os.environ, 'PYTHONUNBUFFERED': '1'})
    deadline = time.monotonic() + 300
    while _checkpoint_step(model_dir) <= CHECKPOINT_INTERVAL:
      assert process.poll() is None, 'train.py ended before it was killed'
      assert time.monotonic() < deadline, 'no second checkpoint in 300 s'
      time.sleep(0.1)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
  assert process.returncode == -signal.SIGKILL
  reached = max(int(s) for s in _LOGGED_STEP.findall(
      (tmp_path / 'killed.log').read_text()))
  saved = _checkpoint_step(model_dir)
  assert saved < total
  assert reached - saved <= CHECKPOINT_INTERVAL
  # The directory is not left corrupt: the latest checkpoint reads in full.
  tensors = _read_all(tf.train.latest_checkpoint(model_dir))
  assert tensors['global_step/.ATTRIBUTES/VARIABLE_VALUE'] == saved

  restarted = _run(command)
  assert restarted.returncode == 0, restarted.stderr
  log = restarted.stdout + restarted.stderr
  assert f'train | step: {saved:6d} | training until step {total}' in log
  assert 'step:      0 | training' not in log
  final = tf.train.latest_checkpoint(model_dir)
  assert final.endswith(f'ckpt-{total}')
  assert tf.train.load_variable(
      final, 'global_step/.ATTRIBUTES/VARIABLE_VALUE') == total


def test_divergence_stops_with_a_message_and_keeps_a_finite_checkpoint(
    fake_fmnist_tfrecords, tmp_path):
  model_dir = str(tmp_path / 'run')
  # A sane learning rate for 4 steps, then 1e30: the loss becomes NaN/inf.
  result = _run(_command(
      model_dir, fake_fmnist_tfrecords, 40,
      'trainer.optimizer_config.learning_rate.type=stepwise',
      'trainer.optimizer_config.learning_rate.stepwise.boundaries=[4]',
      'trainer.optimizer_config.learning_rate.stepwise.values=[0.001,1e30]'))
  assert result.returncode != 0
  match = re.search(r'train.py: Training diverged in the train loop ending '
                    r'at step (\d+) \(trainer.steps_per_loop=2\): (.*)\. The '
                    r'latest checkpoint, (\S+), was written before this loop',
                    result.stderr)
  assert match, result.stderr[-3000:]
  step, what, latest = int(match.group(1)), match.group(2), match.group(3)
  assert step <= 12  # Stopped within a few loops of the blow-up.
  assert re.match(r'the mean training loss is (nan|inf)|'
                  r'\d+ weights or optimizer variables hold NaN', what)
  assert 'Lower the learning rate' in result.stderr
  assert latest == tf.train.latest_checkpoint(model_dir)
  assert _checkpoint_step(model_dir) < step
  for name, value in _read_all(latest).items():
    if np.issubdtype(np.asarray(value).dtype, np.floating):
      assert np.isfinite(value).all(), name


def test_damaged_tfrecord_file_is_named(fake_fmnist_tfrecords, tmp_path):
  data_dir = tmp_path / 'data'
  shutil.copytree(fake_fmnist_tfrecords, data_dir)
  bad = str(sorted(data_dir.glob('train-*'))[3])
  test_tfrecord_check.flipped_copy(bad, bad)
  result = _run(_command(str(tmp_path / 'run'), str(data_dir), 4))
  assert result.returncode != 0
  assert re.search(
      rf'train.py: bad input data: task.train_data.input_path: {bad} is '
      r'damaged at byte \d+: the record data fails its CRC check\.',
      result.stderr), result.stderr[-3000:]
