"""Shared fixtures: small Fashion-MNIST-format data made by the tests."""
import gzip
import os
import struct

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

# timm (through torch's triton) segfaults when imported after TensorFlow, so
# it is imported before any test module loads TensorFlow.
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import timm  # pylint: disable=g-import-not-at-top,unused-import

import numpy as np  # pylint: disable=g-import-not-at-top
import pytest  # pylint: disable=g-import-not-at-top

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A RetinaNet head with one conv per tower instead of four, for tests of
# patches, studies and export: they need the head's kinds of layer, not its
# depth, and its training step traces ~40% faster.
SMALL_HEAD = {'num_convs': 1}
SMALL_HEAD_OVERRIDE = 'task.model.head.num_convs=1'


def write_idx(path: str, array: np.ndarray) -> None:
  """Writes a uint8 array as a gzip IDX file (the Fashion-MNIST format)."""
  header = struct.pack('>BBBB', 0, 0, 0x08, array.ndim) + struct.pack(
      f'>{array.ndim}I', *array.shape)
  with gzip.open(path, 'wb') as f:
    f.write(header + array.astype(np.uint8).tobytes())


def make_fake_fashion_mnist(folder: str, num_train: int = 96,
                            num_test: int = 32, seed: int = 0) -> str:
  """IDX.gz files laid out like Debian's dataset-fashion-mnist.

  Each class is a bright bar at a class-specific row, on noise, so that a
  classifier has something to learn.
  """
  rng = np.random.default_rng(seed)
  os.makedirs(folder, exist_ok=True)
  for prefix, n in (('train', num_train), ('t10k', num_test)):
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for image, label in zip(images, labels):
      image[2 + 2 * label:4 + 2 * label, 4:24] = 255
    write_idx(os.path.join(folder, f'{prefix}-images-idx3-ubyte.gz'), images)
    write_idx(os.path.join(folder, f'{prefix}-labels-idx1-ubyte.gz'), labels)
  return folder


@pytest.fixture(scope='session')
def fake_fmnist_source(tmp_path_factory) -> str:
  return make_fake_fashion_mnist(str(tmp_path_factory.mktemp('fmnist_src')))


@pytest.fixture(scope='session')
def fake_fmnist_tfrecords(tmp_path_factory, fake_fmnist_source) -> str:
  """TFRecords written by univision.data.fashion_mnist from the fake files."""
  from univision.data import fashion_mnist  # pylint: disable=g-import-not-at-top
  out = str(tmp_path_factory.mktemp('fmnist_tfrecords'))
  fashion_mnist.build(out, source_dir=fake_fmnist_source)
  return out


@pytest.fixture(scope='session')
def composites(tmp_path_factory, fake_fmnist_source) -> str:
  """A small tops_on_photos detection task (16 train, 8 val, 8 test)."""
  from univision.data import detection_composites  # pylint: disable=g-import-not-at-top
  out = str(tmp_path_factory.mktemp('composites'))
  detection_composites.build(out, ['tops_on_photos'], num_train=16,
                             num_val=8, num_test=8,
                             source_dir=fake_fmnist_source)
  return os.path.join(out, 'tops_on_photos')


@pytest.fixture(scope='module')
def classifier_checkpoint(tmp_path_factory, fake_fmnist_tfrecords):
  """A 32x32 Conv-S `mnv4_fashion_mnist` checkpoint (random weights).

  Returns a dict: `path`, `model`, `override` (the experiment overrides
  pointing at the fake records) and `data` (their folder).
  """
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from official.core import exp_factory
  from official.core import task_factory
  from univision import registry_imports  # pylint: disable=unused-import
  # pylint: enable=g-import-not-at-top
  override = (f"task.train_data.input_path='{fake_fmnist_tfrecords}/train-*',"
              f"task.validation_data.input_path='{fake_fmnist_tfrecords}/"
              "test-*',task.model.input_size=[32,32,3]")
  params = exp_factory.get_exp_config('mnv4_fashion_mnist')
  params.override({'task': {'model': {'input_size': [32, 32, 3]}}})
  model = task_factory.get_task(params.task).build_model()
  path = tf.train.Checkpoint(model=model).save(
      str(tmp_path_factory.mktemp('ckpt') / 'ckpt'))
  return dict(path=path, model=model, override=override,
              data=fake_fmnist_tfrecords)
