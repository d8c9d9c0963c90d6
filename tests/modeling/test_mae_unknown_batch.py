"""All three MAE models run with an unknown batch size.

Validation batches with `drop_remainder=False` have no static batch size;
Hiera's mask-unit gather once failed there in `train.py` while every unit
test (fixed batches) passed. Each model is traced with a `None` batch
dimension and must run and give finite outputs of the fed batch size.
"""
import numpy as np
import pytest
import tensorflow as tf

from univision.modeling import hiera_mae
from univision.modeling import mae
from univision.modeling import rmae

_SIZE = 32


def _vit():
  return mae.MaskedAutoencoder((_SIZE, _SIZE), 'tiny', decoder_dim=32,
                               decoder_depth=1, decoder_heads=4)


def _hiera():
  return hiera_mae.HieraMaskedAutoencoder(
      (_SIZE * 2, _SIZE * 2), 'hiera_tiny', decoder_dim=32, decoder_depth=1,
      decoder_heads=4)


def _rmae():
  return rmae.RegionMaskedAutoencoder(
      (_SIZE, _SIZE), 'tiny', decoder_dim=32, decoder_depth=1,
      decoder_heads=4, num_regions=2, region_enc_dim=16, region_enc_heads=2,
      region_dec_dim=16, region_dec_heads=2, region_cross_depth=1)


def _inputs(name: str, batch: int):
  size = _SIZE * 2 if name == 'hiera' else _SIZE
  images = tf.random.stateless_normal([batch, size, size, 3], seed=[0, 1])
  if name != 'rmae':
    return images
  regions = tf.cast(tf.random.stateless_uniform(
      [batch, 2, size, size], seed=[0, 2]) < 0.5, tf.float32)
  return {'images': images, 'regions': regions}


def _spec(inputs):
  return tf.nest.map_structure(
      lambda t: tf.TensorSpec([None, *t.shape[1:]], t.dtype), inputs)


@pytest.mark.parametrize('name,build', [('vit', _vit), ('hiera', _hiera),
                                        ('rmae', _rmae)])
def test_forward_with_an_unknown_batch_size(name, build):
  model = build()
  inputs = _inputs(name, batch=3)
  model(inputs)
  traced = tf.function(lambda x: model(x, training=False),
                       input_signature=[_spec(inputs)])
  outputs = traced(inputs)
  assert outputs['predictions'].shape[0] == 3
  assert traced.get_concrete_function().structured_outputs[
      'predictions'].shape[0] is None
  for value in tf.nest.flatten(outputs):
    assert np.all(np.isfinite(value.numpy()))
