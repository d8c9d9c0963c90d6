"""Masked-autoencoder (MAE) pretraining configs and experiments.

Three models share the task: the ViT MAE (`model.type='vit'`), the Hiera
MAE (`model.type='hiera'`, mask-unit masking; Ryali et al. 2023) and R-MAE
(`model.type='rmae'`: the ViT MAE plus a region branch on Felzenszwalb-
Huttenlocher regions; Nguyen et al., ICLR 2024).

The data config is Model Garden's classification `DataConfig` (labels are
read and dropped); the model and task configs are ours, since the wheel has
no MAE project. Recipe sources (He et al. 2022, "Masked Autoencoders Are
Scalable Vision Learners", and its code facebookresearch/mae):
`PRETRAIN.md` (effective batch 4096, blr 1.5e-4 with lr = blr x batch / 256,
weight decay 0.05, 40 warm-up epochs, 800 epochs, mask ratio 0.75,
`--norm_pix_loss`), `main_pretrain.py` (AdamW betas (0.9, 0.95), no decay
on 1-D weights, RandomResizedCrop(scale=(0.2, 1.0), bicubic) + horizontal
flip) and `util/lr_sched.py` (linear warm-up, then half-cycle cosine to 0).
Hiera-specific sources: facebookresearch/hiera `hiera_mae.py` (mask ratio
0.6, q_pool 2, 512/8/16 decoder, norm-pix targets); the paper's training
settings could not be read here, so the Hiera recipe marks what it assumes.
R-MAE sources: facebookresearch/r-mae `pretrain/config/RMAE/base_rmae.yaml`
and `ImageNet/rmae_fh_800eps.yaml` (region branch sizes, loss weights,
optimizer and schedule: MAE's) and `tools/preprocess/
create_fh_mask_for_imnet.py` (FH scale and min size).
"""
import dataclasses
from typing import Any, List

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import hyperparams
from official.modeling import optimization
from official.vision.configs import image_classification as mg_ic

from univision.configs import experiment_parts as parts

IMAGENET_TRAIN_EXAMPLES = 1_281_167
IMAGENET_VAL_EXAMPLES = 50_000
# Decay is not applied to 1-D weights (biases, LayerNorm), as in the
# reference's `param_groups_weight_decay`. Variable names of
# `univision.modeling.mae` and `hiera_mae`: every LayerNorm's variable name
# contains 'layer_norm' (Keras' default 'layer_normalization' included).
NO_WEIGHT_DECAY = ['layer_norm', 'bias']
MODEL_TYPES = ('vit', 'hiera', 'rmae')
REGION_SOURCES = ('tfrecord', 'felzenszwalb')


@dataclasses.dataclass
class RegionBranch(hyperparams.Config):
  """R-MAE's region branch (`model.type='rmae'` only); see `modeling.rmae`.

  Defaults are r-mae's `base_rmae.yaml`, except `num_regions`, which is 0
  there (plain MAE; it must be overridden) and 8 here, the paper's default
  as recalled (not in any released config: assumed).

  Attributes:
    num_regions: k, region maps per image.
    encoder_dim: Region encoder width (`region_enc_dim`: 128).
    encoder_depth: Region encoder blocks (`region_enc_depth`: 1).
    encoder_heads: Region encoder heads (`region_enc_num_heads`: 8).
    decoder_dim: Region memory and decoder width (`region_dec_dim`: 128).
    decoder_heads: Their heads (`region_dec_num_heads`: 8).
    cross_depth: Region memory blocks (`region_cross_layer`: 8).
  """
  num_regions: int = 8
  encoder_dim: int = 128
  encoder_depth: int = 1
  encoder_heads: int = 8
  decoder_dim: int = 128
  decoder_heads: int = 8
  cross_depth: int = 8


@dataclasses.dataclass
class RegionSource(hyperparams.Config):
  """Where R-MAE's region label maps come from.

  Attributes:
    type: 'tfrecord' (default: written offline by `univision.data.
      fh_regions`, read from `field_key`) or 'felzenszwalb' (computed in the
      input pipeline with the settings below).
    field_key: The record key of the 16-bit PNG label map.
    scale: FH scale (r-mae ImageNet: 1000).
    sigma: FH smoothing (skimage's default 0.8, kept by r-mae).
    min_size: FH smallest segment in pixels (r-mae ImageNet: 1000).
    For 'tfrecord' the three FH settings are not read: they record what
    the records must be written with (`fh_regions` flags of the same names).
  """
  type: str = 'tfrecord'
  field_key: str = 'image/region/encoded'
  scale: float = 1000.0
  sigma: float = 0.8
  min_size: int = 1000


@dataclasses.dataclass
class MAEModel(hyperparams.Config):
  """An MAE model: ViT (`mae.MaskedAutoencoder`), Hiera (`hiera_mae`), R-MAE.

  Attributes:
    type: 'vit', 'hiera' or 'rmae' (ViT MAE plus a region branch).
    size: For 'vit' and 'rmae' a key of `mae.VIT_SIZES` (tiny, base, large,
      huge); for 'hiera' one of tiny, small, base, base_plus, large, huge
      (the Hiera model id is `hiera_<size>`).
    input_size: [height, width, 3]; H and W multiples of the ViT size's
      patch, or of Hiera's 32-px mask unit.
    mask_ratio: Fraction of patches (ViT; PRETRAIN.md: 0.75) or mask units
      (Hiera; hiera_mae.py: 0.6) removed.
    decoder_dim: Decoder width (models_mae.py `*_dec512d8b`: 512).
    decoder_depth: Decoder blocks (models_mae.py: 8).
    decoder_heads: Decoder attention heads (models_mae.py: 16).
    region: The region branch ('rmae' only).
  """
  type: str = 'vit'
  size: str = 'base'
  input_size: List[int] = dataclasses.field(
      default_factory=lambda: [224, 224, 3])
  mask_ratio: float = 0.75
  decoder_dim: int = 512
  decoder_depth: int = 8
  decoder_heads: int = 16
  region: RegionBranch = dataclasses.field(default_factory=RegionBranch)


@dataclasses.dataclass
class MAETask(cfg.TaskConfig):
  """MAE pretraining on classification TFRecords (images only).

  Attributes:
    norm_pix_loss: If True, targets are per-patch normalised pixels
      (PRETRAIN.md's `--norm_pix_loss`).
    region_loss_weight: R-MAE's total loss is the MAE loss plus this times
      the region loss (r-mae `region_loss_weight`: 1.0).
    regions: Where R-MAE's region maps come from.
  """
  model: MAEModel = dataclasses.field(default_factory=MAEModel)
  train_data: mg_ic.DataConfig = dataclasses.field(
      default_factory=mg_ic.DataConfig)
  validation_data: mg_ic.DataConfig = dataclasses.field(
      default_factory=mg_ic.DataConfig)
  norm_pix_loss: bool = True
  region_loss_weight: float = 1.0
  regions: RegionSource = dataclasses.field(default_factory=RegionSource)


def mae_adamw(beta_2: float) -> dict[str, Any]:
  """The AdamW settings of MAE's code, for `adamw_warmup_cosine`.

  Torch's AdamW epsilon (1e-8) and first beta (0.9), weight decay 0.05 (not
  on 1-D weights) and no gradient clipping; `beta_2` is 0.95 for
  pretraining (main_pretrain.py) and torch's 0.999 for fine-tuning.
  """
  return {'beta_1': 0.9, 'beta_2': beta_2, 'epsilon': 1e-8,
          'weight_decay_rate': 0.05,
          'exclude_from_weight_decay': NO_WEIGHT_DECAY,
          'gradient_clip_norm': 0.0}


def mae_optimizer(learning_rate: float, steps: int,
                  warmup_steps: int) -> optimization.OptimizationConfig:
  """AdamW (0.9, 0.95), wd 0.05, warm-up then half-cycle cosine to 0.

  Betas from main_pretrain.py, weight decay from PRETRAIN.md. The cosine
  runs over the steps after the warm-up (`offset`), as `util/lr_sched.py`
  does. main_pretrain.py does not clip gradients and uses torch's AdamW
  epsilon (1e-8).
  """
  return parts.adamw_warmup_cosine(learning_rate, steps, warmup_steps,
                                   decay_after_warmup=True,
                                   **mae_adamw(beta_2=0.95))


def scaled_learning_rate(base_learning_rate: float, batch_size: int) -> float:
  """The linear scaling rule lr = blr x batch / 256 (PRETRAIN.md)."""
  return base_learning_rate * batch_size / 256


@exp_factory.register_config_factory('vit_mae_imagenet')
def vit_mae_imagenet() -> cfg.ExperimentConfig:
  """ViT-B MAE on ImageNet-1k TFRecords (Model Garden's converter), TPU."""
  batch = 4096  # PRETRAIN.md: effective batch 64 x 8 nodes x 8 GPUs.
  epoch = IMAGENET_TRAIN_EXAMPLES // batch  # 312 steps.
  epochs = 800  # PRETRAIN.md; the paper's longest schedule is 1600.
  steps = epochs * epoch  # 249,600, as r-mae's MAE config.
  warmup = 40 * epoch  # PRETRAIN.md: --warmup_epochs 40.
  return cfg.ExperimentConfig(
      runtime=parts.tpu_runtime(),
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
      restrictions=parts.restrictions())


@exp_factory.register_config_factory('vit_mae_fashion_mnist')
def vit_mae_fashion_mnist() -> cfg.ExperimentConfig:
  """A tiny ViT MAE on the Fashion-MNIST TFRecords of `univision.data`.

  Sized for a 2-core CPU: 32x32 inputs (8x8 patches of 4x4 px), a
  64-wide decoder of 2 blocks, float32. The learning rate is ours: the
  scaling rule at batch 64 (3.75e-5) is too small for a few hundred steps.
  """
  steps = 400
  return cfg.ExperimentConfig(
      runtime=parts.cpu_runtime(),
      task=MAETask(
          model=MAEModel(size='tiny', input_size=[32, 32, 3],
                         decoder_dim=64, decoder_depth=2, decoder_heads=4),
          norm_pix_loss=True,
          **parts.fashion_mnist_data(crop_area_range=(0.2, 1.0),
                                     tf_resize_method='bicubic')),
      trainer=cfg.TrainerConfig(
          train_steps=steps, validation_steps=10, validation_interval=steps,
          steps_per_loop=50, summary_interval=50, checkpoint_interval=200,
          optimizer_config=mae_optimizer(1e-3, steps, 40)),
      restrictions=parts.restrictions())


@exp_factory.register_config_factory('hiera_mae_imagenet')
def hiera_mae_imagenet() -> cfg.ExperimentConfig:
  """Hiera-B MAE on ImageNet-1k TFRecords, TPU.

  Verified in facebookresearch/hiera `hiera_mae.py`: the model (q_pool 2,
  512-wide 8-block 16-head decoder), mask ratio 0.6, norm-pix targets. The
  rest is assumed: MAE's optimizer, augmentation, batch and warm-up (as
  `vit_mae_imagenet`), 1600 epochs and lr 8e-4 as recalled from the Hiera
  paper's appendix (not readable here; its ablations use 400 epochs).
  """
  params = vit_mae_imagenet()
  batch = params.task.train_data.global_batch_size  # 4096, assumed.
  epoch = IMAGENET_TRAIN_EXAMPLES // batch
  steps = 1600 * epoch  # Assumed (paper appendix, unverified).
  params.task.model = MAEModel(type='hiera', size='base',
                               input_size=[224, 224, 3], mask_ratio=0.6)
  params.trainer.train_steps = steps
  params.trainer.optimizer_config = mae_optimizer(
      8e-4, steps, 40 * epoch)  # Both assumed (paper appendix, unverified).
  return params


@exp_factory.register_config_factory('hiera_mae_fashion_mnist')
def hiera_mae_fashion_mnist() -> cfg.ExperimentConfig:
  """Hiera-T MAE on the Fashion-MNIST TFRecords of `univision.data`, CPU.

  96x96 inputs: 3x3 mask units of 32 px, 3 kept at ratio 0.6 (the input
  side must be a multiple of 32, and 64 px would keep 1 of 4 units). A
  128-wide decoder of 2 blocks; otherwise `vit_mae_fashion_mnist`'s
  schedule (our learning rate, as there).
  """
  params = vit_mae_fashion_mnist()
  params.task.model = MAEModel(type='hiera', size='tiny',
                               input_size=[96, 96, 3], mask_ratio=0.6,
                               decoder_dim=128, decoder_depth=2,
                               decoder_heads=4)
  return params


@exp_factory.register_config_factory('vit_rmae_imagenet')
def vit_rmae_imagenet() -> cfg.ExperimentConfig:
  """R-MAE ViT-B/16 on ImageNet-1k TFRecords with FH regions, TPU.

  Verified in r-mae's configs: everything `vit_mae_imagenet` sets (batch
  4096, lr 2.4e-3, AdamW (0.9, 0.95), wd 0.05 not on norms and biases,
  249,600 steps, 12,480 warm-up, RandomResizedCrop (0.2, 1) + flip,
  norm-pix targets), the region branch (`RegionBranch` defaults), loss
  weights 1.0 and FH scale = min size = 1000. Assumed: k = 8 (the released
  config has 0). The data are ImageNet TFRecords passed through
  `univision.data.fh_regions` with its defaults.
  """
  params = vit_mae_imagenet()
  params.task.model.type = 'rmae'
  return params


@exp_factory.register_config_factory('vit_rmae_fashion_mnist')
def vit_rmae_fashion_mnist() -> cfg.ExperimentConfig:
  """A tiny R-MAE on Fashion-MNIST TFRecords with FH regions, CPU.

  `vit_mae_fashion_mnist` plus a 32-wide region branch with 2 memory
  blocks and k = 4. FH at scale 200, min size 30 (ours: about 4% of a
  28x28 image; median 5.5 segments on 200 training images, against 3 at
  scale 1000) - the ImageNet setting's min size 1000 exceeds the image.
  """
  params = vit_mae_fashion_mnist()
  params.task.model.type = 'rmae'
  params.task.model.region = RegionBranch(
      num_regions=4, encoder_dim=32, encoder_depth=1, encoder_heads=4,
      decoder_dim=32, decoder_heads=4, cross_depth=2)
  params.task.regions = RegionSource(scale=200.0, min_size=30)
  params.task.train_data.input_path = 'data/fashion_mnist_regions/train-*'
  params.task.validation_data.input_path = 'data/fashion_mnist_regions/test-*'
  return params
