"""A SavedModel fed bytes that are not an image fails cleanly, by index."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras
from official.core import exp_factory
from official.core import task_factory

from univision import registry_imports  # pylint: disable=unused-import
from univision.serving import saved_model

_NOT_IMAGES = r'image_bytes inputs \[{}\] \(0-based, of 3\) are not complete'


@pytest.fixture(scope='module')
def serve(tmp_path_factory):
  """The image_bytes signature of a Conv-S classifier (random weights)."""
  folder = tmp_path_factory.mktemp('bad_input')
  params = exp_factory.get_exp_config('mnv4_fashion_mnist')
  params.override({'task': {'model': {'input_size': [32, 32, 3]}}})
  model = task_factory.get_task(params.task).build_model()
  checkpoint = tf.train.Checkpoint(model=model).save(str(folder / 'ckpt'))
  path = saved_model.export_from_params(params, checkpoint,
                                        str(folder / 'export'),
                                        input_type='image_bytes')
  return tf.saved_model.load(path).signatures['serving_default']


def _jpeg() -> bytes:
  image = np.random.default_rng(0).integers(0, 256, (24, 24, 3), np.uint8)
  return tf.io.encode_jpeg(image).numpy()


@pytest.mark.parametrize('bad', [
    np.random.default_rng(1).bytes(300), b'', _jpeg()[:len(_jpeg()) // 2],
    b'GIF89a' + bytes(20) + b';'])
def test_bad_input_fails_naming_its_index(serve, bad):
  good = _jpeg()
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=_NOT_IMAGES.format(1)):
    serve(tf.constant([good, bad, good]))


def test_every_bad_index_is_named_and_serving_goes_on(serve):
  good = _jpeg()
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=_NOT_IMAGES.format('0 2')):
    serve(tf.constant([b'', good, b'not an image']))
  logits = serve(tf.constant([good, good, good]))['logits']
  assert logits.shape == (3, 10) and np.isfinite(logits.numpy()).all()
