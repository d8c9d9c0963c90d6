"""`benchlib.op_profile`: one-op models compute what the op computes."""
import sys

import numpy as np
import pytest
import tensorflow as tf, tf_keras
from ai_edge_litert import interpreter as litert
from tensorflow.lite.tools import flatbuffer_utils

from tests.benchmarks import test_bench_smoke

if test_bench_smoke.BENCHMARKS not in sys.path:
  sys.path.insert(0, test_bench_smoke.BENCHMARKS)  # As when a script runs.
from benchlib import op_profile  # pylint: disable=g-import-not-at-top,wrong-import-position


def _model() -> bytes:
  inputs = tf_keras.Input((8, 8, 3), batch_size=1)
  x = tf_keras.layers.Conv2D(4, 3, padding='same', activation='relu')(inputs)
  x = tf_keras.layers.Add()([x, tf_keras.layers.Conv2D(4, 1)(inputs)])
  x = tf_keras.layers.GlobalAveragePooling2D()(x)
  model = tf_keras.Model(inputs, tf_keras.layers.Dense(2)(x))
  return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def test_single_op_models_reproduce_each_op():
  content = _model()
  whole = litert.Interpreter(model_content=content,
                             experimental_preserve_all_tensors=True)
  whole.allocate_tensors()
  detail = whole.get_input_details()[0]
  whole.set_tensor(detail['index'], np.random.default_rng(0).standard_normal(
      detail['shape']).astype(np.float32))
  whole.invoke()
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
  graph = model.subgraphs[0]
  names = [t.name.decode() for t in graph.tensors]
  whole_index = {t['name']: t['index'] for t in whole.get_tensor_details()}
  for index, op in enumerate(graph.operators):
    single = litert.Interpreter(
        model_content=op_profile.single_op_model(model, index))
    single.allocate_tensors()
    for detail in single.get_input_details():
      single.set_tensor(detail['index'],
                        whole.get_tensor(whole_index[detail['name']]))
    single.invoke()
    out = single.get_output_details()[0]
    np.testing.assert_allclose(
        single.get_tensor(out['index']),
        whole.get_tensor(whole_index[names[op.outputs[0]]]), atol=1e-6)


def test_profile_times_every_op_and_the_whole():
  profiles = op_profile.profile({'a': _model(), 'b': _model()}, repeats=2,
                                min_sample_s=0)
  assert set(profiles) == {'a', 'b'}
  times, whole_ms = profiles['a']
  assert [t.index for t in times] == list(range(len(times)))
  assert {t.name for t in times} >= {'CONV_2D', 'ADD', 'FULLY_CONNECTED'}
  assert all(t.milliseconds > 0 for t in times) and whole_ms > 0
  types = op_profile.by_op_type(times)
  assert sum(n for n, _ in types.values()) == len(times)
  assert sum(ms for _, ms in types.values()) == pytest.approx(
      sum(t.milliseconds for t in times))
  assert types['CONV_2D'][0] == 2
