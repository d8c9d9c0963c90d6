"""Fuzzing of the image decoders: random and mutated bytes never crash.

Every example either decodes to a valid image (or model output) or fails
with a clean `tf.errors.OpError`; anything else (another exception, a
segfault that ends pytest) fails the test. Kept brief: a few dozen examples
per decoder.
"""
import io

from hypothesis import event
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf, tf_keras
from official.core import exp_factory
from official.vision.dataloaders import classification_input as mg_input

from univision import registry_imports  # pylint: disable=unused-import
from univision.core import input_checks
from univision.dataloaders import classification_input
from univision.serving import saved_model

_FUZZ = settings(max_examples=60, deadline=None, database=None)


def _encode(fmt: str) -> bytes:
  image = np.random.default_rng(0).integers(0, 256, (16, 12, 3), np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, fmt)
  return buffer.getvalue()


_VALID = {fmt: _encode(fmt) for fmt in ('PNG', 'JPEG', 'BMP', 'GIF')}


@st.composite
def encoded_bytes(draw) -> bytes:
  """Random bytes, or a valid image with bytes overwritten and/or cut."""
  kind = draw(st.sampled_from(['random', *_VALID]))
  if kind == 'random':
    return draw(st.binary(max_size=1000))
  data = bytearray(_VALID[kind])
  for _ in range(draw(st.integers(0, 6))):
    data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
  return bytes(data[:draw(st.integers(0, len(data)))]
               if draw(st.booleans()) else data)


def _example(encoded: bytes) -> bytes:
  return tf.train.Example(features=tf.train.Features(feature={
      'image/encoded': tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[encoded])),
      'image/class/label': tf.train.Feature(
          int64_list=tf.train.Int64List(value=[3])),
      'image/source_id': tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[b'fuzz/0'])),
  })).SerializeToString()


def _input_pipeline(is_training: bool, decode_jpeg_only: bool):
  """Our checked decoder then Model Garden's parser, as a tf.function."""
  decoder = classification_input.Decoder(
      where='fuzz', decode_jpeg_only=decode_jpeg_only)
  parser = mg_input.Parser(output_size=[32, 32], num_classes=10,
                           decode_jpeg_only=decode_jpeg_only)
  parse = parser.parse_fn(is_training)
  return tf.function(lambda s: parse(decoder.decode(s)),
                     input_signature=[tf.TensorSpec([], tf.string)])


@pytest.fixture(scope='module')
def pipelines():
  """The eval pipeline (any format) and the training one (JPEG only)."""
  return {'eval': _input_pipeline(False, False),
          'train_jpeg_only': _input_pipeline(True, True)}


@pytest.mark.parametrize('name', ['eval', 'train_jpeg_only'])
@_FUZZ
@given(encoded=encoded_bytes())
def test_classification_input_never_crashes(pipelines, name, encoded):
  try:
    image, label = pipelines[name](tf.constant(_example(encoded)))
  except tf.errors.OpError as e:
    event(f'rejected: {type(e).__name__}')
    return
  event('decoded')
  assert image.shape == (32, 32, 3) and int(label) == 3
  assert np.isfinite(image.numpy()).all()


@_FUZZ
@given(encoded_bytes())
def test_input_checks_accept_or_name_the_record(encoded):
  try:
    out = input_checks.check_encoded_image(tf.constant(encoded),
                                           tf.constant('fuzz/1'), 'here')
  except tf.errors.InvalidArgumentError as e:
    assert 'Corrupt or truncated image record in here: record fuzz/1' in (
        e.message)
    event('rejected')
    return
  event('accepted')
  assert out.numpy() == encoded


@pytest.fixture(scope='module')
def serving_module():
  """The export module behind an image_bytes SavedModel (random weights)."""
  params = exp_factory.get_exp_config('mnv4_fashion_mnist')
  params.override({'task': {'model': {'input_size': [32, 32, 3]}}})
  return saved_model.ClassificationModule(
      params=params, batch_size=None, input_image_size=[32, 32],
      input_type='image_bytes', num_channels=3)


@_FUZZ
@given(encoded=encoded_bytes())
def test_saved_model_bytes_preprocessing_never_crashes(serving_module,
                                                       encoded):
  try:
    outputs = serving_module.inference_from_image_bytes(
        tf.constant([encoded]))
  except tf.errors.OpError as e:
    event(f'rejected: {type(e).__name__}')
    return
  event('served')
  assert outputs['logits'].shape == (1, 10)
  assert np.isfinite(outputs['logits'].numpy()).all()
