"""Encoded-image serving inputs that fail by index, not anonymously.

Model Garden's export modules decode the `image_bytes` input with
`tf.image.decode_image` inside a `tf.map_fn`. A bad input fails the whole
batch with `Unknown image file format` or `jpeg::Uncompress failed`, without
saying which input it was. A GIF or WebP image (even of one frame) fails
too, later and obscurely (`input must be 4-dimensional` in the resize):
`decode_image` returns them as animations, [frames, height, width,
channels].

`ImageBytesChecks` is a mixin for those modules: it checks every input first
(`input_checks.image_format_checks`) and fails with an `InvalidArgumentError`
naming the indices of the inputs that are not complete PNG, JPEG or BMP
images, and saying that GIF and WebP are not served.
"""
import tensorflow as tf, tf_keras

from univision.core import input_checks

_SERVED_FORMATS = ('png', 'jpeg', 'bmp')


def _is_served_image(encoded: tf.Tensor) -> tf.Tensor:
  checks = input_checks.image_format_checks(encoded)
  return tf.reduce_any(tf.stack([checks[f] for f in _SERVED_FORMATS]))


def check_image_bytes(inputs: tf.Tensor) -> tf.Tensor:
  """Returns `inputs`, failing with the indices of those not images.

  Args:
    inputs: A string tensor [batch] of encoded images.

  Returns:
    `inputs`, with the check as a control dependency.
  """
  ok = tf.map_fn(_is_served_image, inputs, fn_output_signature=tf.bool)
  bad = tf.where(tf.logical_not(ok))[:, 0]
  message = tf.strings.format(
      'image_bytes inputs {} (0-based, of {}) are not complete PNG, JPEG or '
      'BMP images: empty, truncated, another kind of data, or GIF/WebP (not '
      'served: convert them to PNG).', (bad, tf.size(inputs)), summarize=10)
  assertion = tf.debugging.Assert(tf.equal(tf.size(bad), 0), [message])
  with tf.control_dependencies([assertion]):
    return tf.identity(inputs)


class ImageBytesChecks:
  """Mixin for a Model Garden `export_base.ExportModule` (list it first)."""

  @tf.function
  def inference_from_image_bytes(self, inputs: tf.Tensor):
    return super(ImageBytesChecks, self).inference_from_image_bytes(
        check_image_bytes(inputs))
