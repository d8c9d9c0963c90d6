"""Hiera classification: fine-tuning a Hiera MAE encoder (or from scratch).

A Hiera MAE checkpoint (`hiera_mae_*`, `univision.configs.mae`) saves its
encoder as `backbone`, so a classifier whose backbone is `hiera` (same
`model_id` and mask-unit size) loads it with `task.init_checkpoint` +
`init_checkpoint_modules: backbone`. Pretraining uses `q_pool=2`, the
classifier `q_pool=3`, as in facebookresearch/hiera; query pooling has no
weights, so the checkpoint fits both.

Recipe sources: MAE's `FINETUNE.md` / `main_finetune.py` (AdamW with torch's
betas (0.9, 0.999), weight decay 0.05 not on 1-D weights, 5 warm-up epochs
then cosine, label smoothing 0.1, batch 1024 with lr = blr x batch / 256);
the Hiera paper says it follows MAE's fine-tuning. Not implemented: layer-
wise lr decay (Model Garden's optimizer factory has none) and random
erasing. Values not read from a source are marked as assumed where set.
"""
from official.core import config_definitions as cfg
from official.core import exp_factory
from official.vision.configs import common
from official.vision.configs import image_classification as mg_ic

from univision.configs import backbones
from univision.configs import experiment_parts as parts
from univision.configs import image_classification as ic_cfg
from univision.configs import mae as mae_cfg
from univision.configs import maws as maws_cfg

@exp_factory.register_config_factory('hiera_imagenet')
def hiera_imagenet() -> cfg.ExperimentConfig:
  """Hiera-B fine-tuned on ImageNet-1k from `hiera_mae_imagenet`, TPU.

  Verified (MAE ViT-B fine-tuning): 100 epochs, batch 1024, blr 5e-4
  (lr 2e-3), 5 warm-up epochs, wd 0.05, drop path 0.1, RandAugment m9
  (std 0.5), mixup 0.8 / cutmix 1.0 with label smoothing 0.1. Assumed: that
  Hiera-B uses ViT-B's values unchanged. Missing: layer decay 0.65 and
  random erasing 0.25.
  """
  batch = 1024
  epoch = mae_cfg.IMAGENET_TRAIN_EXAMPLES // batch
  steps = 100 * epoch
  return cfg.ExperimentConfig(
      runtime=parts.tpu_runtime(),
      task=ic_cfg.ImageClassificationTask(
          model=ic_cfg.ImageClassificationModel(
              num_classes=1001, input_size=[224, 224, 3], dropout_rate=0.0,
              backbone=backbones.Backbone(
                  type='hiera', hiera=backbones.Hiera(
                      model_id='hiera_base', drop_path_rate=0.1))),
          losses=mg_ic.Losses(label_smoothing=0.1),
          init_checkpoint_modules='backbone',
          train_data=mg_ic.DataConfig(
              is_training=True, global_batch_size=batch, dtype='bfloat16',
              tf_resize_method='bicubic',
              aug_type=common.Augmentation(
                  type='randaug', randaug=common.RandAugment(
                      num_layers=2, magnitude=9, magnitude_std=0.5)),
              mixup_and_cutmix=common.MixupAndCutmix(
                  mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1)),
          validation_data=mg_ic.DataConfig(
              is_training=False, global_batch_size=batch, dtype='bfloat16',
              tf_resize_method='bicubic', drop_remainder=False)),
      trainer=cfg.TrainerConfig(
          train_steps=steps, validation_steps=49, validation_interval=epoch,
          steps_per_loop=epoch, summary_interval=epoch,
          checkpoint_interval=epoch,
          optimizer_config=maws_cfg.vit_finetune_optimizer(
              5e-4 * batch / 256, steps, 5 * epoch)),
      restrictions=parts.restrictions())


@exp_factory.register_config_factory('hiera_fashion_mnist')
def hiera_fashion_mnist() -> cfg.ExperimentConfig:
  """Hiera-T on Fashion-MNIST at 96x96 (the MAE recipe's size), CPU.

  `init_checkpoint` empty trains from scratch; the YAML points it at the
  `hiera_mae_fashion_mnist` run. Schedule and learning rate are ours.
  """
  return maws_cfg.finetune_cpu_experiment(
      ic_cfg.ImageClassificationTask(
          model=ic_cfg.ImageClassificationModel(
              num_classes=10, input_size=[96, 96, 3], dropout_rate=0.0,
              backbone=backbones.Backbone(
                  type='hiera', hiera=backbones.Hiera(model_id='hiera_tiny'))),
          losses=mg_ic.Losses(label_smoothing=0.1),
          init_checkpoint_modules='backbone',
          **parts.fashion_mnist_data(
              tf_resize_method='bicubic',
              train_files='train-00000-of-00008.tfrecord')),
      steps=300, learning_rate=1e-3)
