"""Image classification with univision backbones on Model Garden's task.

Everything but the input pipeline is Model Garden's `ImageClassificationTask`.
`build_inputs` is re-wired (from Model Garden's own decoder, parser and
reader) because Model Garden's version (1) ignores `crop_area_range` from the
data config, (2) reads a pattern that matches no file without naming the
config key, and (3) lets a corrupt image record fail anonymously. Here the
range is honoured, and (2) and (3) raise errors that name the key, pattern
and record. `initialize` likewise names `task.init_checkpoint` when it is
missing or does not fit the model, and loads a headless pretraining
checkpoint (an MAE encoder) into a backbone with a head, leaving the head
fresh (Model Garden's version requires an exact match). Subclasses change
the labels through `build_decoder` (e.g. `maws_weak_classification`) and reuse the parser through
`build_parser` (e.g. `distillation`).
"""
from typing import Any, Optional

from absl import logging
import tensorflow as tf, tf_keras
from official.common import dataset_fn
from official.core import task_factory
from official.vision.configs import image_classification as mg_ic
from official.vision.dataloaders import classification_input
from official.vision.dataloaders import input_reader
from official.vision.dataloaders import input_reader_factory
from official.vision.dataloaders import tfds_factory
from official.vision.ops import augment
from official.vision.tasks import image_classification as mg_task

from univision.configs import image_classification as exp_cfg
from univision.core import checkpoints
from univision.dataloaders import classification_input as uv_input
from univision.dataloaders import input_checks


def data_key(params: mg_ic.DataConfig) -> str:
  """The config key of a data config, for error messages."""
  return 'task.train_data' if params.is_training else 'task.validation_data'


@task_factory.register_task_cls(exp_cfg.ImageClassificationTask)
class ImageClassificationTask(mg_task.ImageClassificationTask):
  """Model Garden's image classification task with checked inputs."""

  def build_inputs(
      self,
      params: mg_ic.DataConfig,
      input_context: Optional[tf.distribute.InputContext] = None
  ) -> tf.data.Dataset:
    """Builds the classification input pipeline, checking its input first."""
    model = self.task_config.model
    if params.repeated_augment:
      raise ValueError(f'{data_key(params)}.repeated_augment is not supported '
                       'by univision tasks; leave it unset.')
    decoder = self.build_decoder(params)
    parser = self.build_parser(params)
    postprocess_fn = None
    if params.mixup_and_cutmix:
      mix = params.mixup_and_cutmix
      postprocess_fn = augment.MixupAndCutmix(
          mixup_alpha=mix.mixup_alpha, cutmix_alpha=mix.cutmix_alpha,
          prob=mix.prob, label_smoothing=mix.label_smoothing,
          num_classes=model.num_classes)
    reader = input_reader_factory.input_reader_generator(
        params,
        dataset_fn=dataset_fn.pick_dataset_fn(params.file_type),
        decoder_fn=decoder.decode,
        combine_fn=input_reader.create_combine_fn(params),
        parser_fn=parser.parse_fn(params.is_training),
        postprocess_fn=postprocess_fn)
    return reader.read(input_context=input_context)

  def build_parser(
      self, params: mg_ic.DataConfig) -> classification_input.Parser:
    """Model Garden's classification parser, configured by `params`."""
    model = self.task_config.model
    train_data = self.task_config.train_data
    return classification_input.Parser(
        output_size=model.input_size[:2],
        num_classes=model.num_classes,
        image_field_key=train_data.image_field_key,
        label_field_key=train_data.label_field_key,
        decode_jpeg_only=params.decode_jpeg_only,
        aug_rand_hflip=params.aug_rand_hflip,
        aug_crop=params.aug_crop,
        aug_type=params.aug_type,
        color_jitter=params.color_jitter,
        random_erasing=params.random_erasing,
        is_multilabel=train_data.is_multilabel,
        dtype=params.dtype,
        crop_area_range=params.crop_area_range,
        center_crop_fraction=params.center_crop_fraction,
        tf_resize_method=params.tf_resize_method,
        three_augment=params.three_augment)

  def build_decoder(self, params: mg_ic.DataConfig) -> Any:
    """The record decoder of `params`: TFDS's, or univision's checked one."""
    if params.tfds_name:
      return tfds_factory.get_classification_decoder(params.tfds_name)
    train_data = self.task_config.train_data
    key = f'{data_key(params)}.input_path'
    input_checks.check_input_path(params.input_path, key)
    return uv_input.Decoder(
        where=f'{key}={params.input_path}',
        image_field_key=train_data.image_field_key,
        label_field_key=train_data.label_field_key,
        is_multilabel=train_data.is_multilabel,
        decode_jpeg_only=params.decode_jpeg_only and params.aug_crop)

  def initialize(self, model: tf_keras.Model):
    """Loads `task.init_checkpoint` ('all' of the model or its 'backbone').

    As Model Garden's version, but a folder without checkpoint and weights
    that do not fit (another backbone size, say) raise errors that name the
    config keys, instead of a `None` path or bare variable paths.

    Raises:
      FileNotFoundError: naming `task.init_checkpoint` if it holds no
        checkpoint.
      ValueError: naming `task.init_checkpoint_modules` if it is not 'all'
        or 'backbone', or `task.init_checkpoint` and the backbone config
        when the checkpoint does not fit the model.
    """
    path = self.task_config.init_checkpoint
    if not path:
      return
    prefix = checkpoints.resolve_checkpoint(path, 'task.init_checkpoint')
    modules = self.task_config.init_checkpoint_modules
    if modules == 'all':
      items = {'model': model}
    elif modules == 'backbone':
      items = {'backbone': model.backbone}
    else:
      raise ValueError(f'task.init_checkpoint_modules={modules!r} must be '
                       "'all' or 'backbone'.")
    try:
      tf.train.Checkpoint(**items).read(
          prefix).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError) as e:
      fresh = (_restore_without_head(model.backbone, prefix)
               if modules == 'backbone' else None)
      if fresh is None:
        backbone = self.task_config.model.backbone
        raise ValueError(
            f'task.init_checkpoint={path} does not fit task.model '
            f'(init_checkpoint_modules={modules!r}, backbone {backbone.type} '
            f'{backbone.get().as_dict()}): {str(e).splitlines()[0]}') from e
      logging.info('Backbone head layers %s are not in %s: they start '
                   'fresh.', fresh, prefix)
    logging.info('Loaded %s of the model from %s.', modules, prefix)


def _restore_without_head(backbone: tf_keras.Model,
                          prefix: str) -> list[str] | None:
  """Loads a checkpoint of the backbone without its head (e.g. an MAE's).

  Pretraining saves a headless encoder (`include_head=False`, as Hiera's MAE
  does); a classifier backbone adds head layers, which fine-tuning starts
  fresh, as the reference fine-tuning code does. The headless twin of
  `backbone` must match the checkpoint exactly; its weights are then copied
  layer by layer (by name).

  Returns:
    The names of the head layers left fresh, or None if `backbone` has no
    head option or its headless twin does not fit the checkpoint either.
  """
  config = backbone.get_config()
  if not config.get('include_head'):
    return None
  twin = type(backbone).from_config({**config, 'include_head': False})
  try:
    tf.train.Checkpoint(backbone=twin).read(
        prefix).expect_partial().assert_existing_objects_matched()
  except (AssertionError, ValueError):
    return None
  trunk = {layer.name for layer in twin.layers if layer.weights}
  for layer in twin.layers:
    if layer.weights:
      backbone.get_layer(layer.name).set_weights(layer.get_weights())
  return [layer.name for layer in backbone.layers
          if layer.weights and layer.name not in trunk]
