"""Tests for the Hiera backbone: counts, block table, endpoints, masking."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras
from official.vision.configs import common
from official.vision.modeling import classification_model
from official.vision.modeling.backbones import factory

from univision.configs import backbones as backbone_cfg
from univision.efficiency import counting
from univision.modeling.backbones import hiera
from univision.modeling.backbones import hiera_specs as specs
from univision.modeling.layers import hiera_tokens

# Trainable parameters at 224 px with a 1000-class classifier: timm's and
# the official release's figures (seed_methods.md f.1, measured).
PARAMS_1000_CLASSES = {
    'hiera_tiny': 27_910_216,
    'hiera_small': 35_008_072,
    'hiera_base': 51_524_968,
    'hiera_base_plus': 69_896_616,
    'hiera_large': 213_739_912,
    'hiera_huge': 672_779_752,
}


def _specs(height: int, width: int | None = None):
  return tf_keras.layers.InputSpec(shape=[None, height, width or height, 3])


@pytest.mark.parametrize('model_id', sorted(PARAMS_1000_CLASSES))
def test_exact_parameter_count_at_full_size(model_id):
  # Built in a TF1-style graph: the variables exist with their shapes, but
  # no initializer runs, so hiera_huge (2.7 GB of float32) costs no memory.
  with tf.Graph().as_default():
    backbone = hiera.Hiera(model_id, input_specs=_specs(224))
    model = classification_model.ClassificationModel(backbone, 1000,
                                                     input_specs=_specs(224))
    assert counting.count_params(model) == PARAMS_1000_CLASSES[model_id]


def test_hiera_base_block_table():
  """Per block (dim, heads, pooled tokens, unit tokens, mask-unit attn)."""
  rows = specs.block_specs(specs.MODEL_SPECS['hiera_base'])
  got = [(r.dim, r.num_heads, r.q_stride**2, r.mask_unit_size**2,
          r.mask_unit_attn) for r in rows]
  want = ([(96, 1, 1, 64, True)] * 2 + [(192, 2, 4, 16, True)] +
          [(192, 2, 1, 16, True)] * 2 + [(384, 4, 4, 4, True)] +
          [(384, 4, 1, 4, False)] * 15 + [(768, 8, 4, 1, False)] +
          [(768, 8, 1, 1, False)] * 2)
  assert got == want


def test_mae_q_pool_keeps_stage_4_at_stride_16():
  backbone = hiera.Hiera('hiera_tiny', input_specs=_specs(64), q_pool=2)
  assert [r.q_stride for r in backbone.block_specs] == [1, 2, 1, 2] + [1] * 8
  assert backbone.output_specs['4'][1:3] == backbone.output_specs['5'][1:3]
  assert backbone.output_specs['5'] == (None, 4, 4, 768)


def test_endpoints_at_224():
  backbone = hiera.Hiera('hiera_tiny')
  outputs = backbone(tf.zeros([1, 224, 224, 3]), training=False)
  for level, (size, channels) in {'2': (56, 96), '3': (28, 192),
                                  '4': (14, 384), '5': (7, 768)}.items():
    assert outputs[level].shape == (1, size, size, channels)
    assert backbone.output_specs[level] == (None, size, size, channels)
  assert outputs[hiera.HEAD_ENDPOINT].shape == (1, 1, 1, 768)
  assert set(backbone.output_specs) == {'2', '3', '4', '5'}
  assert backbone.num_mask_units == 49


def test_non_square_input_and_head_is_norm_of_mean():
  backbone = hiera.Hiera('hiera_tiny', input_specs=_specs(64, 96))
  images = tf.random.stateless_normal([2, 64, 96, 3], seed=[0, 1])
  outputs = backbone(images)
  assert outputs['5'].shape == (2, 2, 3, 768)
  # The stage-4 map holds the head's input tokens, rerolled.
  want = backbone.get_layer('head_norm')(
      tf.reduce_mean(outputs['5'], axis=[1, 2]))
  np.testing.assert_allclose(outputs['6'][:, 0, 0].numpy(), want.numpy(),
                             atol=1e-5)


def test_masking_keeps_19_of_49_units_and_their_tokens():
  backbone = hiera.Hiera('hiera_tiny')
  keep = hiera_tokens.random_keep_mask(2, backbone.num_mask_units, 0.6, seed=1)
  outputs = backbone(tf.zeros([2, 224, 224, 3]), keep_mask=keep)
  assert sorted(outputs) == ['2', '3', '4', '5']
  for level, (side, channels) in {'2': (8, 96), '3': (4, 192), '4': (2, 384),
                                  '5': (1, 768)}.items():
    assert outputs[level].shape == (2, 19, side, side, channels)


def test_masked_units_do_not_leak_into_kept_ones():
  backbone = hiera.Hiera('hiera_tiny', input_specs=_specs(64, 96))
  keep = tf.constant([[True, False, True, False, False, True]] * 2)
  images = tf.random.stateless_normal([2, 64, 96, 3], seed=[2, 3])
  pixels = tf.repeat(tf.repeat(tf.reshape(keep, [2, 2, 3, 1]), 32, axis=1),
                     32, axis=2)
  noise = tf.random.stateless_normal(images.shape, seed=[4, 5])
  changed = tf.where(pixels, images, noise)
  before = backbone(images, keep_mask=keep)
  after = backbone(changed, keep_mask=keep)
  for level in before:
    np.testing.assert_allclose(after[level].numpy(), before[level].numpy(),
                               atol=1e-5)
  # With all units kept, the per-unit stage-1 maps tile the dense map.
  everything = backbone(images, keep_mask=tf.ones([2, 6], tf.bool))['2']
  tiled = tf.reshape(tf.transpose(tf.reshape(everything, [2, 2, 3, 8, 8, 96]),
                                  [0, 1, 3, 2, 4, 5]), [2, 16, 24, 96])
  np.testing.assert_allclose(tiled.numpy(), backbone(images)['2'].numpy(),
                             atol=1e-5)


@pytest.mark.parametrize('mask,message', [
    (tf.ones([1, 5], tf.bool), r'\[batch, 6\] bool'),
    (tf.ones([1, 6], tf.float32), r'\[batch, 6\] bool'),
    (tf.constant([[True] * 6, [True] * 5 + [False]]), 'same number'),
])
def test_bad_keep_masks_are_rejected(mask, message):
  backbone = hiera.Hiera('hiera_tiny', input_specs=_specs(64, 96))
  with pytest.raises((ValueError, tf.errors.InvalidArgumentError),
                     match=message):
    backbone(tf.zeros([mask.shape[0], 64, 96, 3]), keep_mask=mask)


def test_masking_needs_the_default_mask_unit():
  backbone = hiera.Hiera('hiera_tiny', input_specs=_specs(64),
                         mask_unit_size=4)
  with pytest.raises(ValueError, match='mask_unit_size == q_stride'):
    backbone(tf.zeros([1, 64, 64, 3]), keep_mask=tf.ones([1, 16], tf.bool))


@pytest.mark.parametrize('height,width', [(100, 100), (224, 200), (None, None)])
def test_bad_input_size_names_the_size(height, width):
  with pytest.raises(ValueError, match=f'input size {height}x{width}.*'
                     'multiples of 32'):
    hiera.Hiera('hiera_tiny', input_specs=_specs(height, width))


@pytest.mark.parametrize('kwargs,message', [
    ({'q_pool': 4}, 'q_pool=4'),
    ({'mask_unit_size': 6}, 'mask_unit_size=6'),
    ({'mask_unit_size': 2}, 'pooled away'),
])
def test_bad_architecture_arguments(kwargs, message):
  with pytest.raises(ValueError, match=message):
    hiera.Hiera('hiera_tiny', input_specs=_specs(64), **kwargs)


def test_linear_stochastic_depth():
  backbone = hiera.Hiera('hiera_tiny', input_specs=_specs(64),
                         drop_path_rate=0.2)
  rates = [b.get_config()['stochastic_depth_drop_rate']
           for b in backbone.blocks]
  np.testing.assert_allclose(rates, np.linspace(0, 0.2, 12))


def test_training_step_reaches_every_weight():
  backbone = hiera.Hiera('hiera_tiny', input_specs=_specs(64),
                         drop_path_rate=0.1)
  model = classification_model.ClassificationModel(backbone, 10,
                                                   input_specs=_specs(64))
  with tf.GradientTape() as tape:
    logits = model(tf.random.stateless_normal([2, 64, 64, 3], seed=[6, 7]),
                   training=True)
    loss = tf.reduce_sum(logits**2)
  grads = tape.gradient(loss, model.trainable_weights)
  assert all(g is not None for g in grads)


def test_registered_in_model_garden_factory():
  config = backbone_cfg.Backbone(
      type='hiera', hiera=backbone_cfg.Hiera(model_id='hiera_small', q_pool=2,
                                             include_head=False))
  backbone = factory.build_backbone(
      input_specs=_specs(64), backbone_config=config,
      norm_activation_config=common.NormActivation(),
      l2_regularizer=tf_keras.regularizers.L2(1e-5))
  assert isinstance(backbone, hiera.Hiera)
  assert backbone.get_config()['q_pool'] == 2
  assert len(backbone.blocks) == 16
  assert sorted(backbone(tf.zeros([1, 64, 64, 3]))) == ['2', '3', '4', '5']
  assert backbone.losses  # The L2 regularizer reaches the kernels.


def test_unknown_model_id_names_key_and_choices():
  config = backbone_cfg.Backbone(
      type='hiera', hiera=backbone_cfg.Hiera(model_id='hiera_giant'))
  with pytest.raises(ValueError, match=r"hiera.model_id='hiera_giant'.*"
                     'hiera_tiny'):
    factory.build_backbone(input_specs=_specs(224), backbone_config=config,
                           norm_activation_config=common.NormActivation())


def test_get_config_round_trip_keeps_outputs():
  backbone = hiera.Hiera('hiera_small', input_specs=_specs(64, 96),
                         q_pool=2, drop_path_rate=0.1,
                         kernel_regularizer=tf_keras.regularizers.L2(1e-4))
  config = backbone.get_config()
  clone = hiera.Hiera.from_config(config)
  assert clone.get_config() == config
  clone.set_weights(backbone.get_weights())
  images = tf.random.stateless_normal([1, 64, 96, 3], seed=[8, 9])
  np.testing.assert_allclose(clone(images)['6'].numpy(),
                             backbone(images)['6'].numpy(), atol=1e-5)
