"""WSOL model: CAMs explain the logits; ADL; serialization."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras
from official.vision.modeling import backbones

from univision import registry_imports  # pylint: disable=unused-import
from univision.configs import wsol as wsol_cfg
from univision.modeling import wsol_model
from univision.modeling.layers import attention_dropout


def _model(**kwargs):
  config = wsol_cfg.WSOLModel()
  backbone = backbones.factory.build_backbone(
      tf_keras.layers.InputSpec(shape=[None, 64, 64, 3]), config.backbone,
      config.norm_activation)
  return wsol_model.WSOLModel(backbone, num_classes=5, **kwargs)


@pytest.mark.parametrize('feature_dim', [16, 0])
def test_cam_mean_plus_bias_is_the_logit(feature_dim):
  model = _model(feature_dim=feature_dim)
  images = tf.random.stateless_uniform([2, 64, 64, 3], [1, 2])
  logits = model(images, training=False)
  model.classifier.bias.assign(tf.range(5, dtype=tf.float32))
  logits = model(images, training=False)
  for c in range(5):
    cams = model.cams(images, tf.fill([2], c))
    assert cams.shape == (2, 4, 4)  # Level 4 of 64 px: stride 16.
    np.testing.assert_allclose(
        tf.reduce_mean(cams, [1, 2]) + c, logits[:, c], rtol=1e-4, atol=1e-4)


def test_unknown_feature_level_is_named():
  model = _model(feature_level='7')
  with pytest.raises(ValueError, match=r"feature_level '7'.*\['2', '3', '4', '5'\]"):
    model(tf.zeros([1, 64, 64, 3]))


def test_config_round_trip_rebuilds_the_same_model():
  model = _model(feature_dim=8, adl={'drop_rate': 0.5, 'threshold': 0.8},
                 kernel_regularizer=tf_keras.regularizers.l2(1e-4))
  images = tf.random.stateless_uniform([1, 64, 64, 3], [3, 4])
  model(images)
  clone = wsol_model.WSOLModel.from_config(model.get_config())
  clone(images)
  clone.set_weights(model.get_weights())
  np.testing.assert_allclose(clone(images, training=False),
                             model(images, training=False), atol=1e-5)
  assert clone.get_config()['adl'] == {'drop_rate': 0.5, 'threshold': 0.8}


def test_adl_drops_the_peak_or_weights_by_importance():
  x = tf.constant([[[[1.0], [2.0]], [[3.0], [10.0]]]])  # [1, 2, 2, 1].
  layer = attention_dropout.AttentionDropout(drop_rate=1.0, threshold=0.5)
  drop, importance = layer.masks(x)
  # Attention >= 0.5 x 10 is dropped: only the 10.
  np.testing.assert_array_equal(drop.numpy()[0, ..., 0], [[1, 1], [1, 0]])
  np.testing.assert_allclose(importance.numpy()[0, ..., 0],
                             tf.sigmoid(x)[0, ..., 0])
  np.testing.assert_array_equal(layer(x, training=True).numpy()[0, ..., 0],
                                [[1, 2], [3, 0]])
  always_importance = attention_dropout.AttentionDropout(drop_rate=0.0)
  np.testing.assert_allclose(always_importance(x, training=True),
                             x * tf.sigmoid(x))
  np.testing.assert_array_equal(layer(x, training=False), x)
  with pytest.raises(ValueError, match='threshold=1.5'):
    attention_dropout.AttentionDropout(threshold=1.5)
  assert attention_dropout.AttentionDropout.from_config(
      layer.get_config()).get_config() == layer.get_config()


def test_adl_reads_the_heads_relu_features_only():
  model = _model(feature_dim=8, adl={'drop_rate': 1.0, 'threshold': 0.5})
  seen = []
  call = model._adl.call  # pylint: disable=protected-access
  model._adl.call = lambda x, training=None: seen.append(x) or call(  # pylint: disable=protected-access
      x, training=training)
  model(tf.random.stateless_normal([2, 64, 64, 3], [5, 6]), training=True)
  (features,) = seen
  assert features.shape[-1] == 8 and float(tf.reduce_min(features)) >= 0.0
  with pytest.raises(ValueError, match='task.adl needs task.model.feature_dim'):
    _model(feature_dim=0, adl={'drop_rate': 0.5, 'threshold': 0.8})


def test_output_stride_8_gives_16x16_maps_at_128px():
  config = wsol_cfg.WSOLModel()
  config.backbone.mobilenet_v4.output_stride = 8
  backbone = backbones.factory.build_backbone(
      tf_keras.layers.InputSpec(shape=[None, 128, 128, 3]), config.backbone,
      config.norm_activation)
  model = wsol_model.WSOLModel(backbone, num_classes=5, feature_level='3')
  images = tf.zeros([1, 128, 128, 3])
  model(images)
  cams = model.cams(images, tf.constant([2]))
  assert cams.shape == (1, 16, 16)
