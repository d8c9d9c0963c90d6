"""Tests for the `vit_mae` backbone: registration, endpoint, pooling, config."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras
from official.vision.configs import common
from official.vision.modeling import classification_model
from official.vision.modeling.backbones import factory

from univision.configs import backbones as backbone_cfg
from univision.modeling import mae
from univision.modeling.backbones import vit_mae


def _specs(height: int, width: int | None = None):
  return tf_keras.layers.InputSpec(shape=[None, height, width or height, 3])


def _build(input_specs=None, l2_regularizer=None, **fields):
  config = backbone_cfg.Backbone(type='vit_mae',
                                 vit_mae=backbone_cfg.ViTMAE(**fields))
  return factory.build_backbone(
      input_specs=input_specs or _specs(32), backbone_config=config,
      norm_activation_config=common.NormActivation(),
      l2_regularizer=l2_regularizer)


def test_registered_in_model_garden_factory_with_pooled_endpoint():
  backbone = _build()
  assert isinstance(backbone, vit_mae.ViTMAE)
  assert isinstance(backbone, mae.MAEEncoder)
  outputs = backbone(tf.zeros([2, 32, 32, 3]))
  assert list(outputs) == ['6'] and outputs['6'].shape == (2, 1, 1, 64)
  assert backbone.output_specs == {'6': tf.TensorShape([None, 1, 1, 64])}
  # Model Garden's classifier: pool of the 1x1 map, dropout, Dense.
  model = classification_model.ClassificationModel(backbone, 10,
                                                   input_specs=_specs(32))
  assert model(tf.zeros([2, 32, 32, 3])).shape == (2, 10)
  assert model.checkpoint_items['backbone'] is backbone


@pytest.mark.parametrize('pooling', vit_mae.POOLINGS)
def test_pooling_reads_the_encoders_normed_tokens(pooling):
  backbone = vit_mae.ViTMAE(64, 2, 4, 4, pooling=pooling)
  encoder = mae.MAEEncoder(64, 2, 4, 4, mask_ratio=0.0)
  images = tf.random.stateless_normal([2, 32, 32, 3], seed=[1, 2])
  backbone(images)
  encoder(images)
  encoder.set_weights(backbone.get_weights())  # Same weights, same order.
  latent = encoder(images)['latent'].numpy()
  want = latent[:, 1:].mean(axis=1) if pooling == 'mean' else latent[:, 0]
  np.testing.assert_allclose(backbone(images)['6'][:, 0, 0].numpy(), want,
                             atol=1e-6)


def test_no_token_is_masked_or_shuffled():
  backbone = vit_mae.ViTMAE(64, 1, 4, 4)
  images = tf.random.stateless_normal([1, 32, 32, 3], seed=[3, 4])
  first = backbone(images, training=True)['6'].numpy()
  np.testing.assert_array_equal(backbone(images, training=True)['6'], first)


def test_get_config_round_trip_keeps_outputs():
  backbone = vit_mae.ViTMAE(64, 2, 4, 4, pooling='token', name='vit')
  images = tf.random.stateless_normal([1, 32, 48, 3], seed=[5, 6])
  backbone(images)
  config = backbone.get_config()
  assert 'mask_ratio' not in config and config['pooling'] == 'token'
  clone = vit_mae.ViTMAE.from_config(config)
  assert clone.get_config() == config
  clone(images)
  clone.set_weights(backbone.get_weights())
  np.testing.assert_array_equal(clone(images)['6'], backbone(images)['6'])


@pytest.mark.parametrize('fields,specs,message', [
    ({'size': 'small'}, _specs(32), r"backbone.vit_mae.size='small'.*tiny"),
    ({'pooling': 'max'}, _specs(32), r"backbone.vit_mae.pooling='max'"),
    ({}, _specs(30), r'input_size 30x30.*multiple of 4.*size=.tiny'),
])
def test_bad_config_names_the_key(fields, specs, message):
  with pytest.raises(ValueError, match=message):
    _build(specs, **fields)


def test_l2_regularizer_is_refused_not_ignored():
  with pytest.raises(ValueError, match='losses.l2_weight_decay'):
    _build(l2_regularizer=tf_keras.regularizers.L2(1e-4))
