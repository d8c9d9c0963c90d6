"""End-to-end tests of train.py and export.py as a user runs them."""
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf, tf_keras

from tests import conftest
from tests.serving import test_saved_model
from tests.tasks import test_image_classification as task_tests
from univision.core import logging_setup

YAML = os.path.join(conftest.REPO, 'univision', 'configs', 'experiments',
                    'image_classification',
                    'fashion_mnist_mnv4_conv_small_cpu.yaml')
# absl's prefix: severity, date, time, thread, file:line.
_ABSL_LINE = re.compile(r'[IWEF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] ')
# The prefix of the handler TensorFlow may add to its own logger.
_TF_HANDLER_PREFIX = re.compile(r'^[A-Z]+:tensorflow:')
_GPU_PROBE_NOISE = ('cuInit', 'cuda drivers', 'Number of eligible GPUs',
                    'absl::InitializeLog')


def _overrides(data_dir: str, steps: int) -> str:
  return ','.join([
      f"task.train_data.input_path='{data_dir}/train-*'",
      f"task.validation_data.input_path='{data_dir}/test-*'",
      'task.model.input_size=[32,32,3]',
      'task.train_data.global_batch_size=8',
      'task.validation_data.global_batch_size=8',
      f'trainer.train_steps={steps}', 'trainer.steps_per_loop=2',
      'trainer.summary_interval=2', 'trainer.checkpoint_interval=2',
      'trainer.validation_interval=2', 'trainer.validation_steps=2',
      'trainer.optimizer_config.warmup.linear.warmup_steps=1'])


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
  result = subprocess.run([sys.executable, *args], cwd=conftest.REPO,
                          capture_output=True, text=True, timeout=600,
                          check=False)
  if check and result.returncode != 0:
    raise AssertionError(f'{args} failed:\n{result.stdout}\n{result.stderr}')
  return result


def _train(model_dir: str, data_dir: str, steps: int, check: bool = True,
           progress_lines: bool = False):
  return _run('train.py', '--experiment=mnv4_fashion_mnist',
              '--mode=train_and_eval', f'--config_file={YAML}',
              f'--model_dir={model_dir}',
              f'--params_override={_overrides(data_dir, steps)}',
              *(['--progress_lines'] if progress_lines else []), check=check)


def _repeated_lines(log: str) -> list[str]:
  """Lines printed twice: the same text, or also inside another line.

  absl's lines (unique by their time) are only searched; the indented lines
  of Orbit's metric blocks are left out (two evaluations can agree).
  """
  printed = [_TF_HANDLER_PREFIX.sub('', line) for line in log.splitlines()
             if line.strip() and not line[0].isspace() and
             not _ABSL_LINE.match(line)]
  return [line for line in printed if log.count(line) > 1]


def _assert_reads_cleanly(result: subprocess.CompletedProcess) -> None:
  log = result.stdout + result.stderr
  assert not _repeated_lines(log), _repeated_lines(log)
  if not logging_setup.has_cuda_driver():
    noise = [line for line in log.splitlines()
             if any(n in line for n in _GPU_PROBE_NOISE)]
    assert not noise, noise


@pytest.fixture(scope='module')
def trained_run(tmp_path_factory, fake_fmnist_tfrecords):
  """Trains 4 steps with progress lines, then resumes to step 6 without."""
  model_dir = str(tmp_path_factory.mktemp('run'))
  first = _train(model_dir, fake_fmnist_tfrecords, steps=4,
                 progress_lines=True)
  first_ckpt = tf.train.latest_checkpoint(model_dir)
  first_weights = tf.train.load_variable(
      first_ckpt, 'model/layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE')
  second = _train(model_dir, fake_fmnist_tfrecords, steps=6)
  return dict(model_dir=model_dir, first=first, second=second,
              first_ckpt=first_ckpt, first_weights=first_weights)


def test_train_writes_checkpoint_config_and_summaries(trained_run):
  model_dir = trained_run['model_dir']
  assert trained_run['first_ckpt'].endswith('ckpt-4')
  assert os.path.exists(os.path.join(model_dir, 'params.yaml'))
  assert tf.io.gfile.glob(os.path.join(model_dir, 'train', 'events.*'))
  assert tf.io.gfile.glob(os.path.join(model_dir, 'validation', 'events.*'))
  out = trained_run['first'].stdout
  assert f'Checkpoint:       {model_dir}/ckpt-4\n' in out
  assert 'Final evaluation: accuracy=' in out


def test_train_output_reads_cleanly(trained_run):
  """Each line once, no GPU probe noise, progress lines, a closing summary."""
  first, second = trained_run['first'], trained_run['second']
  _assert_reads_cleanly(first)
  _assert_reads_cleanly(second)
  # --progress_lines: one line per loop of 2 steps, instead of Orbit's block.
  progress = re.findall(r'^train step .*$', first.stdout, flags=re.M)
  assert len(progress) == 2, first.stdout
  assert re.fullmatch(r'train step 2/4 \(50%\) \| loss [\d.]+', progress[0])
  assert re.fullmatch(r'train step 4/4 \(100%\) \| loss [\d.]+ \| '
                      r'[\d.]+ steps/s \| ETA 0s', progress[1])
  orbit_report = r'^train \| step: +(\d+) \| steps/sec:'
  assert not re.search(orbit_report, first.stdout, flags=re.M)
  assert re.findall(orbit_report, second.stdout, flags=re.M) == ['6']
  model_dir = trained_run['model_dir']
  summary = first.stdout.splitlines()[-5:]
  assert re.fullmatch(r'Eval top-1:       \d+\.\d\d% \(accuracy on '
                      r'\S+/test-\*\)', summary[0])
  assert summary[1].startswith('Final evaluation: accuracy=')
  assert summary[2] == f'Checkpoint:       {model_dir}/ckpt-4'
  assert summary[3].startswith(f'TensorBoard logs: {model_dir} ')
  assert summary[4].startswith(
      'Export:           python export.py --experiment=mnv4_fashion_mnist '
      f'--config_file={YAML} ')
  assert summary[4].endswith(f'--checkpoint_path={model_dir} '
                             f'--export_dir={model_dir}/export')


def test_train_resumes_from_latest_checkpoint(trained_run):
  log = trained_run['second'].stdout + trained_run['second'].stderr
  assert 'train | step:      4 | training until step 6' in log
  assert 'training until step 6' in log and 'step:      0 | training' not in log
  final = tf.train.latest_checkpoint(trained_run['model_dir'])
  assert final.endswith('ckpt-6')
  step = tf.train.load_variable(final, 'global_step/.ATTRIBUTES/VARIABLE_VALUE')
  assert step == 6
  # The first run's weights were restored, then trained further.
  resumed = tf.train.load_variable(
      final, 'model/layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE')
  assert resumed.shape == trained_run['first_weights'].shape
  assert not np.array_equal(resumed, trained_run['first_weights'])


def test_export_saved_model_serves_image_bytes(trained_run, tmp_path):
  export_dir = str(tmp_path / 'export')
  result = _run('export.py', '--experiment=mnv4_fashion_mnist',
                f'--config_file={YAML}',
                '--params_override=task.model.input_size=[32,32,3]',
                f'--checkpoint_path={trained_run["model_dir"]}',
                f'--export_dir={export_dir}', '--input_type=image_bytes')
  _assert_reads_cleanly(result)
  saved_model = os.path.join(export_dir, 'saved_model')
  checkpoint = os.path.join(trained_run['model_dir'], 'ckpt-6')
  summary = result.stdout.splitlines()[-4:]
  assert summary[0] == (f'SavedModel:       {saved_model} '
                        f'(from {checkpoint})')
  assert summary[1].startswith('Serve:            python -c ')
  assert summary[2].startswith('To TFLite:        python export.py ')
  assert f'--tflite_path={export_dir}/model.tflite' in summary[2]
  assert 'make qat-demo' in summary[3]
  assert not test_saved_model.keras_trace_functions(saved_model)
  served = tf.saved_model.load(saved_model)
  image = tf.io.encode_png(tf.zeros([28, 28, 3], tf.uint8))
  outputs = served.signatures['serving_default'](tf.stack([image, image]))
  assert outputs['logits'].shape == (2, 10)
  np.testing.assert_allclose(outputs['probs'].numpy().sum(-1), 1.0,
                             atol=1e-5)
  # The printed serving command runs as printed, on an image file.
  tf.io.write_file(str(tmp_path / 'IMAGE.png'), image)
  serve = shlex.split(summary[1][len('Serve:'):])
  served_png = subprocess.run([sys.executable, *serve[1:]], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300,
                              check=True)
  assert "'probs'" in served_png.stdout


def test_export_serves_bytes_and_tensors_alike(trained_run, tmp_path):
  export_dir = str(tmp_path / 'export')
  _run('export.py', '--experiment=mnv4_fashion_mnist',
       f'--config_file={YAML}',
       '--params_override=task.model.input_size=[32,32,3]',
       f'--checkpoint_path={trained_run["model_dir"]}',
       f'--export_dir={export_dir}', '--input_type=image_tensor',
       '--signatures=image_bytes')
  served = tf.saved_model.load(os.path.join(export_dir, 'saved_model'))
  assert set(served.signatures) == {'serving_default', 'serving_image_bytes'}
  image = np.random.default_rng(0).integers(0, 256, (28, 28, 3), np.uint8)
  from_tensor = served.signatures['serving_default'](
      tf.constant(image[np.newaxis]))['logits']
  from_bytes = served.signatures['serving_image_bytes'](
      tf.stack([tf.io.encode_png(image)]))['logits']
  np.testing.assert_allclose(from_bytes.numpy(), from_tensor.numpy(),
                             atol=1e-5)


def test_train_names_corrupt_record_and_exits(fake_fmnist_tfrecords,
                                              tmp_path):
  data_dir = str(tmp_path / 'data')
  task_tests.write_corrupt_copy(fake_fmnist_tfrecords, data_dir,
                                bad_index=None)
  tf.io.gfile.copy(
      sorted(tf.io.gfile.glob(f'{fake_fmnist_tfrecords}/test-*'))[0],
      f'{data_dir}/test-0.tfrecord')
  result = _train(str(tmp_path / 'run'), data_dir, steps=2, check=False)
  assert result.returncode != 0
  assert ('train.py: bad input data: Corrupt or truncated image record in '
          'task.train_data.input_path=') in result.stderr
  assert re.search(r'record fashion_mnist/train/\d+ is not a complete',
                   result.stderr)


def test_train_names_missing_data(tmp_path):
  result = _train(str(tmp_path / 'run'), str(tmp_path / 'nowhere'), steps=2,
                  check=False)
  assert result.returncode != 0
  assert 'task.train_data.input_path: no file matches' in result.stderr
