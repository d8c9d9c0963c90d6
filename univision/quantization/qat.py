"""Quantization-aware training models for univision MobileNetV4 classifiers.

    qat_model = qat.quantize_classifier(float_model, input_size=(224, 224))

The float classifier is rebuilt as a flat graph of plain layers with batch
norm folded into the convs (`flat_graph`), then tensorflow-model-optimization's
default 8-bit scheme wraps it: kernels fake-quantized per channel
(depthwise ones by `qat_layers.DepthwiseConvQuantizeConfig`), every conv /
Add / activation output fake-quantized. The layers the scheme does not
know get `qat_layers.OutputQuantizeConfig`: the attention products (batch
matmul, or broadcast multiply and sum) and GELU's rescale and gate product.
Converted with `tf.lite.Optimize.DEFAULT`, every op of the result is int8.

Model Garden's own QAT (`official/projects/qat/vision`) is not used: it swaps
in quantized copies of Model Garden's blocks, which do not exist for our
layers, and its MNv4 leaves the residual Add in float.
"""
import tensorflow as tf, tf_keras
import tensorflow_model_optimization as tfmot

from univision.quantization import flat_graph
from univision.quantization import keras_converter
from univision.quantization import qat_layers

_keras_q = tfmot.quantization.keras


def _annotate(layer: tf_keras.layers.Layer) -> tf_keras.layers.Layer:
  """A copy of `layer` marked for quantization, with our config if needed."""
  config = None
  if isinstance(layer, qat_layers.OUTPUT_QUANTIZED_LAYERS):
    config = qat_layers.OutputQuantizeConfig()
  elif isinstance(layer, tf_keras.layers.DepthwiseConv2D):
    config = qat_layers.DepthwiseConvQuantizeConfig()
  return _keras_q.quantize_annotate_layer(
      layer.__class__.from_config(layer.get_config()), config)


def quantize_flat_model(flat_model: tf_keras.Model) -> tf_keras.Model:
  """Wraps a `flat_graph` model for quantization-aware training."""
  annotated = tf_keras.models.clone_model(flat_model, clone_function=_annotate)
  annotated.set_weights(flat_model.get_weights())
  with _keras_q.quantize_scope(qat_layers.quantize_scope_objects()):
    return _keras_q.quantize_apply(annotated)


def check_supported(model: tf_keras.Model) -> None:
  """Refuses a classifier whose backbone has no integer-only QAT here.

  Raises:
    ValueError: for an anti-aliased MobileNetV4 (timm's conv_aa_* and
      conv_blur_medium): its pooling and blur layers have no integer-only
      quantization here yet (the pool's requantization leaves QUANTIZE ops
      inside; tfmot has no config for the blur).
  """
  spec = getattr(model.backbone, 'model_spec', None)
  if spec is not None and spec.antialias:
    raise ValueError(
        'Integer-only quantization (QAT or post-training) of an '
        f'anti-aliased MobileNetV4 (antialias={spec.antialias!r}, '
        f'{model.backbone.get_config().get("model_id")}) is not supported '
        'yet: its low-pass layers have no integer-only quantization here.')


def quantize_classifier(model: tf_keras.Model, input_size: tuple[int, int],
                        op_set: str = 'edgetpu') -> tf_keras.Model:
  """A QAT model computing what float classifier `model` computes.

  `quantize_classifier_and_flat` without the flat twin.
  """
  return quantize_classifier_and_flat(model, input_size, op_set)[0]


def quantize_classifier_and_flat(
    model: tf_keras.Model, input_size: tuple[int, int],
    op_set: str = 'edgetpu') -> tuple[tf_keras.Model, tf_keras.Model]:
  """(the QAT model of float classifier `model`, its float flat twin).

  The flat twin (`flat_graph.flat_classifier`) is what calibration runs to
  set the QAT model's ranges.

  Args:
    model: A Model Garden `ClassificationModel` with a univision MobileNetV4
      backbone, holding the float weights to start from.
    input_size: (height, width), fixed in the QAT and TFLite models.
    op_set: `'edgetpu'` or `'tflite'` (see `flat_graph.flat_backbone`).

  Returns:
    A `tf_keras.Model` whose layers are tfmot `QuantizeWrapperV2`s (before
    any training, its logits differ from `model`'s only by quantization),
    and the flat float model it wraps.

  Raises:
    ValueError: for a model `check_supported` refuses, or an unknown
      `op_set`.
  """
  check_supported(model)
  flat = flat_graph.flat_classifier(model, input_size,
                                    flat_graph.check_op_set(op_set))
  return quantize_flat_model(flat), flat


def convert(qat_model: tf_keras.Model, io_dtype: tf.DType = tf.uint8) -> bytes:
  """An integer-only TFLite model (batch 1) of a trained QAT model.

  Args:
    qat_model: A QAT model with a fixed input size, e.g. from
      `quantize_classifier`, after training or `calibration.calibrate`.
    io_dtype: `tf.uint8` or `tf.int8` inputs and outputs (quantized with the
      ranges QAT learned), or `tf.float32` (QUANTIZE/DEQUANTIZE at the ends).
  """
  converter = keras_converter.converter(qat_model,
                                       [1, *qat_model.input_shape[1:]])
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if io_dtype != tf.float32:
    converter.inference_input_type = io_dtype
    converter.inference_output_type = io_dtype
  return converter.convert()
