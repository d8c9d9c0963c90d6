"""Image classification configs and experiments for MobileNetV4.

The task and data configs are Model Garden's; only the model config changes,
so that `backbone.type` can be `mobilenet_v4`. Recipes for real datasets live
in `experiments/image_classification/*.yaml` (each names its experiment in
its first line).
"""
import dataclasses

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import hyperparams
from official.modeling import optimization
from official.vision.configs import common
from official.vision.configs import image_classification as mg_ic
from official.vision.ops import preprocess_ops

from univision.configs import backbones
from univision.configs import experiment_parts as parts


@dataclasses.dataclass
class ImageClassificationModel(mg_ic.ImageClassificationModel):
  """Model Garden's classification model config with univision backbones."""
  backbone: backbones.Backbone = dataclasses.field(
      default_factory=lambda: backbones.Backbone(type='mobilenet_v4'))


@dataclasses.dataclass
class Preprocessing(hyperparams.Config):
  """How pixels are normalized, in training, evaluation and serving.

  Attributes:
    mean_rgb: Per-channel mean of 0-255 pixels (default: ImageNet's, as
      Model Garden).
    stddev_rgb: Per-channel std of 0-255 pixels.
  """
  mean_rgb: tuple[float, ...] = tuple(preprocess_ops.MEAN_RGB)
  stddev_rgb: tuple[float, ...] = tuple(preprocess_ops.STDDEV_RGB)


@dataclasses.dataclass
class ImageClassificationTask(mg_ic.ImageClassificationTask):
  """Model Garden's classification task config with univision models.

  Attributes:
    preprocessing: The image normalization (Model Garden's is fixed).
  """
  model: ImageClassificationModel = dataclasses.field(
      default_factory=ImageClassificationModel)
  preprocessing: Preprocessing = dataclasses.field(
      default_factory=Preprocessing)


def adamw_cosine(learning_rate: float, weight_decay: float, steps: int,
                  warmup_steps: int) -> optimization.OptimizationConfig:
  """AdamW, cosine decay and linear warm-up: the MNv4 optimizer family."""
  return parts.adamw_warmup_cosine(
      learning_rate, steps, warmup_steps, weight_decay_rate=weight_decay,
      exclude_from_weight_decay=['batch_normalization'])


@exp_factory.register_config_factory('mnv4_imagenet')
def mnv4_imagenet() -> cfg.ExperimentConfig:
  """MobileNetV4 on ImageNet-1k TFRecords made by Model Garden's converter.

  Defaults are MNv4-Conv-M's recipe; the YAMLs set each model's recipe.
  """
  steps = 156_000  # 500 epochs of 1,281,167 images at batch 4096.
  return cfg.ExperimentConfig(
      runtime=parts.tpu_runtime(),
      task=ImageClassificationTask(
          model=ImageClassificationModel(
              num_classes=1001, input_size=[256, 256, 3], dropout_rate=0.2,
              backbone=backbones.Backbone(
                  type='mobilenet_v4',
                  mobilenet_v4=backbones.MobileNetV4(
                      model_id='MobileNetV4ConvMedium')),
              norm_activation=common.NormActivation(norm_momentum=0.997)),
          losses=mg_ic.Losses(label_smoothing=0.1),
          train_data=mg_ic.DataConfig(is_training=True,
                                      global_batch_size=4096,
                                      dtype='bfloat16'),
          validation_data=mg_ic.DataConfig(is_training=False,
                                           global_batch_size=4096,
                                           dtype='bfloat16',
                                           drop_remainder=False)),
      trainer=cfg.TrainerConfig(
          train_steps=steps, validation_steps=13, validation_interval=312,
          steps_per_loop=312, summary_interval=312, checkpoint_interval=312,
          optimizer_config=adamw_cosine(0.004, 0.1, steps, 1560)),
      restrictions=parts.restrictions())


@exp_factory.register_config_factory('mnv4_fashion_mnist')
def mnv4_fashion_mnist() -> cfg.ExperimentConfig:
  """MobileNetV4 on the Fashion-MNIST TFRecords of `univision.data`.

  Sized for a CPU: 64x64 inputs, float32, one device.
  """
  steps = 5000
  return cfg.ExperimentConfig(
      runtime=parts.cpu_runtime(),
      task=ImageClassificationTask(
          model=ImageClassificationModel(
              num_classes=10, input_size=[64, 64, 3], dropout_rate=0.1,
              backbone=backbones.Backbone(type='mobilenet_v4')),
          losses=mg_ic.Losses(label_smoothing=0.1),
          **parts.fashion_mnist_data()),
      trainer=cfg.TrainerConfig(
          train_steps=steps, validation_steps=50, validation_interval=steps,
          steps_per_loop=100, summary_interval=100, checkpoint_interval=1000,
          optimizer_config=adamw_cosine(0.002, 0.01, steps, 200)),
      restrictions=parts.restrictions())
