"""Top-1 and agreement of TFLite classifiers on the same images."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras

from univision.quantization import evaluate_tflite


def _export(tmp_path, name, outputs=('logits', 'probs'), int8_data=None):
  """A tiny classifier as TFLite with Model Garden's output names."""
  tf_keras.utils.set_random_seed(0)
  model = tf_keras.Sequential([
      tf_keras.layers.Conv2D(4, 3, activation='relu'),
      tf_keras.layers.GlobalAveragePooling2D(), tf_keras.layers.Dense(3)])
  model.build((1, 8, 8, 3))

  class Module(tf.Module):

    def __init__(self):
      super().__init__()
      self.model = model

    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32)])
    def serve(self, inputs):
      logits = self.model(inputs)
      all_outputs = {'logits': logits, 'probs': tf.nn.softmax(logits)}
      return {k: all_outputs[k] for k in outputs}

  module = Module()
  folder = str(tmp_path / f'{name}_sm')
  tf.saved_model.save(module, folder,
                      signatures={'serving_default': module.serve})
  converter = tf.lite.TFLiteConverter.from_saved_model(folder)
  if int8_data is not None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[None]] for x in int8_data)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
  path = tmp_path / f'{name}.tflite'
  path.write_bytes(converter.convert())
  return str(path), model


def test_top1_and_agreement(tmp_path):
  images = np.random.default_rng(0).normal(size=(40, 8, 8, 3)).astype(
      np.float32)
  float_path, model = _export(tmp_path, 'float')
  int8_path, _ = _export(tmp_path, 'int8', int8_data=images)
  predictions = model(images).numpy().argmax(-1)
  labels = predictions.copy()
  labels[:10] = (labels[:10] + 1) % 3  # 30 of 40 right.
  results = evaluate_tflite.compare(
      [evaluate_tflite.TFLiteClassifier(float_path),
       evaluate_tflite.TFLiteClassifier(int8_path)], images, labels)
  assert results[0].top1 == pytest.approx(0.75)
  assert results[0].agreement == 1.0 and results[0].max_abs_prob_diff == 0
  assert results[1].agreement > 0.8
  assert 0 < results[1].mean_abs_prob_diff < 0.05
  int8_probs = np.stack([evaluate_tflite.TFLiteClassifier(int8_path)
                         .probabilities(im) for im in images])
  assert results[1].top1 == pytest.approx(
      np.mean(int8_probs.argmax(-1) == labels))


def test_model_without_probs_is_named(tmp_path):
  path, _ = _export(tmp_path, 'logits_only', outputs=('logits',))
  with pytest.raises(ValueError, match='logits_only.tflite: no `probs`'):
    evaluate_tflite.TFLiteClassifier(path)
