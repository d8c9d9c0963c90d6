"""`runtime.distribution_strategy` from YAML reaches Model Garden's strategy.

`mirrored` trains here on the one CPU device; `tpu` cannot run without a TPU,
so the call into Model Garden's `get_distribution_strategy` is intercepted
and its arguments checked. The two-process `multi_worker_mirrored` run is in
`tests/test_multi_worker.py`.
"""
import glob
import os
import types
from unittest import mock

import pytest
import tensorflow as tf, tf_keras

from tests import test_train
from tests.configs import test_experiments
from univision import registry_imports  # pylint: disable=unused-import
from univision.core import config_parsing
from univision.core import run_clock
from univision.core import training

TPU_YAMLS = sorted(glob.glob(os.path.join(
    test_experiments.EXPERIMENTS_DIR, '*', '*_tpu*.yaml')))


class _StopBeforeTpu(Exception):
  """Raised in place of connecting to a TPU."""


@pytest.fixture(autouse=True)
def _restore_keras_policy():
  """`training.run` sets a global mixed-precision policy; undo it."""
  yield
  tf_keras.mixed_precision.set_global_policy('float32')


def _params(experiment: str, config_files: list[str], override: str = '',
            tpu: str | None = None):
  """The config as train.py parses it from its flags."""
  return config_parsing.parse_configuration(types.SimpleNamespace(
      experiment=experiment, config_file=config_files,
      params_override=override, tpu=tpu, tf_data_service=None))


def test_mirrored_from_yaml_trains_through_run(fake_fmnist_tfrecords,
                                               tmp_path):
  strategy_yaml = tmp_path / 'mirrored.yaml'
  strategy_yaml.write_text("runtime:\n  distribution_strategy: 'mirrored'\n")
  params = _params('mnv4_fashion_mnist', [test_train.YAML, str(strategy_yaml)],
                   test_train._overrides(fake_fmnist_tfrecords, steps=2))  # pylint: disable=protected-access
  assert params.runtime.distribution_strategy == 'mirrored'
  made = []
  real = training.distribute_utils.get_distribution_strategy

  def recording(**kwargs):
    made.append(real(**kwargs))
    return made[-1]

  model_dir = str(tmp_path / 'run')
  with mock.patch.object(training.distribute_utils,
                         'get_distribution_strategy', side_effect=recording):
    model, metrics = training.run(params, model_dir, 'train_and_eval')
  strategy, = made
  assert isinstance(strategy, tf.distribute.MirroredStrategy)
  assert strategy.num_replicas_in_sync == 1
  assert isinstance(model, tf_keras.Model)
  assert set(metrics) >= {'accuracy', 'validation_loss'}
  latest = tf.train.latest_checkpoint(model_dir)
  assert latest.endswith('ckpt-2')
  assert tf.train.load_variable(
      latest, 'global_step/.ATTRIBUTES/VARIABLE_VALUE') == 2
  # The run's wall time is kept for the next process; evaluating adds none.
  seconds = run_clock.read(model_dir)
  assert seconds > 0
  training.run(params, model_dir, 'eval')
  assert run_clock.read(model_dir) == seconds


@pytest.mark.parametrize('path', TPU_YAMLS, ids=os.path.basename)
def test_tpu_yaml_and_flag_reach_get_distribution_strategy(path, tmp_path):
  params = _params(config_parsing.experiment_of(path), [path],
                   tpu='my-tpu-pod')
  with mock.patch.object(training.distribute_utils,
                         'get_distribution_strategy',
                         side_effect=_StopBeforeTpu) as get_strategy:
    with pytest.raises(_StopBeforeTpu):
      training.run(params, str(tmp_path), 'train')
  get_strategy.assert_called_once_with(
      distribution_strategy='tpu', all_reduce_alg=None, num_gpus=0,
      tpu_address='my-tpu-pod')
  # What else a TPU run needs: bfloat16 (never float16, which TPUs lack)
  # fed as bfloat16, unless the recipe trains in float32 ([MG] Conv-S).
  precision = params.runtime.mixed_precision_dtype
  assert precision in ('bfloat16', 'float32'), (path, precision)
  if precision == 'bfloat16':
    assert params.task.train_data.dtype == 'bfloat16', path
    assert tf_keras.mixed_precision.global_policy().name == 'mixed_bfloat16'


def test_tpu_flag_left_unset_keeps_the_yaml_address_empty():
  path = os.path.join(test_experiments.EXPERIMENTS_DIR, 'image_classification',
                      'imagenet_mnv4_conv_large_tpu_pod.yaml')
  params = _params('mnv4_imagenet', [path])
  assert params.runtime.tpu is None  # A TPU VM then finds its local TPU.
