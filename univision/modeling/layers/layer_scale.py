"""Per-channel learnable output scale (CaiT's LayerScale), used by MNv4 hybrids."""
from typing import Any

import tensorflow as tf, tf_keras


@tf_keras.utils.register_keras_serializable(package='univision')
class LayerScale(tf_keras.layers.Layer):
  """Multiplies the input by a per-channel `gamma` initialised to a constant.

  Touvron et al., "Going deeper with Image Transformers" (CaiT), 2021; MNv4's
  hybrid models put it at the end of every UIB and Mobile MQA block.
  """

  def __init__(self, init_value: float = 1e-5, **kwargs):
    """Initializes the layer.

    Args:
      init_value: A `float` initial value of every entry of `gamma`.
      **kwargs: Keyword arguments for `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    self._init_value = init_value

  def build(self, input_shape):
    self.gamma = self.add_weight(
        name='gamma',
        shape=(input_shape[-1],),
        initializer=tf_keras.initializers.Constant(self._init_value),
        trainable=True)
    super().build(input_shape)

  def call(self, inputs):
    return inputs * tf.cast(self.gamma, inputs.dtype)

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'init_value': self._init_value}
