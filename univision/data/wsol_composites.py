"""Offline weakly supervised localization data with a two-level label hierarchy.

  python -m univision.data.wsol_composites --output_dir=data/wsol_composites

Like iNatLoc500's evaluation images (one instance per image, with a box),
each image here holds ONE Fashion-MNIST item pasted onto a random crop of a
real photo bundled with scikit-image / scikit-learn, with its exact box
(the tight box of the pasted mask) and its mask (for PxAP). Labels form a
two-level hierarchy (`HIERARCHY`): the 10 Fashion-MNIST classes ('fine')
and four groups ('coarse': tops, bottoms & dresses, footwear, bags), so a
classifier can be trained at either granularity and evaluated on the same
boxes.

Output: `train-*`, `val-*`, `test-*` TFRecords in `wsol_records`' format
(finest label per image) and `hierarchy.json` (`label_hierarchy`).
"""
import os

from absl import app
from absl import flags
import numpy as np
from official.vision.data import image_utils

from univision.data import detection_composites
from univision.data import fashion_mnist
from univision.data import label_hierarchy
from univision.data import wsol_records

COARSE = ('tops', 'bottoms & dresses', 'footwear', 'bags')
# Fashion-MNIST class -> its group in `COARSE`.
_GROUP = {'t-shirt/top': 0, 'pullover': 0, 'coat': 0, 'shirt': 0,
          'trouser': 1, 'dress': 1, 'sandal': 2, 'sneaker': 2,
          'ankle boot': 2, 'bag': 3}
HIERARCHY = label_hierarchy.LabelHierarchy(
    levels=('fine', 'coarse'),
    names={'fine': fashion_mnist.CLASS_NAMES, 'coarse': COARSE},
    parents={'coarse': tuple(_GROUP[n] for n in fashion_mnist.CLASS_NAMES)})
SPLITS = ('train', 'val', 'test')


def compose(rng: np.random.Generator, bank: detection_composites.ObjectBank,
            photos: list[np.ndarray], image_size: int,
            object_size: tuple[int, int]
            ) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
  """One image with one item.

  Returns:
    (image uint8 [S, S, 3], fine label, box [4] as pixel ymin, xmin, ymax,
    xmax with exclusive max, mask bool [S, S]).
  """
  image = detection_composites.background_crop(
      rng, photos[rng.integers(len(photos))], image_size).astype(np.float32)
  label = int(rng.integers(len(fashion_mnist.CLASS_NAMES)))
  while True:  # An item whose mask is empty (a blank image) is redrawn.
    intensity, mask = bank.sample(
        rng, fashion_mnist.CLASS_NAMES[label],
        int(rng.integers(object_size[0], object_size[1] + 1)))
    if mask.any():
      break
  h, w = mask.shape
  top = int(rng.integers(image_size - h + 1))
  left = int(rng.integers(image_size - w + 1))
  region = image[top:top + h, left:left + w]
  region[mask] = intensity[mask, None] * rng.uniform(80, 255, 3)
  full_mask = np.zeros((image_size, image_size), bool)
  full_mask[top:top + h, left:left + w] = mask
  rows, cols = np.nonzero(full_mask)
  box = np.array([rows.min(), cols.min(), rows.max() + 1, cols.max() + 1])
  return image.clip(0, 255).astype(np.uint8), label, box, full_mask


def write_splits(output_dir: str, num_train: int, num_eval: int, seed: int,
                 source_dir: str, hierarchy, example) -> dict[str, list[str]]:
  """Writes composites to train / val / test and the label hierarchy.

  Items come from Fashion-MNIST's train split for `train` and from its
  test split for `val` and `test`, so no item appears in both.

  Args:
    output_dir: The folder (`<split>-*` shards and `hierarchy.json`).
    num_train: Images in `train`.
    num_eval: Images in `val` and in `test` each.
    seed: Split i draws from `np.random.default_rng([seed, i])`.
    source_dir: Fashion-MNIST's IDX.gz folder.
    hierarchy: The label hierarchy saved as `hierarchy.json`.
    example: (rng, object bank, background photos, split, index) -> the
      image's `tf.train.Example` (`wsol_records.wsol_example`).

  Returns:
    The shard paths of each split.
  """
  data = fashion_mnist.load(source_dir)
  banks = {'train': detection_composites.ObjectBank(*data['train']),
           'test': detection_composites.ObjectBank(*data['test'])}
  photos = [detection_composites.rgb(load())
            for load in detection_composites.BACKGROUNDS.values()]
  os.makedirs(output_dir, exist_ok=True)
  written = {}
  for index, split in enumerate(SPLITS):
    rng = np.random.default_rng([seed, index])
    bank = banks['train' if split == 'train' else 'test']
    count = num_train if split == 'train' else num_eval
    examples = [example(rng, bank, photos, split, i) for i in range(count)]
    written[split] = wsol_records.write_wsol_tfrecords(
        examples, os.path.join(output_dir, split), num_shards=2)
  label_hierarchy.save(hierarchy, os.path.join(output_dir, 'hierarchy.json'))
  return written


def build(output_dir: str, num_train: int = 3000, num_eval: int = 500,
          image_size: int = 128, object_size: tuple[int, int] = (40, 96),
          seed: int = 0, source_dir: str = fashion_mnist.DEBIAN_DIR
          ) -> dict[str, list[str]]:
  """Writes the three splits and `hierarchy.json`; returns the shard paths."""
  if not 0 < object_size[0] <= object_size[1] <= image_size:
    raise ValueError(f'object_size {object_size} must be increasing and '
                     f'within the {image_size}px image.')

  def example(rng, bank, photos, split, i):
    image, label, box, mask = compose(rng, bank, photos, image_size,
                                      object_size)
    return wsol_records.wsol_example(
        image_utils.encode_image(image, 'PNG'), image_size, image_size,
        label, box[None], f'{split}/{i}', f'{split} image {i}', mask)

  return write_splits(output_dir, num_train, num_eval, seed, source_dir,
                      HIERARCHY, example)


def define_flags(output_dir: str, num_train: int, num_eval: int) -> None:
  """The command line of a composite-writing module, with its defaults."""
  flags.DEFINE_string('output_dir', output_dir, 'Output folder.')
  flags.DEFINE_integer('num_train', num_train, 'Training images.')
  flags.DEFINE_integer('num_eval', num_eval, 'Images in val and in test each.')
  flags.DEFINE_string('source_dir', fashion_mnist.DEBIAN_DIR,
                      'Fashion-MNIST IDX.gz folder.')


def run(build_fn) -> None:
  """Calls `build_fn` with the flags of `define_flags`; prints the shards."""
  f = flags.FLAGS
  for split, paths in build_fn(f.output_dir, f.num_train, f.num_eval,
                               source_dir=f.source_dir).items():
    print(split, paths)


if __name__ == '__main__':
  define_flags('data/wsol_composites', 3000, 500)
  app.run(lambda _: run(build))
