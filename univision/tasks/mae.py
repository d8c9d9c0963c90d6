"""The MAE pretraining task: reconstruct removed patches of unlabeled images.

One task, three models (`task.model.type`): the ViT MAE (`vit`), the Hiera
MAE (`hiera`, whole 32-px mask units removed, 16-px target patches) and
R-MAE (`rmae`: the ViT MAE plus a region branch; inputs are dicts of images
and k region maps from `univision.dataloaders.rmae_input`, and the loss is
the MAE loss plus `region_loss_weight` times the region BCE; both parts are
also reported as the metrics `mae_loss` and `region_loss`).

Model Garden's wheel has no MAE task, so this one is ours, on Model Garden's
`base_task.Task`, whose generic train and validation steps are used as they
are: the input pipeline yields images only, so the step hands the images to
the loss as its `labels`. Inputs are classification TFRecords read by
`univision.dataloaders.classification_input.Decoder` (which names corrupt
records) and Model Garden's classification `Parser` (random resized crop,
flip, ImageNet mean/std); the class labels are dropped after batching.

Validation masks with a fixed seed, so that validation losses of different
checkpoints are computed on the same patches.

`init_checkpoint` loads the model's `checkpoint_items`, i.e. the encoder
(`backbone`: the ViT encoder or the Hiera backbone): that continues
pretraining from a released encoder; the same item lets a classifier start
from an MAE checkpoint.
"""
from typing import Any, Optional

import tensorflow as tf, tf_keras
from official.common import dataset_fn
from official.core import base_task
from official.core import task_factory
from official.vision.configs import image_classification as mg_ic
from official.vision.dataloaders import classification_input
from official.vision.dataloaders import input_reader_factory

from univision.configs import mae as mae_cfg
from univision.data import fh_regions
from univision.dataloaders import classification_input as uv_input
from univision.dataloaders import data_keys
from univision.dataloaders import rmae_input
from univision.modeling import hiera_mae
from univision.modeling import mae
from univision.modeling import mae_ops
from univision.modeling import rmae
from univision.modeling.backbones import hiera
from univision.modeling.backbones import hiera_specs

VALIDATION_MASK_SEED = (1234, 5678)


def _check_mask_ratio(config: mae_cfg.MAEModel) -> None:
  if not 0.0 <= config.mask_ratio < 1.0:
    raise ValueError(f'task.model.mask_ratio={config.mask_ratio} must be in '
                     '[0, 1).')


def _build_hiera(config: mae_cfg.MAEModel) -> hiera_mae.HieraMaskedAutoencoder:
  """A `HieraMaskedAutoencoder` for `config`; errors name the config key."""
  model_id = f'hiera_{config.size}'
  if model_id not in hiera_specs.MODEL_SPECS:
    raise ValueError(
        f'task.model.size={config.size!r} is not a Hiera size; known: '
        f'{sorted(m.removeprefix("hiera_") for m in hiera_specs.MODEL_SPECS)}.')
  height, width, channels = config.input_size
  try:
    hiera.check_input_size(height, width)
  except ValueError as error:
    raise ValueError(f'task.model.input_size={list(config.input_size)}: '
                     f'{error}') from error
  if channels != 3:
    raise ValueError(f'task.model.input_size={list(config.input_size)} must '
                     'have 3 channels.')
  _check_mask_ratio(config)
  units = (height // hiera_mae.MASK_UNIT_PIXELS) * (
      width // hiera_mae.MASK_UNIT_PIXELS)
  if mae_ops.num_kept(units, config.mask_ratio) < 1:
    raise ValueError(f'task.model.mask_ratio={config.mask_ratio} keeps none '
                     f'of the {units} mask units of a {height}x{width} image.')
  return hiera_mae.HieraMaskedAutoencoder(
      (height, width), model_id, config.mask_ratio,
      decoder_dim=config.decoder_dim, decoder_depth=config.decoder_depth,
      decoder_heads=config.decoder_heads)


def _check_vit(config: mae_cfg.MAEModel) -> None:
  """Checks a ViT config (size, input size, mask ratio) by config key."""
  if config.size not in mae.VIT_SIZES:
    raise ValueError(f'task.model.size={config.size!r} is unknown; known: '
                     f'{sorted(mae.VIT_SIZES)}.')
  patch = mae.VIT_SIZES[config.size].patch_size
  height, width, channels = config.input_size
  if height % patch or width % patch or channels != 3:
    raise ValueError(f'task.model.input_size={list(config.input_size)} must be '
                     f'[H, W, 3] with H and W multiples of {patch} (the '
                     f'patch of size {config.size!r}).')
  _check_mask_ratio(config)


def _build_vit(config: mae_cfg.MAEModel) -> mae.MaskedAutoencoder:
  """A `MaskedAutoencoder` for `config`; errors name the config key."""
  _check_vit(config)
  return mae.MaskedAutoencoder(
      config.input_size[:2], config.size, config.mask_ratio, config.decoder_dim,
      config.decoder_depth, config.decoder_heads)


def _build_rmae(config: mae_cfg.MAEModel) -> rmae.RegionMaskedAutoencoder:
  """A `RegionMaskedAutoencoder` for `config`; errors name the config key."""
  _check_vit(config)
  region = config.region
  if region.num_regions < 1:
    raise ValueError(f'task.model.region.num_regions={region.num_regions} '
                     'must be >= 1.')
  return rmae.RegionMaskedAutoencoder(
      config.input_size[:2], config.size, config.mask_ratio,
      config.decoder_dim, config.decoder_depth, config.decoder_heads,
      num_regions=region.num_regions, region_enc_dim=region.encoder_dim,
      region_enc_depth=region.encoder_depth,
      region_enc_heads=region.encoder_heads,
      region_dec_dim=region.decoder_dim,
      region_dec_heads=region.decoder_heads,
      region_cross_depth=region.cross_depth)


def example_inputs(
    config: mae_cfg.MAEModel) -> tf.Tensor | dict[str, tf.Tensor]:
  """Zero inputs of batch 1 in the form the model takes."""
  images = tf.zeros([1, *config.input_size])
  if config.type != 'rmae':
    return images
  return {'images': images,
          'regions': tf.zeros([1, config.region.num_regions,
                               *config.input_size[:2]])}


def build_model(
    config: mae_cfg.MAEModel
) -> mae.MaskedAutoencoder | hiera_mae.HieraMaskedAutoencoder:
  """A built MAE model for `config`; errors name the config key."""
  builders = {'vit': _build_vit, 'hiera': _build_hiera, 'rmae': _build_rmae}
  if config.type not in builders:
    raise ValueError(f'task.model.type={config.type!r} is unknown; known: '
                     f'{list(mae_cfg.MODEL_TYPES)}.')
  model = builders[config.type](config)
  model(example_inputs(config), training=False)
  return model


def target_patches(config: mae_cfg.MAEModel) -> tuple[int, bool]:
  """(patch side, channels first) of the model's prediction targets."""
  if config.type == 'hiera':
    return hiera_mae.pred_stride(), True
  return mae.VIT_SIZES[config.size].patch_size, False


@task_factory.register_task_cls(mae_cfg.MAETask)
class MAETask(base_task.Task):
  """Masked-autoencoder pretraining of a ViT or a Hiera."""

  def build_model(
      self) -> mae.MaskedAutoencoder | hiera_mae.HieraMaskedAutoencoder:
    return build_model(self.task_config.model)

  def build_inputs(
      self,
      params: mg_ic.DataConfig,
      input_context: Optional[tf.distribute.InputContext] = None
  ) -> tf.data.Dataset:
    """Batches of [B, H, W, 3] normalised images (labels dropped).

    For R-MAE, dicts of `images` and `regions` [B, k, H, W] instead.
    """
    if self.task_config.model.type == 'rmae':
      return self._build_rmae_inputs(params, input_context)
    decoder = uv_input.build_decoder(params, params.image_field_key,
                                     params.label_field_key)
    parser = classification_input.Parser(
        output_size=self.task_config.model.input_size[:2],
        num_classes=1,  # Labels are read, then dropped.
        image_field_key=params.image_field_key,
        label_field_key=params.label_field_key,
        decode_jpeg_only=params.decode_jpeg_only,
        aug_rand_hflip=params.aug_rand_hflip,
        aug_crop=params.aug_crop,
        dtype=params.dtype,
        crop_area_range=params.crop_area_range,
        center_crop_fraction=params.center_crop_fraction,
        tf_resize_method=params.tf_resize_method)
    reader = input_reader_factory.input_reader_generator(
        params,
        dataset_fn=dataset_fn.pick_dataset_fn(params.file_type),
        decoder_fn=decoder.decode,
        parser_fn=parser.parse_fn(params.is_training),
        postprocess_fn=lambda images, labels: images)
    return reader.read(input_context=input_context)

  def _build_rmae_inputs(
      self, params: mg_ic.DataConfig,
      input_context: Optional[tf.distribute.InputContext]
  ) -> tf.data.Dataset:
    """R-MAE batches: images and region maps from TFRecords."""
    where = data_keys.checked_input_path(params)
    regions = self.task_config.regions
    if regions.type not in mae_cfg.REGION_SOURCES:
      raise ValueError(f'task.regions.type={regions.type!r} is unknown; '
                       f'known: {list(mae_cfg.REGION_SOURCES)}.')
    online = regions.type == 'felzenszwalb'
    decoder = rmae_input.Decoder(
        where, params.image_field_key, params.label_field_key,
        region_field_key=None if online else regions.field_key)
    parser = rmae_input.Parser(
        where, self.task_config.model.input_size[:2],
        self.task_config.model.region.num_regions, params.image_field_key,
        fh_params=fh_regions.FHParams(regions.scale, regions.sigma,
                                      regions.min_size) if online else None,
        aug_crop=params.aug_crop, crop_area_range=params.crop_area_range,
        aug_rand_hflip=params.aug_rand_hflip,
        tf_resize_method=params.tf_resize_method, dtype=params.dtype)
    reader = input_reader_factory.input_reader_generator(
        params, dataset_fn=dataset_fn.pick_dataset_fn(params.file_type),
        decoder_fn=decoder.decode,
        parser_fn=parser.parse_fn(params.is_training))
    return reader.read(input_context=input_context)

  def _loss_parts(self, labels: tf.Tensor | dict[str, tf.Tensor],
                  model_outputs: dict[str, Any]) -> dict[str, tf.Tensor]:
    """`mae_loss`, plus `region_loss` for R-MAE."""
    config = self.task_config
    is_rmae = config.model.type == 'rmae'
    images = labels['images'] if is_rmae else labels
    patch_size, channels_first = target_patches(config.model)
    parts = {'mae_loss': mae_ops.reconstruction_loss(
        images, model_outputs['predictions'], model_outputs['mask'],
        patch_size, config.norm_pix_loss, channels_first)}
    if is_rmae:
      parts['region_loss'] = rmae.region_loss(
          labels['regions'], model_outputs['region_logits'],
          model_outputs['mask'], patch_size)
    return parts

  def build_losses(self, labels: tf.Tensor | dict[str, tf.Tensor],
                   model_outputs: dict[str, Any],
                   aux_losses=None) -> tf.Tensor:
    """The reconstruction loss (+ weighted region loss for R-MAE).

    `labels` are the inputs: the images, or R-MAE's dict with the regions.
    """
    parts = self._loss_parts(labels, model_outputs)
    loss = parts['mae_loss']
    if 'region_loss' in parts:
      loss += self.task_config.region_loss_weight * parts['region_loss']
    if aux_losses:
      loss += tf.add_n(aux_losses)
    return loss

  def build_metrics(self, training: bool = True
                    ) -> list[tf_keras.metrics.Metric]:
    """For R-MAE, the two loss parts as running means."""
    if self.task_config.model.type != 'rmae':
      return []
    return [tf_keras.metrics.Mean(name) for name in ('mae_loss',
                                                     'region_loss')]

  def process_metrics(self, metrics, labels, model_outputs, **kwargs):
    parts = self._loss_parts(labels, model_outputs)
    for metric in metrics:
      metric.update_state(parts[metric.name])

  def inference_step(self, inputs: tf.Tensor | dict[str, tf.Tensor],
                     model: tf_keras.Model):
    """The forward pass with the fixed validation mask."""
    images = inputs['images'] if isinstance(inputs, dict) else inputs
    noise = tf.random.stateless_uniform(
        [tf.shape(images)[0], model.num_mask_units], seed=VALIDATION_MASK_SEED)
    return model(inputs, training=False, noise=noise)
