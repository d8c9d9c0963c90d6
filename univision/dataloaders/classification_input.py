"""A classification decoder that rejects corrupt image records by name.

Model Garden's `classification_input.Decoder` hands any bytes to the image
decoder, whose failure does not say which record was bad. This subclass also
reads the record's id (`image/source_id`, else `image/filename`) and checks
the encoded image first (`input_checks.check_encoded_image`).
"""
from typing import Any

import tensorflow as tf, tf_keras
from official.vision.configs import image_classification as mg_ic
from official.vision.dataloaders import classification_input
from official.vision.dataloaders import tfds_factory

from univision.core import input_checks
from univision.dataloaders import data_keys

_SOURCE_ID_KEY = 'image/source_id'
_FILENAME_KEY = 'image/filename'


class Decoder(classification_input.Decoder):
  """Decodes classification tf.Examples, checking the image bytes."""

  def __init__(self,
               where: str,
               image_field_key: str = classification_input
               .DEFAULT_IMAGE_FIELD_KEY,
               label_field_key: str = classification_input
               .DEFAULT_LABEL_FIELD_KEY,
               is_multilabel: bool = False,
               decode_jpeg_only: bool = False):
    """Initializes the decoder.

    Args:
      where: A `str` naming the data in errors (config key and file pattern).
      image_field_key: A `str` key of the encoded image.
      label_field_key: A `str` key of the label.
      is_multilabel: A `bool`, whether labels are a variable-length list.
      decode_jpeg_only: A `bool`; if True only JPEG records are accepted.
    """
    label_feature = (tf.io.VarLenFeature(tf.int64) if is_multilabel else
                     tf.io.FixedLenFeature((), tf.int64, default_value=-1))
    super().__init__(keys_to_features={
        image_field_key: tf.io.FixedLenFeature((), tf.string,
                                               default_value=''),
        label_field_key: label_feature,
        _SOURCE_ID_KEY: tf.io.FixedLenFeature((), tf.string, default_value=''),
        _FILENAME_KEY: tf.io.FixedLenFeature((), tf.string, default_value=''),
    })
    self._where = where
    self._image_field_key = image_field_key
    self._decode_jpeg_only = decode_jpeg_only

  def decode(self, serialized_example):
    decoded = super().decode(serialized_example)
    record_id = tf.strings.strip(tf.strings.join(
        [decoded.pop(_SOURCE_ID_KEY), decoded.pop(_FILENAME_KEY)], ' '))
    decoded[self._image_field_key] = input_checks.check_encoded_image(
        decoded[self._image_field_key], record_id, self._where,
        jpeg_only=self._decode_jpeg_only)
    return decoded


def build_decoder(params: mg_ic.DataConfig, image_field_key: str,
                  label_field_key: str, is_multilabel: bool = False) -> Any:
  """The record decoder of `params`: TFDS's, or a `Decoder` of its files.

  Args:
    params: The data config; its `input_path` is checked first (see
      `data_keys.checked_input_path`) unless it names a TFDS dataset.
    image_field_key: A `str` key of the encoded image.
    label_field_key: A `str` key of the label.
    is_multilabel: A `bool`, whether labels are a variable-length list.

  Returns:
    An object with `decode(serialized_example) -> dict`.
  """
  if params.tfds_name:
    return tfds_factory.get_classification_decoder(params.tfds_name)
  return Decoder(
      where=data_keys.checked_input_path(params),
      image_field_key=image_field_key,
      label_field_key=label_field_key,
      is_multilabel=is_multilabel,
      decode_jpeg_only=params.decode_jpeg_only and params.aug_crop)
