"""The variables-only converter root gives Keras' own flatbuffer."""
from ai_edge_litert import interpreter as litert
import numpy as np
import tensorflow as tf, tf_keras

from univision.quantization import calibration
from univision.quantization import flat_graph
from univision.quantization import keras_converter
from univision.quantization import qat
from univision.quantization import readiness


def _keras_root_converter(model, shape):
  """TensorFlow's route: the Keras model itself as the SavedModel root."""
  function = tf.function(lambda x: model(x, training=False))
  concrete = function.get_concrete_function(tf.TensorSpec(shape, tf.float32))
  return tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)


def _int8(converter):
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.inference_input_type = tf.uint8
  converter.inference_output_type = tf.uint8
  return converter.convert()


def test_qat_int8_flatbuffer_is_byte_identical():
  model = readiness.random_classifier('MobileNetV4ConvSmall', 32)
  flat = flat_graph.flat_classifier(model, (32, 32), 'edgetpu')
  qat_model = qat.quantize_flat_model(flat)
  calibration.calibrate(qat_model, flat,
                        [readiness.random_images(4, 32, seed=1)])
  shape = [1, 32, 32, 3]
  ours = _int8(keras_converter.converter(qat_model, shape))
  assert ours == _int8(_keras_root_converter(qat_model, shape))


def test_float_model_is_byte_identical_at_the_fixed_input_shape():
  model = tf_keras.Sequential([
      tf_keras.layers.Dense(4, activation='relu', input_shape=(5,)),
      tf_keras.layers.BatchNormalization(), tf_keras.layers.Dense(3)])
  ours = keras_converter.converter(model, [1, 5]).convert()
  assert ours == _keras_root_converter(model, [1, 5]).convert()
  interpreter = litert.Interpreter(model_content=ours)
  interpreter.allocate_tensors()
  detail = interpreter.get_input_details()[0]
  np.testing.assert_array_equal(detail['shape'], [1, 5])
  x = np.arange(5, dtype=np.float32)[None]
  interpreter.set_tensor(detail['index'], x)
  interpreter.invoke()
  np.testing.assert_allclose(
      interpreter.get_tensor(interpreter.get_output_details()[0]['index']),
      model(x).numpy(), rtol=1e-5)
