"""univision's MobileNetV4 equals Model Garden's on the same weights."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras
from official.vision.modeling.backbones import mobilenet as mg_mobilenet

from univision.interop import model_garden
from univision.modeling.backbones import mobilenet_v4

MODEL_IDS = ['MobileNetV4ConvSmall', 'MobileNetV4ConvMedium',
             'MobileNetV4ConvLarge', 'MobileNetV4HybridMedium',
             'MobileNetV4HybridLarge']


def _randomize(model: tf_keras.Model, seed: int) -> None:
  """Random BN statistics/affine and layer scales, so no block is trivial."""
  rng = np.random.default_rng(seed)
  for variable in model.weights:
    name = variable.name
    if 'moving_variance' in name:
      value = rng.uniform(0.5, 1.5, variable.shape)
    elif 'moving_mean' in name or 'beta' in name:
      value = rng.uniform(-0.1, 0.1, variable.shape)
    elif 'gamma' in name or 'layer_scale' in name:
      value = rng.uniform(0.5, 1.0, variable.shape)
    else:
      continue
    variable.assign(value.astype(np.float32))


@pytest.mark.parametrize('model_id', MODEL_IDS)
def test_endpoints_match_model_garden(model_id):
  source = mg_mobilenet.MobileNet(model_id=model_id)
  _randomize(source, seed=0)
  target = mobilenet_v4.MobileNetV4(model_id, padding='same')
  model_garden.copy_model_garden_weights(source, target)
  # Model Garden's Mobile MQA only works on square maps.
  images = tf.random.normal([2, 96, 96, 3], seed=1)
  want = source(images, training=False)
  got = target(images, training=False)
  for level in ('2', '3', '4', '5'):
    scale = float(tf.reduce_max(tf.abs(want[level])))
    assert scale > 0.1
    np.testing.assert_allclose(got[level].numpy(), want[level].numpy(),
                               atol=1e-5, rtol=0)
  # The 1x1x1280 head output.
  np.testing.assert_allclose(got[mobilenet_v4.HEAD_ENDPOINT].numpy(),
                             want[max(want)].numpy(), atol=1e-5, rtol=0)


def test_wrong_architecture_is_rejected():
  source = mg_mobilenet.MobileNet(model_id='MobileNetV4ConvSmall')
  target = mobilenet_v4.MobileNetV4('MobileNetV4ConvMedium')
  with pytest.raises(ValueError, match='not the same architecture|does not '
                     'fit|variables'):
    model_garden.copy_model_garden_weights(source, target)
