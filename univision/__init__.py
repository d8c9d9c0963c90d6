"""univision: MobileNetV4 and friends as a TensorFlow Model Garden project."""
import os

# Model Garden and tensorflow-model-optimization are tf_keras (Keras 2) code.
# Make `tf.keras` agree with them if TensorFlow has not been imported yet.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')


def create_model(*args, **kwargs):
  """`univision.interop.create.create_model` (imported on first use)."""
  from univision.interop import create  # pylint: disable=g-import-not-at-top
  return create.create_model(*args, **kwargs)


def list_models(*args, **kwargs):
  """`univision.interop.create.list_models` (imported on first use)."""
  from univision.interop import create  # pylint: disable=g-import-not-at-top
  return create.list_models(*args, **kwargs)
