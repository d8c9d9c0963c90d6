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
step and the last good checkpoint, and the run ends by printing where its
checkpoints, TensorBoard logs and final metrics are.
"""
import sys

from absl import app
from absl import flags

import univision  # pylint: disable=unused-import  (sets the Keras mode)
import tensorflow as tf, tf_keras
from official.common import flags as tfm_flags

from univision import registry_imports  # pylint: disable=unused-import
from univision.core import config_parsing
from univision.core import divergence
from univision.core import tfrecord_check
from univision.core import training

FLAGS = flags.FLAGS
_DATA_ERROR_MARK = 'Corrupt or truncated image record'


def _data_error(error: tf.errors.OpError) -> str | None:
  """The line of an input-pipeline error naming the bad record, if any."""
  for line in error.message.splitlines():
    if _DATA_ERROR_MARK in line:
      # The assertion prints its message as a bytes literal inside [...].
      return line[line.index(_DATA_ERROR_MARK):].strip().rstrip(']\'"')
  return None


def run(flags_obj) -> dict[str, float]:
  """Parses the experiment from flags, trains and/or evaluates.

  Args:
    flags_obj: The parsed absl flags.

  Returns:
    The metrics of the last evaluation (empty if there was none).
  """
  params = config_parsing.parse_configuration(flags_obj)
  _, metrics = training.run(params, flags_obj.model_dir, flags_obj.mode)
  return metrics


def main(_):
  try:
    metrics = run(FLAGS)
  except tfrecord_check.CorruptRecordFileError as e:
    sys.exit(f'train.py: bad input data: {e.message}')
  except divergence.TrainingDivergedError as e:
    sys.exit(f'train.py: {e}')
  except tf.errors.OpError as e:
    line = _data_error(e)
    if line is None:
      raise
    sys.exit(f'train.py: bad input data: {line}')
  print(f'Checkpoints:      {FLAGS.model_dir}')
  print(f'TensorBoard logs: {FLAGS.model_dir} '
        f'(tensorboard --logdir {FLAGS.model_dir})')
  if metrics:
    print('Final evaluation: ' + ', '.join(
        f'{k}={v:.4f}' for k, v in sorted(metrics.items())))


if __name__ == '__main__':
  tfm_flags.define_flags()
  flags.mark_flags_as_required(['experiment', 'mode', 'model_dir'])
  app.run(main)
