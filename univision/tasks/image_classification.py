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
fresh (Model Garden's version requires an exact match; the loading is
`checkpoints.restore_init_checkpoint`, shared with the WSOL task).
Subclasses change the labels through `build_decoder` (e.g.
`maws_weak_classification`) and reuse the parser through `build_parser`
(e.g. `distillation`).
"""
from typing import Any, Optional

import tensorflow as tf, tf_keras
from official.common import dataset_fn
from official.core import task_factory
from official.vision.configs import image_classification as mg_ic
from official.vision.dataloaders import classification_input
from official.vision.dataloaders import input_reader
from official.vision.dataloaders import input_reader_factory
from official.vision.ops import augment
from official.vision.tasks import image_classification as mg_task

from univision.configs import image_classification as exp_cfg
from univision.core import checkpoints
from univision.core import image_normalization
from univision.dataloaders import classification_input as uv_input
from univision.dataloaders import data_keys


def check_no_repeated_augment(params: mg_ic.DataConfig) -> None:
  """Raises a `ValueError` naming the config key if `repeated_augment` is set.

  Model Garden's repeated augmentation is not wired into univision's input
  pipelines.
  """
  if params.repeated_augment:
    raise ValueError(f'{data_keys.data_key(params)}.repeated_augment is not '
                     'supported by univision tasks; leave it unset.')


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
    check_no_repeated_augment(params)
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
        parser_fn=self._normalized(parser.parse_fn(params.is_training)),
        postprocess_fn=postprocess_fn)
    return reader.read(input_context=input_context)

  def _normalized(self, parse_fn):
    """`parse_fn` with images normalized by `task.preprocessing`."""
    preprocessing = self.task_config.preprocessing

    def parse(data):
      image, label = parse_fn(data)
      return image_normalization.renormalize(
          image, preprocessing.mean_rgb, preprocessing.stddev_rgb), label

    return parse

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
    train_data = self.task_config.train_data
    return uv_input.build_decoder(
        params, train_data.image_field_key, train_data.label_field_key,
        train_data.is_multilabel)

  def initialize(self, model: tf_keras.Model):
    """Loads `task.init_checkpoint` ('all' of the model or its 'backbone').

    See `checkpoints.restore_init_checkpoint`: errors name the config keys,
    and a headless pretraining checkpoint loads into a backbone with a head.
    """
    config = self.task_config
    checkpoints.restore_init_checkpoint(
        model, config.init_checkpoint, config.init_checkpoint_modules,
        config.model.backbone)
