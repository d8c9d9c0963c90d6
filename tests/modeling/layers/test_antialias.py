"""Anti-aliased downsampling: the blur filter, and where ConvNormAct puts it."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras

from univision.modeling.backbones import mobilenet_v4
from univision.modeling.layers import antialias
from univision.modeling.layers import conv_norm


def test_blur_pool_is_a_binomial_filter_with_zero_padding():
  x = np.zeros([1, 4, 4, 2], np.float32)
  x[0, 2, 1, 0] = 16.0
  x[0, :, :, 1] = 1.0
  out = antialias.BlurPool2D(3, 2)(tf.constant(x)).numpy()
  assert out.shape == (1, 2, 2, 2)
  # Channel 0: output (i, j) reads rows 2i-1..2i+1, columns 2j-1..2j+1;
  # the impulse at row 2, column 1 is at the centre row of output row 1,
  # at an edge column of both output columns: weight (2/4)(1/4) each.
  np.testing.assert_allclose(out[0, :, :, 0], [[0.0, 0.0], [2.0, 2.0]])
  # Channel 1: a constant map loses the weight that fell on the padding.
  np.testing.assert_allclose(out[0, 0, 0, 1], 9 / 16)
  np.testing.assert_allclose(out[0, 1, 1, 1], 1.0)
  layer = antialias.BlurPool2D(5, 2)
  assert antialias.BlurPool2D.from_config(layer.get_config()).get_config() \
      == layer.get_config()
  with pytest.raises(ValueError, match='filter_size 4'):
    antialias.BlurPool2D(4)
  with pytest.raises(ValueError, match="antialias='max'"):
    conv_norm.ConvNormAct(8, 3, strides=2, antialias='max')


@pytest.mark.parametrize('kind', ['avg', 'blur'])
def test_strided_conv_runs_at_stride_1_then_low_pass(kind):
  layer = conv_norm.ConvNormAct(4, 3, strides=2, antialias=kind,
                                padding='symmetric')
  x = tf.random.stateless_normal([1, 9, 8, 3], [1, 2])
  out = layer(x, training=False)
  assert layer.conv.strides == (1, 1)
  assert out.shape == (1, 4 if kind == 'avg' else 5, 4, 4)
  plain = conv_norm.ConvNormAct(4, 3, strides=1, padding='symmetric')
  plain(x)
  plain.set_weights(layer.get_weights())
  want = antialias.downsample(kind, 2)(plain(x, training=False))
  np.testing.assert_allclose(out, want, atol=1e-6)
  clone = conv_norm.ConvNormAct.from_config(layer.get_config())
  assert clone.get_config() == layer.get_config()
  stride_1 = conv_norm.ConvNormAct(4, 3, strides=1, antialias=kind)
  assert stride_1(x).shape == (1, 9, 8, 4)  # Nothing to anti-alias.


def test_anti_aliased_backbone_round_trips_and_keeps_the_stem_plain():
  backbone = mobilenet_v4.MobileNetV4(
      'MobileNetV4ConvBlurMedium',
      input_specs=tf_keras.layers.InputSpec(shape=[None, 64, 64, 3]))
  blocks = backbone.blocks
  assert blocks[0].aa is None  # The stem.
  strided = [b for b in blocks[1:] if b.get_config()['strides'] > 1]
  assert strided and all(b.get_config()['antialias'] == 'blur'
                         for b in strided)
  clone = mobilenet_v4.MobileNetV4.from_config(backbone.get_config())
  clone.set_weights(backbone.get_weights())
  x = tf.random.stateless_normal([1, 64, 64, 3], [3, 4])
  np.testing.assert_allclose(clone(x)['5'], backbone(x)['5'], atol=1e-5)
