"""Fashion-MNIST as Model Garden classification TFRecords, offline.

The images come from Debian's `dataset-fashion-mnist` package
(`/usr/share/datasets/fashion-mnist`), which `make` installs where apt
exists; without it, the standard Keras loader downloads the same files.

Usage:
  python -m univision.data.fashion_mnist --output_dir=data/fashion_mnist
"""
import os

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf, tf_keras

from univision.core import logging_setup
from univision.data import idx
from univision.data import tfrecords

DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'
CLASS_NAMES = ('t-shirt/top', 'trouser', 'pullover', 'dress', 'coat',
               'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot')
_FILES = {'train': ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
          'test': ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')}


def read_split(source_dir: str, split: str) -> tuple[np.ndarray, np.ndarray]:
  """Reads one split ('train' or 'test') from a folder of IDX.gz files.

  Raises:
    FileNotFoundError: naming the missing file.
    ValueError: naming a malformed file, or images and labels that disagree.
  """
  image_file, label_file = (os.path.join(source_dir, f) for f in _FILES[split])
  for path in (image_file, label_file):
    if not os.path.exists(path):
      raise FileNotFoundError(f'Fashion-MNIST file {path} is missing.')
  images, labels = idx.read_idx(image_file), idx.read_idx(label_file)
  if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
    raise ValueError(f'{image_file} ({images.shape}) and {label_file} '
                     f'({labels.shape}) do not form an image/label set.')
  if labels.max(initial=0) >= len(CLASS_NAMES):
    raise ValueError(f'{label_file}: label {labels.max()} is out of range.')
  return images, labels


def load(source_dir: str = DEBIAN_DIR) -> dict[str, tuple[np.ndarray,
                                                          np.ndarray]]:
  """Both splits, from `source_dir` or, if it is absent, the Keras download."""
  if os.path.isdir(source_dir):
    return {split: read_split(source_dir, split) for split in _FILES}
  logging.warning('%s not found; downloading Fashion-MNIST with Keras.',
                  source_dir)
  (x_train, y_train), (x_test, y_test) = (
      tf_keras.datasets.fashion_mnist.load_data())
  return {'train': (x_train, y_train), 'test': (x_test, y_test)}


def build(output_dir: str, source_dir: str = DEBIAN_DIR,
          max_per_split: int | None = None) -> dict[str, list[str]]:
  """Writes `train-*` (8 shards) and `test-*` (2 shards) TFRecords.

  Args:
    output_dir: A `str` folder for the TFRecords.
    source_dir: A `str` folder of the IDX.gz files.
    max_per_split: An `int` to keep only the first N images of each split.

  Returns:
    A dict from split name to its shard paths.
  """
  shards = {'train': 8, 'test': 2}
  written = {}
  for split, (images, labels) in load(source_dir).items():
    if max_per_split:
      images, labels = images[:max_per_split], labels[:max_per_split]
    written[split] = tfrecords.write_classification_tfrecords(
        images, labels, os.path.join(output_dir, split), shards[split],
        source_prefix=f'fashion_mnist/{split}')
  return written


def main(_):
  flags_ = flags.FLAGS
  written = build(flags_.output_dir, flags_.source_dir, flags_.max_per_split)
  for split, paths in written.items():
    print(f'{split}: {len(paths)} shards in {flags_.output_dir}')


if __name__ == '__main__':
  flags.DEFINE_string('output_dir', 'data/fashion_mnist',
                      'Folder for the TFRecords.')
  flags.DEFINE_string('source_dir', DEBIAN_DIR,
                      'Folder of the Fashion-MNIST IDX.gz files.')
  flags.DEFINE_integer('max_per_split', None,
                       'Keep only the first N images of each split.')
  logging_setup.setup()
  app.run(main)
