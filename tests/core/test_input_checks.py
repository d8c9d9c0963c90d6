"""Tests for the input checks: missing files and corrupt image records."""

import numpy as np
import pytest
import tensorflow as tf, tf_keras

from univision.core import input_checks


def _encoded(fmt: str) -> bytes:
  image = np.random.default_rng(0).integers(0, 255, (8, 8, 3), np.uint8)
  if fmt == 'png':
    return tf.io.encode_png(image).numpy()
  if fmt == 'jpeg':
    return tf.io.encode_jpeg(image).numpy()
  raise ValueError(fmt)


def test_check_input_path(tmp_path):
  (tmp_path / 'train-0.tfrecord').write_bytes(b'')
  (tmp_path / 'train-1.tfrecord').write_bytes(b'')
  pattern = str(tmp_path / 'train-*')
  assert len(input_checks.check_input_path(pattern, 'k')) == 2
  assert len(input_checks.check_input_path([pattern, pattern], 'k')) == 4
  with pytest.raises(FileNotFoundError,
                     match=r"task.train_data.input_path: no file matches '.*"
                     r"val-\*'"):
    input_checks.check_input_path(f'{pattern},{tmp_path}/val-*',
                                  'task.train_data.input_path')
  with pytest.raises(FileNotFoundError, match='is empty'):
    input_checks.check_input_path('', 'task.train_data.input_path')


@pytest.mark.parametrize('fmt', ['png', 'jpeg'])
def test_complete_images_pass_and_truncated_fail(fmt):
  data = _encoded(fmt)
  ok = input_checks.check_encoded_image(tf.constant(data), tf.constant('r1'),
                                        'here')
  assert ok.numpy() == data
  for broken in (data[:len(data) // 2], b'', b'\x00' * 40):
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match='Corrupt or truncated image record in here: '
                       'record.*r7'):
      input_checks.check_encoded_image(tf.constant(broken), tf.constant('r7'),
                                       'here')


def test_jpeg_only_rejects_png_with_advice():
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='decode_jpeg_only'):
    input_checks.check_encoded_image(tf.constant(_encoded('png')),
                                     tf.constant('r'), 'here', jpeg_only=True)


def test_format_checks_in_graph_mode():
  fn = tf.function(lambda s: input_checks.image_format_checks(s))
  checks = fn(tf.constant(_encoded('png')))
  assert bool(checks['png']) and not bool(checks['jpeg'])
  checks = fn(tf.constant(_encoded('jpeg')))
  assert bool(checks['jpeg']) and not bool(checks['png'])


def test_a_gif_record_is_refused_by_name():
  """Model Garden's parser would fail on its frames without the record."""
  gif = b'GIF89a' + bytes(20) + b';'
  assert bool(input_checks.image_format_checks(tf.constant(gif))['gif'])
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'record.*r3 is not a complete PNG, JPEG or BMP '
                     r'image \(GIF and WebP'):
    input_checks.check_encoded_image(tf.constant(gif), tf.constant('r3'),
                                     'here')
