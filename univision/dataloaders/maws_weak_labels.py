"""Weak image-level labels: a stand-in for MAWS's hashtag supervision.

MAWS (Singh et al., ICCV 2023) pretrains on ~3B Instagram images labelled by
their hashtags; offline we have no such data, so the weakly supervised stage
trains on Fashion-MNIST with labels made weak in the two ways hashtags are:

1. *A different, coarser label space than the target task*: hashtags are
   not the downstream classes. `label_map` maps each class to a group; the
   MAWS demo uses the four groups of `univision.data.wsol_composites
   .HIERARCHY` (tops / bottoms & dresses / footwear / bags), so the
   fine-tuning stage still has to learn the 10-way distinctions.
2. *Noise*: a fraction `noise_rate` of the training images get a wrong
   (mapped) label, uniformly among the other classes. Label noise alone
   would leave the weak task the target task itself; groups alone would be
   clean, which hashtags are not.

The flip is a fixed function of the image bytes and `seed` (a keyed hash),
not a fresh draw per epoch: a web image keeps its wrong hashtag, whereas
labels re-drawn every epoch would average out to the true one. Noise is for
training only; evaluation uses the mapped clean labels, so the weak stage
reports accuracy on the test split's groups.
"""
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

_HASH_BUCKETS = 2**31 - 1


def weaken(labels: tf.Tensor, keys: tf.Tensor, label_map: Sequence[int],
           noise_rate: float, num_classes: int, seed: int = 0) -> tf.Tensor:
  """Maps labels to groups, then flips a fixed fraction of them.

  Args:
    labels: An int `tf.Tensor` of class ids, any shape.
    keys: A string `tf.Tensor` of the same shape identifying each example
      (e.g. its encoded image); the flips are a function of it and `seed`.
    label_map: Group id of each class id; empty to keep the classes.
    noise_rate: The fraction of labels changed, in [0, 1).
    num_classes: The number of (mapped) classes.
    seed: An `int` choosing which examples are flipped, and to what.

  Returns:
    The weak labels, with the dtype and shape of `labels`.
  """
  if label_map:
    table = tf.constant(list(label_map), labels.dtype)
    tf.debugging.assert_less(
        labels, tf.cast(len(label_map), labels.dtype),
        message=f'A label is out of range of label_map ({len(label_map)} '
        'classes).')
    labels = tf.gather(table, labels)
  if noise_rate <= 0.0:
    return labels
  draw = tf.strings.to_hash_bucket_strong(keys, _HASH_BUCKETS, [seed, 0])
  flip = tf.cast(draw, tf.float64) / _HASH_BUCKETS < noise_rate
  # One of the other num_classes - 1 classes, uniformly.
  offset = 1 + tf.strings.to_hash_bucket_strong(keys, num_classes - 1,
                                                [seed, 1])
  flipped = (labels + tf.cast(offset, labels.dtype)) % num_classes
  return tf.where(flip, flipped, labels)


def check(label_map: Sequence[int], noise_rate: float, num_classes: int,
          key: str) -> None:
  """Raises a `ValueError` naming `key` for settings `weaken` cannot use."""
  if not 0.0 <= noise_rate < 1.0:
    raise ValueError(f'{key}.noise_rate={noise_rate} must be in [0, 1).')
  if label_map and (min(label_map) < 0 or max(label_map) >= num_classes):
    raise ValueError(f'{key}.label_map={list(label_map)} must hold group '
                     f'ids in [0, {num_classes}) (task.model.num_classes).')
  if noise_rate and num_classes < 2:
    raise ValueError(f'{key}.noise_rate needs at least 2 classes.')


class WeakLabelDecoder:
  """Wraps a classification decoder; its labels come out weakened."""

  def __init__(self, decoder: Any, image_field_key: str,
               label_field_key: str, label_map: Sequence[int],
               noise_rate: float, num_classes: int, seed: int = 0):
    """Initializes the wrapper.

    Args:
      decoder: A decoder with `decode(serialized_example) -> dict`, whose
        dict holds the encoded image and the label.
      image_field_key: The key of the encoded image (the flip key).
      label_field_key: The key of the label.
      label_map: See `weaken`.
      noise_rate: See `weaken`.
      num_classes: See `weaken`.
      seed: See `weaken`.
    """
    self._decoder = decoder
    self._image_field_key = image_field_key
    self._label_field_key = label_field_key
    self._label_map = tuple(label_map)
    self._noise_rate = noise_rate
    self._num_classes = num_classes
    self._seed = seed

  def decode(self, serialized_example: tf.Tensor) -> dict[str, tf.Tensor]:
    decoded = self._decoder.decode(serialized_example)
    decoded[self._label_field_key] = weaken(
        decoded[self._label_field_key], decoded[self._image_field_key],
        self._label_map, self._noise_rate, self._num_classes, self._seed)
    return decoded
