"""Masked-autoencoder (MAE) pretraining configs and experiments.

The data config is Model Garden's classification `DataConfig` (labels are
read and dropped); the model and task configs are ours, since the wheel has
no MAE project. Recipe sources (He et al. 2022, "Masked Autoencoders Are
Scalable Vision Learners", and its code facebookresearch/mae):
`PRETRAIN.md` (effective batch 4096, blr 1.5e-4 with lr = blr x batch / 256,
weight decay 0.05, 40 warm-up epochs, 800 epochs, mask ratio 0.75,
`--norm_pix_loss`), `main_pretrain.py` (AdamW betas (0.9, 0.95), no decay
on 1-D weights, RandomResizedCrop(scale=(0.2, 1.0), bicubic) + horizontal
flip) and `util/lr_sched.py` (linear warm-up, then half-cycle cosine to 0).
"""
import dataclasses
from typing import List

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import hyperparams
from official.modeling import optimization
from official.vision.configs import image_classification as mg_ic

IMAGENET_TRAIN_EXAMPLES = 1_281_167
IMAGENET_VAL_EXAMPLES = 50_000
# Decay is not applied to 1-D weights (biases, LayerNorm), as in the
# reference's `param_groups_weight_decay`. Variable names of
# `univision.modeling.mae`: every LayerNorm's name contains 'layer_norm'.
NO_WEIGHT_DECAY = ['layer_norm', 'bias']


@dataclasses.dataclass
class MAEModel(hyperparams.Config):
  """A ViT MAE (`univision.modeling.mae.MaskedAutoencoder`).

  Attributes:
    size: ViT size, a key of `mae.VIT_SIZES` (tiny, base, large, huge).
    input_size: [height, width, 3], multiples of the size's patch.
    mask_ratio: Fraction of patches removed (PRETRAIN.md: 0.75).
    decoder_dim: Decoder width (models_mae.py `*_dec512d8b`: 512).
    decoder_depth: Decoder blocks (models_mae.py: 8).
    decoder_heads: Decoder attention heads (models_mae.py: 16).
  """
  size: str = 'base'
  input_size: List[int] = dataclasses.field(
      default_factory=lambda: [224, 224, 3])
  mask_ratio: float = 0.75
  decoder_dim: int = 512
  decoder_depth: int = 8
  decoder_heads: int = 16


@dataclasses.dataclass
class MAETask(cfg.TaskConfig):
  """MAE pretraining on classification TFRecords (images only).

  Attributes:
    norm_pix_loss: If True, targets are per-patch normalised pixels
      (PRETRAIN.md's `--norm_pix_loss`).
  """
  model: MAEModel = dataclasses.field(default_factory=MAEModel)
  train_data: mg_ic.DataConfig = dataclasses.field(
      default_factory=mg_ic.DataConfig)
  validation_data: mg_ic.DataConfig = dataclasses.field(
      default_factory=mg_ic.DataConfig)
  norm_pix_loss: bool = True


def mae_optimizer(learning_rate: float, steps: int,
                  warmup_steps: int) -> optimization.OptimizationConfig:
  """AdamW (0.9, 0.95), wd 0.05, warm-up then half-cycle cosine to 0.

  Betas from main_pretrain.py, weight decay from PRETRAIN.md. The cosine
  runs over the steps after the warm-up (`offset`), as `util/lr_sched.py`
  does. main_pretrain.py does not clip gradients and uses torch's AdamW
  epsilon (1e-8).
  """
  return optimization.OptimizationConfig({
      'optimizer': {
          'type': 'adamw',
          'adamw': {
              'beta_1': 0.9, 'beta_2': 0.95, 'epsilon': 1e-8,
              'weight_decay_rate': 0.05,
              'exclude_from_weight_decay': NO_WEIGHT_DECAY,
              'gradient_clip_norm': 0.0,
          },
      },
      'learning_rate': {
          'type': 'cosine',
          'cosine': {'initial_learning_rate': learning_rate,
                     'decay_steps': steps - warmup_steps,
                     'offset': warmup_steps},
      },
      'warmup': {'type': 'linear',
                 'linear': {'warmup_steps': warmup_steps,
                            'warmup_learning_rate': 0.0}},
  })


def scaled_learning_rate(base_learning_rate: float, batch_size: int) -> float:
  """The linear scaling rule lr = blr x batch / 256 (PRETRAIN.md)."""
  return base_learning_rate * batch_size / 256


_RESTRICTIONS = [
    'task.train_data.is_training != None',
    'task.validation_data.is_training != None',
]


@exp_factory.register_config_factory('vit_mae_imagenet')
def vit_mae_imagenet() -> cfg.ExperimentConfig:
  """ViT-B MAE on ImageNet-1k TFRecords (Model Garden's converter), TPU."""
  batch = 4096  # PRETRAIN.md: effective batch 64 x 8 nodes x 8 GPUs.
  epoch = IMAGENET_TRAIN_EXAMPLES // batch  # 312 steps.
  epochs = 800  # PRETRAIN.md; the paper's longest schedule is 1600.
  steps = epochs * epoch  # 249,600, as r-mae's MAE config.
  warmup = 40 * epoch  # PRETRAIN.md: --warmup_epochs 40.
  return cfg.ExperimentConfig(
      runtime=cfg.RuntimeConfig(distribution_strategy='tpu',
                                mixed_precision_dtype='bfloat16'),
      task=MAETask(
          model=MAEModel(size='base', input_size=[224, 224, 3]),
          norm_pix_loss=True,  # PRETRAIN.md.
          train_data=mg_ic.DataConfig(
              is_training=True, global_batch_size=batch, dtype='bfloat16',
              # main_pretrain.py: RandomResizedCrop(224, scale=(0.2, 1.0),
              # bicubic) + RandomHorizontalFlip; no other augmentation.
              aug_crop=True, crop_area_range=(0.2, 1.0),
              aug_rand_hflip=True, tf_resize_method='bicubic'),
          validation_data=mg_ic.DataConfig(
              is_training=False, global_batch_size=batch, dtype='bfloat16',
              aug_rand_hflip=False, tf_resize_method='bicubic',
              drop_remainder=False)),
      trainer=cfg.TrainerConfig(
          train_steps=steps,
          validation_steps=-(-IMAGENET_VAL_EXAMPLES // batch),
          validation_interval=10 * epoch, steps_per_loop=epoch,
          summary_interval=epoch, checkpoint_interval=epoch,
          # PRETRAIN.md: --blr 1.5e-4, so lr = 1.5e-4 x 4096 / 256 = 2.4e-3.
          optimizer_config=mae_optimizer(scaled_learning_rate(1.5e-4, batch),
                                         steps, warmup)),
      restrictions=_RESTRICTIONS)


@exp_factory.register_config_factory('vit_mae_fashion_mnist')
def vit_mae_fashion_mnist() -> cfg.ExperimentConfig:
  """A tiny ViT MAE on the Fashion-MNIST TFRecords of `univision.data`.

  Sized for a 2-core CPU: 32x32 inputs (8x8 patches of 4x4 px), a
  64-wide decoder of 2 blocks, float32. The learning rate is ours: the
  scaling rule at batch 64 (3.75e-5) is too small for a few hundred steps.
  """
  steps = 400
  return cfg.ExperimentConfig(
      runtime=cfg.RuntimeConfig(distribution_strategy='one_device',
                                num_gpus=0, mixed_precision_dtype='float32'),
      task=MAETask(
          model=MAEModel(size='tiny', input_size=[32, 32, 3],
                         decoder_dim=64, decoder_depth=2, decoder_heads=4),
          norm_pix_loss=True,
          train_data=mg_ic.DataConfig(
              input_path='data/fashion_mnist/train-*', is_training=True,
              global_batch_size=64, decode_jpeg_only=False,
              crop_area_range=(0.2, 1.0), tf_resize_method='bicubic'),
          validation_data=mg_ic.DataConfig(
              input_path='data/fashion_mnist/test-*', is_training=False,
              global_batch_size=200, decode_jpeg_only=False,
              aug_rand_hflip=False, center_crop_fraction=1.0,
              tf_resize_method='bicubic', drop_remainder=False)),
      trainer=cfg.TrainerConfig(
          train_steps=steps, validation_steps=10, validation_interval=steps,
          steps_per_loop=50, summary_interval=50, checkpoint_interval=200,
          optimizer_config=mae_optimizer(1e-3, steps, 40)),
      restrictions=_RESTRICTIONS)
