"""SSDLite-style decoder: levels, extra layers, config, detector."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras
from official.core import exp_factory
from official.core import task_factory

from univision import registry_imports  # pylint: disable=unused-import
from univision.modeling.decoders import ssdlite
from univision.modeling.layers import conv_norm

SPECS = {'2': tf.TensorShape([None, 16, 16, 24]),
         '3': tf.TensorShape([None, 8, 8, 32]),
         '4': tf.TensorShape([None, 4, 4, 64]),
         '5': tf.TensorShape([None, 2, 2, 96])}


def _inputs():
  rng = np.random.default_rng(0)
  return {k: tf.constant(rng.normal(size=[2, *s[1:]]), tf.float32)
          for k, s in SPECS.items()}


def test_levels_are_projected_backbone_maps_then_extra_stride_2_layers():
  decoder = ssdlite.SSDLiteFeatures(SPECS, min_level=3, max_level=7,
                                    num_filters=16)
  outputs = decoder(_inputs(), training=False)
  assert {k: tuple(v.shape) for k, v in outputs.items()} == {
      '3': (2, 8, 8, 16), '4': (2, 4, 4, 16), '5': (2, 2, 2, 16),
      '6': (2, 1, 1, 16), '7': (2, 1, 1, 16)}
  assert {k: v.as_list() for k, v in decoder.output_specs.items()} == {
      k: [None, *v.shape[1:]] for k, v in outputs.items()}
  depthwise = [l for l in decoder.layers
               if isinstance(l, conv_norm.ConvNormAct) and l._depthwise]  # pylint: disable=protected-access
  assert [l.name for l in depthwise] == ['extra_6_depthwise',
                                         'extra_7_depthwise']
  # Level 3 depends on backbone level 3 only (no top-down path).
  changed = _inputs()
  changed['5'] = changed['5'] + 1.0
  again = decoder(changed, training=False)
  np.testing.assert_array_equal(again['3'], outputs['3'])
  assert not np.allclose(again['6'], outputs['6'])


def test_config_round_trip_gives_the_same_architecture():
  decoder = ssdlite.SSDLiteFeatures(
      SPECS, min_level=3, max_level=6, num_filters=8, activation='relu6',
      kernel_regularizer=tf_keras.regularizers.L2(1e-4))
  clone = ssdlite.SSDLiteFeatures.from_config(decoder.get_config())
  assert clone.get_config() == decoder.get_config()
  clone.set_weights(decoder.get_weights())
  inputs = _inputs()
  for level, value in decoder(inputs, training=False).items():
    np.testing.assert_allclose(clone(inputs, training=False)[level], value,
                               rtol=1e-6)


@pytest.mark.parametrize('kwargs,match', [
    (dict(min_level=6, max_level=7), r'min_level 6 is not a backbone level'),
    (dict(min_level=3, max_level=2), r'min_level <= max_level'),
    (dict(num_filters=15), r'even num_filters'),
])
def test_bad_levels_are_named(kwargs, match):
  with pytest.raises(ValueError, match=match):
    ssdlite.SSDLiteFeatures(SPECS, **kwargs)


def test_ssdlite_detector_is_small_and_trains(composites):
  sizes = {}
  for name in ('mnv4_retinanet_composites', 'mnv4_ssdlite_composites'):
    params = exp_factory.get_exp_config(name)
    if name == 'mnv4_retinanet_composites':  # Model Garden's dense FPN/head.
      params.override({'task': {'model': {
          'decoder': {'fpn': {'num_filters': 256, 'use_separable_conv': False}},
          'head': {'num_filters': 256, 'use_separable_conv': False}}}})
    params.override({'task': {
        'model': {'input_size': [64, 64, 3]},
        'train_data': {'input_path': f'{composites}/train-*',
                       'global_batch_size': 4}}})
    task = task_factory.get_task(params.task)
    model = task.build_model()
    batch = next(iter(task.build_inputs(params.task.train_data)))
    logs = task.train_step(batch, model, tf_keras.optimizers.SGD(0.01),
                           metrics=task.build_metrics(training=True))
    assert np.isfinite(float(logs['total_loss']))
    sizes[name] = sum(v.shape.num_elements() for v in model.trainable_weights)
  detector = model
  assert isinstance(detector.decoder, ssdlite.SSDLiteFeatures)
  outputs = detector(batch[0], training=False)
  assert sorted(outputs['cls_outputs']) == ['3', '4', '5', '6']
  # Backbone ~1.1M; Model Garden's dense FPN + 4-conv towers ~6.8M;
  # SSDLite features and separable predictors well under 0.5M.
  assert sizes['mnv4_ssdlite_composites'] < 0.25 * sizes[
      'mnv4_retinanet_composites']
