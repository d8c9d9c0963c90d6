"""Dynamic dataset mixing: each training example's view drawn from a mixture.

MobileNetV4's distillation recipe trains on a per-batch mixture of
differently augmented copies of the data (RandAugment, extreme Mixup, ...).
Model Garden's classification input applies one augmentation to every
example (and Mixup to a whole batch), so the mixing is univision's, built on
Model Garden's pieces: per example, a view is drawn with the configured
weights, the image is parsed by that view's Model Garden `Parser` (the plain
one, or one with RandAugment), and after batching the examples that drew
'extreme_mixup' are mixed among themselves by Model Garden's
`MixupAndCutmix` (Mixup only), their labels becoming the mixed labels.
Views of weight 0 are never drawn.
"""
from typing import Callable, Dict, Optional, Sequence, Tuple

import tensorflow as tf
from official.vision.ops import augment

# The views, in the order of the view ids the parse function emits.
VIEWS = ('plain', 'randaugment', 'extreme_mixup')
PLAIN, RANDAUGMENT, EXTREME_MIXUP = range(len(VIEWS))

ParseFn = Callable[[Dict[str, tf.Tensor]], Tuple[tf.Tensor, tf.Tensor]]


def check_weights(weights: Sequence[float], key: str) -> None:
  """Checks one non-negative weight per view, not all zero.

  Args:
    weights: The mixing weights, in the order of `VIEWS`.
    key: The config key of the weights, for error messages.

  Raises:
    ValueError: naming `key` for negative or all-zero weights.
  """
  if len(weights) != len(VIEWS) or min(weights) < 0 or sum(weights) <= 0:
    raise ValueError(f'{key}: weights {dict(zip(VIEWS, weights))} must be '
                     f'{len(VIEWS)} non-negative numbers, not all 0.')


class ViewMixer:
  """Parses each example as a randomly drawn view, then mixes the Mixup ones.

  Use `parse` as the input reader's `parser_fn` and `batch` as its
  `transform_and_batch_fn`; batches are `(images, labels)` with labels
  one-hot (or mixed) floats of shape [batch, num_classes].
  """

  def __init__(self, plain_parse_fn: ParseFn, randaugment_parse_fn: ParseFn,
               weights: Sequence[float], num_classes: int,
               mixup_alpha: float, global_batch_size: int,
               drop_remainder: bool = True):
    """Initializes the mixer.

    Args:
      plain_parse_fn: Decoded example -> (image, class id): the plain view,
        also the source of the images that 'extreme_mixup' mixes.
      randaugment_parse_fn: The same with RandAugment.
      weights: The (unnormalized) weight of each view, in `VIEWS` order.
      num_classes: Number of classes, for the one-hot labels.
      mixup_alpha: Mixup's lambda is drawn from Beta(alpha, alpha).
      global_batch_size: The batch size summed over replicas.
      drop_remainder: Whether `batch` drops a last partial batch.
    """
    check_weights(weights, 'weights')
    self._branches = (plain_parse_fn, randaugment_parse_fn, plain_parse_fn)
    self._weights = tuple(float(w) for w in weights)
    self._num_classes = num_classes
    self._global_batch_size = global_batch_size
    self._drop_remainder = drop_remainder
    self._mixup = augment.MixupAndCutmix(
        num_classes=num_classes, mixup_alpha=mixup_alpha, cutmix_alpha=0.0,
        prob=1.0, label_smoothing=0.0)

  def draw_view(self) -> tf.Tensor:
    """A view id drawn with the mixing weights (int32 scalar)."""
    logits = tf.math.log([self._weights])  # log(0) = -inf: never drawn.
    return tf.random.categorical(logits, 1, dtype=tf.int32)[0, 0]

  def parse(self, decoded: Dict[str, tf.Tensor]
            ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Decoded example -> (image, class id, view id), parsed as its view."""
    view = self.draw_view()
    image, label = tf.switch_case(
        view, [lambda fn=fn: fn(decoded) for fn in self._branches])
    return image, label, view

  def mix(self, images: tf.Tensor, labels: tf.Tensor, views: tf.Tensor
          ) -> Tuple[tf.Tensor, tf.Tensor]:
    """Mixes the batch's 'extreme_mixup' examples; one-hot labels the rest.

    Args:
      images: [batch, height, width, 3] parsed images.
      labels: [batch] class ids.
      views: [batch] view ids.

    Returns:
      The images, and float labels [batch, num_classes]: one-hot, or for the
      'extreme_mixup' examples the mixed labels of the two mixed images.
    """
    one_hot = tf.one_hot(labels, self._num_classes, dtype=tf.float32)
    if not self._weights[EXTREME_MIXUP]:
      return images, one_hot
    where = tf.where(tf.equal(views, EXTREME_MIXUP))
    mixed_images, mixed_labels = self._mixup(
        tf.gather_nd(images, where), tf.gather_nd(labels, where))
    return (tf.tensor_scatter_nd_update(images, where, mixed_images),
            tf.tensor_scatter_nd_update(one_hot, where, mixed_labels))

  def batch(self, dataset: tf.data.Dataset,
            input_context: Optional[tf.distribute.InputContext] = None
            ) -> tf.data.Dataset:
    """Batches parsed examples and applies `mix` per batch.

    Args:
      dataset: Examples from `parse`.
      input_context: The replica's input context, if distributed.
    """
    batch_size = self._global_batch_size
    if input_context:
      batch_size = input_context.get_per_replica_batch_size(batch_size)
    dataset = dataset.batch(batch_size, drop_remainder=self._drop_remainder)
    return dataset.map(self.mix, num_parallel_calls=tf.data.AUTOTUNE)
