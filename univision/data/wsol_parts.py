"""WSOL data whose finest labels are decided by a small part of the object.

  python -m univision.data.wsol_parts --output_dir=data/wsol_parts

Cole et al. (iNatLoc500, ECCV 2022) ask how the granularity of the training
labels moves localization: "an animal, a bird, or a great horned owl?". The
question needs labels whose finer levels are told apart by small parts of
the object, as species are (a bill, a wing bar), while coarser levels are
told apart by the whole shape. Three levels here (`HIERARCHY`):

- `marked` (30 classes, finest): shape x the colour of a small square
  marker on the object (red, green or blue), at a random spot inside the
  object's silhouette, its side `marker_fraction` of the object's size;
- `shape` (10): the Fashion-MNIST class, i.e. the silhouette;
- `family` (4): tops, bottoms & dresses, footwear, bags.

The object itself is grey (one random brightness for all three channels),
so its colour says nothing about the marker's; backgrounds are random
crops of real photos (`detection_composites.BACKGROUNDS`). Each image has
one object with its box and mask (for MaxBoxAcc and PxAP) and the marker's
mask (`part_mask`, for the share of a CAM that falls on the part:
`wsol_metrics.PartMassAccumulator`). Deterministic for a seed; items come
from Fashion-MNIST's train split for `train` and its test split for `val`
and `test`.

Output: `train-*`, `val-*`, `test-*` TFRecords in `wsol_records`' format
(the `marked` label per image) and `hierarchy.json`.
"""

from absl import app
import numpy as np
from official.vision.data import image_utils

from univision.data import detection_composites
from univision.data import fashion_mnist
from univision.data import label_hierarchy
from univision.data import wsol_composites
from univision.data import wsol_records

MARKERS = {'red': (235, 35, 35), 'green': (35, 200, 35),
           'blue': (45, 70, 245)}
SHAPES = fashion_mnist.CLASS_NAMES
HIERARCHY = label_hierarchy.LabelHierarchy(
    levels=('marked', 'shape', 'family'),
    names={'marked': tuple(f'{shape}, {colour} marker' for shape in SHAPES
                           for colour in MARKERS),
           'shape': SHAPES, 'family': wsol_composites.COARSE},
    parents={'shape': tuple(i // len(MARKERS)
                            for i in range(len(SHAPES) * len(MARKERS))),
             'family': tuple(wsol_composites.HIERARCHY.parents['coarse'][
                 i // len(MARKERS)]
                             for i in range(len(SHAPES) * len(MARKERS)))})
MIN_MARKER = 3  # Pixels: a smaller square is not a visible part.


def marker_spot(rng: np.random.Generator, mask: np.ndarray,
                side: int) -> tuple[int, int] | None:
  """A random (top, left) whose side x side square lies inside `mask`."""
  h, w = mask.shape
  if side > min(h, w):
    return None
  # Squares fully inside: the windowed sum of the mask equals side^2.
  table = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), [[1, 0], [1, 0]])
  sums = (table[side:, side:] - table[:-side, side:] - table[side:, :-side] +
          table[:-side, :-side])
  spots = np.argwhere(sums == side * side)
  if not len(spots):
    return None
  top, left = spots[rng.integers(len(spots))]
  return int(top), int(left)


def compose(rng: np.random.Generator, bank: detection_composites.ObjectBank,
            photos: list[np.ndarray], image_size: int,
            object_size: tuple[int, int], marker_fraction: float
            ) -> tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray]:
  """One image with one marked object.

  Returns:
    (image uint8 [S, S, 3], `marked` label, box [4] as pixel ymin, xmin,
    ymax, xmax with exclusive max, object mask bool [S, S], marker mask
    bool [S, S]).
  """
  image = detection_composites.background_crop(
      rng, photos[rng.integers(len(photos))], image_size).astype(np.float32)
  shape = int(rng.integers(len(SHAPES)))
  colour = int(rng.integers(len(MARKERS)))
  while True:  # Redrawn until the marker fits inside the silhouette.
    size = int(rng.integers(object_size[0], object_size[1] + 1))
    intensity, mask = bank.sample(rng, SHAPES[shape], size)
    side = max(MIN_MARKER, round(marker_fraction * size))
    spot = marker_spot(rng, mask, side)
    if spot is not None:
      break
  h, w = mask.shape
  top = int(rng.integers(image_size - h + 1))
  left = int(rng.integers(image_size - w + 1))
  region = image[top:top + h, left:left + w]
  region[mask] = (intensity[mask] * rng.uniform(120, 255))[:, None]
  marker = np.zeros((image_size, image_size), bool)
  y, x = top + spot[0], left + spot[1]
  marker[y:y + side, x:x + side] = True
  image[marker] = list(MARKERS.values())[colour]
  full_mask = np.zeros((image_size, image_size), bool)
  full_mask[top:top + h, left:left + w] = mask
  rows, cols = np.nonzero(full_mask)
  box = np.array([rows.min(), cols.min(), rows.max() + 1, cols.max() + 1])
  return (image.clip(0, 255).astype(np.uint8), shape * len(MARKERS) + colour,
          box, full_mask, marker)


def build(output_dir: str, num_train: int = 6000, num_eval: int = 600,
          image_size: int = 128, object_size: tuple[int, int] = (48, 100),
          marker_fraction: float = 0.12, seed: int = 0,
          source_dir: str = fashion_mnist.DEBIAN_DIR
          ) -> dict[str, list[str]]:
  """Writes the three splits and `hierarchy.json`; returns the shard paths.

  Raises:
    ValueError: for object sizes outside the image or a marker fraction
      outside (0, 0.5].
  """
  if not 0 < object_size[0] <= object_size[1] <= image_size:
    raise ValueError(f'object_size {object_size} must be increasing and '
                     f'within the {image_size}px image.')
  if not 0 < marker_fraction <= 0.5:
    raise ValueError(f'marker_fraction {marker_fraction} is not in (0, 0.5].')

  def example(rng, bank, photos, split, i):
    image, label, box, mask, marker = compose(
        rng, bank, photos, image_size, object_size, marker_fraction)
    return wsol_records.wsol_example(
        image_utils.encode_image(image, 'PNG'), image_size, image_size,
        label, box[None], f'{split}/{i}', f'{split} image {i}', mask,
        part_mask=marker)

  return wsol_composites.write_splits(output_dir, num_train, num_eval, seed,
                                      source_dir, HIERARCHY, example)


if __name__ == '__main__':
  wsol_composites.define_flags('data/wsol_parts', 6000, 600)
  app.run(lambda _: wsol_composites.run(build))
