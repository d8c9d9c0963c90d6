"""Layers and quantize configs that quantization-aware training needs.

tensorflow-model-optimization's default 8-bit scheme knows the standard Keras
layers (Conv2D/DepthwiseConv2D followed by BatchNormalization are folded and
fake-quantized, Add/ReLU/GELU outputs are quantized) but has nothing for
a product of two activations (Mobile MQA's Q.K^T and A.V, as a matmul or
as a broadcast MUL + SUM), or for a constant rescaling. These only need their OUTPUT fake-quantized:
their inputs are already quantized activations, and they have no weights.
Depthwise convs get per-channel kernel ranges (`DepthwiseKernelQuantizer`).
"""
from typing import Any

import tensorflow as tf, tf_keras
import tensorflow_model_optimization as tfmot

_quantizers = tfmot.quantization.keras.quantizers


@tf_keras.utils.register_keras_serializable(package='univision')
class BatchMatMul(tf_keras.layers.Layer):
  """`a @ b` (or `a @ b^T`) over the last two axes of [batch, rows, dim].

  At a static batch of 1 (a TFLite export) the product is written as one
  2-D matmul of the reshaped operands, which the converter emits as
  FULLY_CONNECTED with `b` as its (run-time) weights, plus a TRANSPOSE of
  `b` unless `transpose_b`. Why: TFLite's int8 BATCH_MATMUL kernel runs
  Mobile MQA's products about 10x slower than its int8 FULLY_CONNECTED
  (and than float BATCH_MATMUL in XNNPACK), which made the integer-only
  hybrids slower than float (docs/performance.md). Any other batch size
  (training) runs the batched product; both compute the same function.
  """

  def __init__(self, transpose_b: bool = False, **kwargs):
    """Initializes the layer.

    Args:
      transpose_b: A `bool`, whether to multiply by the transpose of `b`.
      **kwargs: Keyword arguments for `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    self._transpose_b = transpose_b

  def call(self, inputs):
    a, b = inputs
    if a.shape[0] == 1 and b.shape[0] == 1 and None not in (
        *a.shape[1:], *b.shape[1:]):
      product = tf.linalg.matmul(tf.reshape(a, a.shape[1:]),
                                 tf.reshape(b, b.shape[1:]),
                                 transpose_b=self._transpose_b)
      return tf.expand_dims(product, 0)
    return tf.linalg.matmul(a, b, transpose_b=self._transpose_b)

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'transpose_b': self._transpose_b}


@tf_keras.utils.register_keras_serializable(package='univision')
class ReduceSum(tf_keras.layers.Layer):
  """Sums over one axis: TFLite's SUM."""

  def __init__(self, axis: int, **kwargs):
    """Initializes the layer.

    Args:
      axis: An `int` axis to sum over (dropped from the output).
      **kwargs: Keyword arguments for `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    self._axis = axis

  def call(self, inputs):
    return tf.reduce_sum(inputs, axis=self._axis)

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'axis': self._axis}


@tf_keras.utils.register_keras_serializable(package='univision')
class OutputQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
  """Fake-quantizes a layer's output only: asymmetric 8 bits, per tensor.

  The same quantizer the default 8-bit scheme puts on an Add or ReLU output,
  so the converter emits the layer as one int8 op.
  """

  def get_weights_and_quantizers(self, layer):
    return []

  def get_activations_and_quantizers(self, layer):
    return []

  def set_quantize_weights(self, layer, quantize_weights):
    pass

  def set_quantize_activations(self, layer, quantize_activations):
    pass

  def get_output_quantizers(self, layer):
    return [_quantizers.MovingAverageQuantizer(
        num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

  def get_config(self) -> dict[str, Any]:
    return {}


class DepthwiseKernelQuantizer(_quantizers.LastValueQuantizer):
  """Symmetric 8-bit, one range per channel of a [k, k, C, 1] DW kernel.

  tfmot's conv quantizer takes one range per entry of the LAST axis, which
  for a depthwise kernel is the depth multiplier (1): one range for all
  channels. After batch norm folding the channels' scales differ widely, and
  TFLite quantizes depthwise kernels per channel anyway, so QAT does too.
  """

  def __init__(self):
    super().__init__(num_bits=8, per_axis=True, symmetric=True,
                     narrow_range=True)

  def build(self, tensor_shape, name, layer):
    channels = int(tensor_shape[2]) * int(tensor_shape[3])
    ranges = {}
    for bound, value in (('min', -6.0), ('max', 6.0)):
      ranges[f'{bound}_var'] = layer.add_weight(
          f'{name}_{bound}', shape=(channels,),
          initializer=tf_keras.initializers.Constant(value), trainable=False)
    return ranges

  def __call__(self, inputs, training, weights, **kwargs):
    k, k2, channels, multiplier = inputs.shape
    flat = tf.reshape(inputs, [k, k2, 1, channels * multiplier])
    flat = super().__call__(flat, training, weights, **kwargs)
    return tf.reshape(flat, [k, k2, channels, multiplier])


@tf_keras.utils.register_keras_serializable(package='univision')
class DepthwiseConvQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
  """A depthwise conv: kernel per channel, output after its activation."""

  def get_weights_and_quantizers(self, layer):
    return [(layer.depthwise_kernel, DepthwiseKernelQuantizer())]

  def get_activations_and_quantizers(self, layer):
    return [(layer.activation, _quantizers.MovingAverageQuantizer(
        num_bits=8, per_axis=False, symmetric=False, narrow_range=False))]

  def set_quantize_weights(self, layer, quantize_weights):
    (layer.depthwise_kernel,) = quantize_weights

  def set_quantize_activations(self, layer, quantize_activations):
    (layer.activation,) = quantize_activations

  def get_output_quantizers(self, layer):
    return []

  def get_config(self) -> dict[str, Any]:
    return {}


def quantize_scope_objects() -> dict[str, Any]:
  """The custom objects `tfmot`'s quantize scope must know for our graphs."""
  return {'BatchMatMul': BatchMatMul, 'ReduceSum': ReduceSum,
          'OutputQuantizeConfig': OutputQuantizeConfig,
          'DepthwiseConvQuantizeConfig': DepthwiseConvQuantizeConfig}


# Layers whose output gets `OutputQuantizeConfig` (tfmot has no config).
OUTPUT_QUANTIZED_LAYERS = (BatchMatMul, ReduceSum, tf_keras.layers.Multiply,
                           tf_keras.layers.Rescaling)
