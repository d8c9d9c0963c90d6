"""Checks that turn bad input into errors naming the file, key or record.

Model Garden's readers fail late and anonymously on bad input: a pattern that
matches no file, or an undecodable image deep inside `tf.data`, surfaces as a
bare `InvalidArgumentError` without saying which config key or record caused
it. These checks run first and say so.
"""
from collections.abc import Sequence

import tensorflow as tf, tf_keras

_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_PNG_TRAILER = b'IEND\xaeB`\x82'  # The IEND chunk type and its fixed CRC.
_JPEG_SOI = b'\xff\xd8'
_JPEG_TAIL_BYTES = 64  # Where to look for the JPEG end-of-image marker.


def split_input_path(input_path: str | Sequence[str]) -> list[str]:
  """The file patterns of a Model Garden `input_path` (str, CSV or list)."""
  if isinstance(input_path, str):
    return [p.strip() for p in input_path.split(',') if p.strip()]
  return [p for item in input_path for p in split_input_path(item)]


def check_input_path(input_path: str | Sequence[str], key: str) -> list[str]:
  """Returns the files `input_path` matches; raises naming `key` if none.

  Args:
    input_path: A file pattern, comma-separated patterns or a list of them.
    key: The config key being checked, for the error message.

  Returns:
    The sorted list of matched files.

  Raises:
    FileNotFoundError: if `input_path` is empty or a pattern matches nothing.
  """
  patterns = split_input_path(input_path)
  if not patterns:
    raise FileNotFoundError(f'{key} is empty: set it to the TFRecord files to '
                            'read.')
  files = []
  for pattern in patterns:
    matched = tf.io.gfile.glob(pattern)
    if not matched:
      raise FileNotFoundError(f'{key}: no file matches {pattern!r}.')
    files.extend(matched)
  return sorted(files)


def _tail_has_jpeg_end(encoded: tf.Tensor) -> tf.Tensor:
  length = tf.strings.length(encoded)
  start = tf.maximum(length - _JPEG_TAIL_BYTES, 0)
  tail = tf.cast(tf.io.decode_raw(tf.strings.substr(encoded, start,
                                                    length - start), tf.uint8),
                 tf.int32)
  return tf.reduce_any(tf.logical_and(tf.equal(tail[:-1], 0xFF),
                                      tf.equal(tail[1:], 0xD9)))


def image_format_checks(encoded: tf.Tensor) -> dict[str, tf.Tensor]:
  """Boolean tensors: is `encoded` a complete PNG, JPEG, GIF or BMP.

  Completeness is checked at both ends (PNG IEND chunk, JPEG EOI marker near
  the end, GIF trailer), which catches truncated and zero-length records.
  """
  length = tf.strings.length(encoded)
  head = tf.strings.substr(encoded, 0, 8)
  last = lambda n: tf.strings.substr(encoded, tf.maximum(length - n, 0), n)
  is_png = tf.logical_and(tf.equal(head, _PNG_SIGNATURE),
                          tf.equal(last(len(_PNG_TRAILER)), _PNG_TRAILER))
  is_jpeg = tf.logical_and(
      tf.equal(tf.strings.substr(encoded, 0, 2), _JPEG_SOI),
      _tail_has_jpeg_end(encoded))
  is_gif = tf.logical_and(tf.equal(tf.strings.substr(encoded, 0, 4), b'GIF8'),
                          tf.equal(last(1), b';'))
  is_bmp = tf.equal(tf.strings.substr(encoded, 0, 2), b'BM')
  return {'png': is_png, 'jpeg': is_jpeg, 'gif': is_gif, 'bmp': is_bmp}


def check_encoded_image(encoded: tf.Tensor, record_id: tf.Tensor,
                        where: str, jpeg_only: bool = False) -> tf.Tensor:
  """Returns `encoded`, failing with a message naming the record if corrupt.

  Args:
    encoded: A scalar string tensor, the encoded image of one record.
    record_id: A scalar string tensor naming the record (its source id).
    where: A `str` naming the data (config key and file pattern).
    jpeg_only: A `bool`; if True anything but a JPEG is an error, because
      the reader was told to decode JPEG only (`decode_jpeg_only`).

  Returns:
    `encoded`, with the check as a control dependency.
  """
  checks = image_format_checks(encoded)
  if jpeg_only:
    ok = checks['jpeg']
    expected = ('a complete JPEG (decode_jpeg_only is true; set it to false '
                'for PNG/BMP data)')
  else:
    # GIF is recognised but refused: Model Garden's parsers decode with
    # `decode_image`, which returns a GIF as frames and then fails in the
    # resize without naming the record.
    ok = tf.reduce_any(tf.stack([checks[f] for f in ('png', 'jpeg', 'bmp')]))
    expected = ('a complete PNG, JPEG or BMP image (GIF and WebP are not '
                'decoded by the parser)')
  message = tf.strings.join([
      f'Corrupt or truncated image record in {where}: record ', record_id,
      f' is not {expected}.'])
  assertion = tf.debugging.Assert(ok, [message])
  with tf.control_dependencies([assertion]):
    return tf.identity(encoded)
