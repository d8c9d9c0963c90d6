"""SavedModels are written without Keras' per-layer call traces."""
import os

import numpy as np
from tensorflow.core.protobuf import saved_model_pb2
import tensorflow as tf, tf_keras

from univision.serving import saved_model


def keras_trace_functions(export_dir: str) -> list[str]:
  """Names of the traced Keras layer call functions in a SavedModel."""
  proto = saved_model_pb2.SavedModel()
  with open(os.path.join(export_dir, 'saved_model.pb'), 'rb') as f:
    proto.ParseFromString(f.read())
  return [f.signature.name
          for f in proto.meta_graphs[0].graph_def.library.function
          if 'call_and_return_conditional_losses' in f.signature.name]


class _Module(tf.Module):

  def __init__(self):
    super().__init__()
    self.model = tf_keras.Sequential([
        tf_keras.layers.Dense(4, activation='relu', input_shape=(3,)),
        tf_keras.layers.Dense(2)])

  @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
  def serve(self, x):
    return {'logits': self.model(x, training=False)}


def test_without_keras_traces_keeps_the_signature_only(tmp_path):
  module = _Module()
  x = np.ones([2, 3], np.float32)
  with_traces, without = str(tmp_path / 'with'), str(tmp_path / 'without')
  tf.saved_model.save(module, with_traces, signatures={'serving_default':
                                                        module.serve})
  with saved_model.without_keras_traces():
    tf.saved_model.save(module, without, signatures={'serving_default':
                                                      module.serve})
  assert keras_trace_functions(with_traces)  # tf_keras' default.
  assert not keras_trace_functions(without)
  served = tf.saved_model.load(without).signatures['serving_default']
  np.testing.assert_allclose(served(tf.constant(x))['logits'],
                             module.model(x), rtol=1e-6)
  # The scope ends: the next save traces again.
  again = str(tmp_path / 'again')
  tf.saved_model.save(module, again)
  assert keras_trace_functions(again)
