"""Quantization-aware fine-tuning of a MobileNetV4 classifier.

The task builds the float classifier exactly as the float task does, loads
`task.quantization.pretrained_original_checkpoint` into it, and returns its
fake-quantized flat twin (`univision.quantization.qat`), its quantization
ranges optionally calibrated on training batches. Everything else -
inputs, losses, metrics, the Orbit trainer and its checkpoints (of the QAT
model) - is the float task's.
"""
from absl import logging
import tensorflow as tf, tf_keras
from official.core import task_factory

from univision.configs import image_classification_qat as qat_cfg
from univision.core import checkpoints
from univision.quantization import calibration
from univision.quantization import flat_graph
from univision.quantization import qat
from univision.tasks import image_classification

_CHECKPOINT_KEY = 'task.quantization.pretrained_original_checkpoint'


def restore_float_weights(model: tf_keras.Model, checkpoint: str) -> str:
  """Loads a float training checkpoint into `model`; returns its prefix.

  Raises:
    FileNotFoundError: naming the config key when nothing is there.
    ValueError: when the checkpoint does not hold this model's weights.
  """
  path = checkpoints.resolve_checkpoint(checkpoint, _CHECKPOINT_KEY)
  try:
    status = tf.train.Checkpoint(model=model).read(path)
    status.assert_existing_objects_matched().expect_partial()
  except (AssertionError, ValueError) as e:
    raise ValueError(f'{_CHECKPOINT_KEY}={checkpoint}: the checkpoint does '
                     f'not match the float model of task.model ({e}).') from e
  return path


@task_factory.register_task_cls(qat_cfg.ImageClassificationQATTask)
class ImageClassificationQATTask(image_classification.ImageClassificationTask):
  """Trains the fake-quantized twin of a float MobileNetV4 classifier."""

  def build_model(self) -> tf_keras.Model:
    quantization = self.task_config.quantization
    op_set = flat_graph.check_op_set(quantization.op_set,
                                    'task.quantization.op_set')
    model = super().build_model()
    if quantization.pretrained_original_checkpoint:
      path = restore_float_weights(
          model, quantization.pretrained_original_checkpoint)
      logging.info('QAT starts from float checkpoint %s.', path)
    else:
      logging.warning('%s is unset: QAT starts from random weights.',
                      _CHECKPOINT_KEY)
    qat_model, self._flat_model = qat.quantize_classifier_and_flat(
        model, tuple(self.task_config.model.input_size[:2]), op_set)
    return qat_model

  def initialize(self, model: tf_keras.Model):
    """Loads `init_checkpoint` if set, then calibrates the ranges if asked.

    The trainer calls this only when the model folder has no checkpoint, so
    a resumed run keeps its trained ranges.
    """
    super().initialize(model)
    steps = self.task_config.quantization.calibration_steps
    if steps:
      dataset = self.build_inputs(self.task_config.train_data)
      count = calibration.calibrate(
          model, self._flat_model,
          (images for images, _ in dataset.take(steps)))
      logging.info('Quantization ranges calibrated on %d images.', count)
