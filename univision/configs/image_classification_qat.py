"""Quantization-aware training (QAT) configs for MobileNetV4 classifiers.

A QAT experiment is a classification experiment plus `task.quantization`:
the float checkpoint to start from and the op set to target. Training then
fine-tunes the fake-quantized model (see `univision.quantization.qat`), and
`export.py --quant_type=qat` turns its checkpoint into an int8 TFLite model.
"""
import dataclasses

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import hyperparams

from univision.configs import image_classification as ic


@dataclasses.dataclass
class Quantization(hyperparams.Config):
  """What to quantize from and for.

  Attributes:
    pretrained_original_checkpoint: The float model's checkpoint (or a
      training folder: its latest checkpoint) the QAT model starts from.
    op_set: `'edgetpu'` (only ops on Coral's Edge TPU table; the hybrids'
      attention as MUL + SUM, GELU as x * sigmoid(1.702 x)) or `'tflite'`
      (TFLite's int8 FULLY_CONNECTED for the attention products and GELU,
      exact).
    calibration_steps: Training batches that set the quantization ranges
      before the first step (`univision.quantization.calibration`); 0 keeps
      tfmot's [-6, 6] start. Runs eagerly on one device: leave 0 on TPUs.
  """
  pretrained_original_checkpoint: str | None = None
  op_set: str = 'edgetpu'
  calibration_steps: int = 0


@dataclasses.dataclass
class ImageClassificationQATTask(ic.ImageClassificationTask):
  """A classification task that trains the fake-quantized model."""
  quantization: Quantization = dataclasses.field(default_factory=Quantization)


def _qat(float_experiment: cfg.ExperimentConfig) -> cfg.ExperimentConfig:
  """A float experiment turned into QAT fine-tuning (task swapped)."""
  task = ImageClassificationQATTask(**float_experiment.task.as_dict())
  return cfg.ExperimentConfig(runtime=float_experiment.runtime, task=task,
                              trainer=float_experiment.trainer,
                              restrictions=float_experiment.restrictions)


@exp_factory.register_config_factory('mnv4_imagenet_qat')
def mnv4_imagenet_qat() -> cfg.ExperimentConfig:
  """QAT fine-tuning of an ImageNet MobileNetV4 (the YAMLs set the recipe)."""
  return _qat(ic.mnv4_imagenet())


@exp_factory.register_config_factory('mnv4_fashion_mnist_qat')
def mnv4_fashion_mnist_qat() -> cfg.ExperimentConfig:
  """QAT fine-tuning of the Fashion-MNIST demo model (the YAML sets it)."""
  return _qat(ic.mnv4_fashion_mnist())
