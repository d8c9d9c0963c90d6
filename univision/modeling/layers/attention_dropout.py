"""Attention-based Dropout Layer (ADL; Choe & Shim, CVPR 2019).

A WSOL method: during training, a feature map is multiplied either by a
drop mask, which erases where the self-attention (the channel mean) is
at least `threshold` x its per-image maximum - hiding the most
discriminative part so the classifier must use the rest of the object -
or by an importance map (the sigmoid of the self-attention), which
rewards the discriminative part. One of the two is chosen at random per
step, the drop mask with `drop_rate`. At inference the layer is the
identity. It has no weights.
"""
import tensorflow as tf, tf_keras


@tf_keras.utils.register_keras_serializable(package='univision')
class AttentionDropout(tf_keras.layers.Layer):
  """ADL on a [batch, height, width, channels] feature map."""

  def __init__(self, drop_rate: float = 0.75, threshold: float = 0.9,
               seed: int | None = None, **kwargs):
    """Initializes the layer.

    Args:
      drop_rate: Probability that a training step uses the drop mask
        (else the importance map).
      threshold: Attention >= threshold x the image's maximum is dropped.
      seed: Optional seed of the mask choice.
      **kwargs: Keras layer arguments.
    """
    super().__init__(**kwargs)
    for name, value in (('drop_rate', drop_rate), ('threshold', threshold)):
      if not 0.0 <= value <= 1.0:
        raise ValueError(f'AttentionDropout {name}={value} is not in [0, 1].')
    self._drop_rate = drop_rate
    self._threshold = threshold
    self._seed = seed

  def masks(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(drop mask, importance map), each [batch, height, width, 1]."""
    attention = tf.reduce_mean(x, axis=-1, keepdims=True)
    peak = tf.reduce_max(attention, axis=[1, 2], keepdims=True)
    drop = tf.cast(attention < self._threshold * peak, x.dtype)
    return drop, tf.sigmoid(attention)

  def call(self, x: tf.Tensor, training: bool | None = None) -> tf.Tensor:
    if not training:
      return x
    drop, importance = self.masks(x)
    use_drop = tf.random.uniform([], seed=self._seed) < self._drop_rate
    return x * tf.where(use_drop, drop, importance)

  def get_config(self) -> dict:
    return {**super().get_config(), 'drop_rate': self._drop_rate,
            'threshold': self._threshold, 'seed': self._seed}
