"""univision: MobileNetV4 and friends as a TensorFlow Model Garden project."""
import os

# Model Garden and tensorflow-model-optimization are tf_keras (Keras 2) code.
# Make `tf.keras` agree with them if TensorFlow has not been imported yet.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
