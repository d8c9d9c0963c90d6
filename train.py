"""univision training driver, with Model Garden's flags and trainer.

  python train.py --experiment=mnv4_fashion_mnist --mode=train_and_eval \
    --config_file=univision/configs/experiments/image_classification/\
fashion_mnist_mnv4_conv_small_cpu.yaml --model_dir=runs/demo

Flags are Model Garden's (`--experiment --config_file --params_override
--mode --model_dir --tpu ...`). Training resumes from the latest checkpoint in
`--model_dir`. Differences from `official/vision/train.py`: config errors name
the file and full key, bad input data ends the run with a one-line message
naming the record (a bad image) or the file and byte offset (a damaged
TFRecord file), a NaN/inf loss or weights end it with a message naming the
step and the last good checkpoint, each log line is printed once, and the
run ends with a short summary: the top-1 accuracy of the last evaluation,
the latest checkpoint, the TensorBoard logs and the command that exports it.
`--progress_lines` reports each train loop as one line (step, loss, steps/s,
ETA) instead of Orbit's block of metrics.
"""
import shlex
import sys

from absl import app
from absl import flags

import univision  # pylint: disable=unused-import  (sets the Keras mode)
import tensorflow as tf, tf_keras
from official.common import flags as tfm_flags
from official.core import config_definitions as cfg

from univision import registry_imports  # pylint: disable=unused-import
from univision.configs import retinanet as retinanet_cfg
from univision.core import config_parsing
from univision.core import divergence
from univision.core import logging_setup
from univision.core import tfrecord_check
from univision.core import training
from univision.tasks import patch_outputs

FLAGS = flags.FLAGS
_DATA_ERROR_MARK = 'Corrupt or truncated image record'
flags.DEFINE_bool(
    'progress_lines', False, 'Report each train loop (trainer.steps_per_loop '
    'steps) as one line: step, loss, steps/s and ETA, instead of Orbit\'s '
    'block of every train metric (still logged with -v 1).')


def _data_error(error: tf.errors.OpError) -> str | None:
  """The line of an input-pipeline error naming the bad record, if any."""
  for line in error.message.splitlines():
    if _DATA_ERROR_MARK in line:
      # The assertion prints its message as a bytes literal inside [...].
      return line[line.index(_DATA_ERROR_MARK):].strip().rstrip(']\'"')
  return None


def run(flags_obj) -> tuple[cfg.ExperimentConfig, dict[str, float],
                             list[str]]:
  """Parses the experiment from flags, trains and/or evaluates.

  A run that trains a model patch (`*_patch`, `*_spot` experiments) ends by
  writing the patch file (`patch_outputs.default_path`), a learned
  SpotPatch's gates hardened first.

  Args:
    flags_obj: The parsed absl flags.

  Returns:
    The experiment config, the metrics of the last evaluation (empty if
    there was none) and the summary lines of a written patch file.
  """
  params = config_parsing.parse_configuration(flags_obj)
  model, metrics = training.run(params, flags_obj.model_dir, flags_obj.mode,
                                progress_lines=flags_obj.progress_lines)
  patch_lines = []
  if ('train' in flags_obj.mode and
      isinstance(params.task, retinanet_cfg.PatchedRetinaNetTask)):
    path = patch_outputs.default_path(flags_obj.model_dir)
    size = patch_outputs.write_patch(model, params.task.patch, path)
    patch_lines = [f'Patch:            {path} ({size.parameters:,} '
                   f'parameters, {size.fraction:.2%} of the detector, '
                   f'{tf.io.gfile.stat(path).length:,} bytes)']
  return params, metrics, patch_lines


def _summary(flags_obj, params: cfg.ExperimentConfig,
             metrics: dict[str, float], patch_lines: list[str]) -> list[str]:
  """The closing lines: results, where they are, and how to export them."""
  model_dir = flags_obj.model_dir
  lines = list(patch_lines)
  if 'accuracy' in metrics:
    data = params.task.validation_data
    lines.append(f'Eval top-1:       {metrics["accuracy"]:.2%} (accuracy on '
                 f'{data.input_path or data.tfds_name})')
  if metrics:
    lines.append('Final evaluation: ' + ', '.join(
        f'{k}={v:.4f}' for k, v in sorted(metrics.items())))
  export = ['python', 'export.py', f'--experiment={flags_obj.experiment}',
            *(f'--config_file={f}' for f in flags_obj.config_file or [])]
  if flags_obj.params_override:
    export.append(f'--params_override={flags_obj.params_override}')
  export += [f'--checkpoint_path={model_dir}',
             f'--export_dir={model_dir}/export']
  if patch_lines:
    export.append(f'--patch={patch_outputs.default_path(model_dir)}')
  return lines + [
      f'Checkpoint:       {tf.train.latest_checkpoint(model_dir) or model_dir}',
      f'TensorBoard logs: {model_dir} (tensorboard --logdir {model_dir})',
      f'Export:           {shlex.join(export)}']


def main(_):
  try:
    params, metrics, patch_lines = run(FLAGS)
  except tfrecord_check.CorruptRecordFileError as e:
    sys.exit(f'train.py: bad input data: {e.message}')
  except divergence.TrainingDivergedError as e:
    sys.exit(f'train.py: {e}')
  except tf.errors.OpError as e:
    line = _data_error(e)
    if line is None:
      raise
    sys.exit(f'train.py: bad input data: {line}')
  print('\n'.join(_summary(FLAGS, params, metrics, patch_lines)))


if __name__ == '__main__':
  logging_setup.setup()
  tfm_flags.define_flags()
  flags.mark_flags_as_required(['experiment', 'mode', 'model_dir'])
  app.run(main)
