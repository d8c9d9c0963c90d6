"""Offline detection tasks: real objects composited onto real photos.

  python -m univision.data.detection_composites --output_dir=data/composites

No detection dataset installs offline, so each task here pastes real objects
- Fashion-MNIST items (their dark background cut away) and scikit-image's
horse silhouette - onto real photos bundled with scikit-image and
scikit-learn, and records EXACT boxes: the tight bounding box of each pasted
object's mask. Objects never overlap, so no box is hidden. Tasks differ in
their object classes, backgrounds and object scales (`TASKS`), which is what
the model-patch study (issue #5) needs: tasks of different difficulty.

Output per task: `<task>/train-*.tfrecord`, `<task>/val-*.tfrecord` in Model
Garden's detection tf.Example format (normalized boxes, labels 1..K) and
`<task>/label_map.json` ({label id: class name}).
"""
import dataclasses
import json
import os

from absl import app
from absl import flags
import numpy as np
import skimage.data
import skimage.transform
import sklearn.datasets

from univision.data import fashion_mnist
from univision.data import tfrecords

HORSE = 'horse'
# Photos bundled in the wheels (no download): name -> loader.
BACKGROUNDS = {
    'astronaut': skimage.data.astronaut, 'coffee': skimage.data.coffee,
    'chelsea': skimage.data.chelsea, 'rocket': skimage.data.rocket,
    'china': lambda: sklearn.datasets.load_sample_image('china.jpg'),
    'flower': lambda: sklearn.datasets.load_sample_image('flower.jpg'),
    'brick': skimage.data.brick, 'grass': skimage.data.grass,
    'gravel': skimage.data.gravel,
}


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """One detection task.

  Attributes:
    classes: Object class names: Fashion-MNIST class names or 'horse'.
    backgrounds: Names in `BACKGROUNDS`.
    object_size: (min, max) longer side of a pasted object, in pixels.
    max_objects: At most this many objects per image (at least 1).
    image_size: Side of the square output images.
  """
  classes: tuple[str, ...]
  backgrounds: tuple[str, ...]
  object_size: tuple[int, int]
  max_objects: int = 4
  image_size: int = 128


TASKS = {
    'tops_on_photos': TaskSpec(
        ('t-shirt/top', 'pullover', 'shirt', 'coat'),
        ('astronaut', 'coffee', 'chelsea', 'rocket'), (28, 56)),
    'footwear_on_textures': TaskSpec(
        ('sandal', 'sneaker', 'ankle boot'), ('brick', 'grass', 'gravel'),
        (20, 40), max_objects=5),
    'small_items_on_scenery': TaskSpec(
        ('trouser', 'dress', 'bag'), ('china', 'flower'), (12, 24),
        max_objects=6),
    'horses_and_bags': TaskSpec(
        (HORSE, 'bag'), ('china', 'rocket', 'grass'), (32, 72),
        max_objects=3),
}


def rgb(image: np.ndarray) -> np.ndarray:
  """A photo as uint8 RGB (grayscale repeated, alpha dropped)."""
  if image.ndim == 2:
    image = np.stack([image] * 3, axis=-1)
  return image[..., :3].astype(np.uint8)


class ObjectBank:
  """Object appearances (grayscale intensity in [0, 1] and mask) by class."""

  def __init__(self, fmnist_images: np.ndarray, fmnist_labels: np.ndarray):
    self._items = {name: fmnist_images[fmnist_labels == i]
                   for i, name in enumerate(fashion_mnist.CLASS_NAMES)}
    horse = ~skimage.data.horse()  # True on the horse.
    self._items[HORSE] = horse[None].astype(np.uint8) * 255

  def sample(self, rng: np.random.Generator, name: str,
             size: int) -> tuple[np.ndarray, np.ndarray]:
    """(intensity [h, w] in [0, 1], mask [h, w]) with longer side `size`."""
    if name not in self._items:
      raise ValueError(f'Unknown object class {name!r}; known: '
                       f'{sorted(self._items)}.')
    if not len(self._items[name]):
      raise ValueError(f'The source images have no {name!r} item.')
    item = self._items[name][rng.integers(len(self._items[name]))]
    scale = size / max(item.shape)
    shape = (max(1, round(item.shape[0] * scale)),
             max(1, round(item.shape[1] * scale)))
    intensity = skimage.transform.resize(item / 255.0, shape, order=1,
                                         anti_aliasing=True)
    mask = intensity > 0.1
    return intensity, mask


def background_crop(rng: np.random.Generator, photo: np.ndarray,
                    size: int) -> np.ndarray:
  """A random square crop of `photo`, resized to `size`."""
  side = int(rng.integers(min(photo.shape[:2]) // 2, min(photo.shape[:2]) + 1))
  top = int(rng.integers(photo.shape[0] - side + 1))
  left = int(rng.integers(photo.shape[1] - side + 1))
  crop = photo[top:top + side, left:left + side]
  resized = skimage.transform.resize(crop, (size, size), order=1)  # [0, 1]
  return (resized * 255).astype(np.uint8)


def _overlaps(box, boxes) -> bool:
  return any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and
             b[1] < box[3] for b in boxes)


def compose(rng: np.random.Generator, spec: TaskSpec, bank: ObjectBank,
            photos: dict[str, np.ndarray]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """One composite image.

  Returns:
    (image uint8 [S, S, 3], boxes int [N, 4] as pixel ymin, xmin, ymax, xmax
    with exclusive max - the tight box of each object's visible mask -,
    labels int [N] in 1..len(spec.classes)).
  """
  size = spec.image_size
  name = spec.backgrounds[rng.integers(len(spec.backgrounds))]
  image = background_crop(rng, photos[name], size).astype(np.float32)
  boxes, labels = [], []
  for _ in range(int(rng.integers(1, spec.max_objects + 1))):
    label = int(rng.integers(len(spec.classes)))
    intensity, mask = bank.sample(
        rng, spec.classes[label],
        int(rng.integers(spec.object_size[0], spec.object_size[1] + 1)))
    if not mask.any():
      continue
    h, w = mask.shape
    rows, cols = np.nonzero(mask)
    for _ in range(20):  # Find a free place; give up on this object else.
      top = int(rng.integers(size - h + 1))
      left = int(rng.integers(size - w + 1))
      box = (top + rows.min(), left + cols.min(), top + rows.max() + 1,
             left + cols.max() + 1)
      if not _overlaps(box, boxes):
        break
    else:
      continue
    color = rng.uniform(80, 255, 3)
    region = image[top:top + h, left:left + w]
    region[mask] = intensity[mask, None] * color
    boxes.append(box)
    labels.append(label + 1)
  return (image.clip(0, 255).astype(np.uint8), np.array(boxes, np.int64),
          np.array(labels, np.int64))


def build_task(output_dir: str, task: str, bank: ObjectBank,
               num_train: int, num_val: int, seed: int = 0
               ) -> dict[str, list[str]]:
  """Writes one task's train/val TFRecords and label map."""
  if task not in TASKS:
    raise ValueError(f'Unknown task {task!r}; known: {sorted(TASKS)}.')
  spec = TASKS[task]
  photos = {name: rgb(BACKGROUNDS[name]()) for name in spec.backgrounds}
  folder = os.path.join(output_dir, task)
  os.makedirs(folder, exist_ok=True)
  written = {}
  for split, count, offset in (('train', num_train, 0), ('val', num_val, 1)):
    rng = np.random.default_rng([seed, offset, sorted(TASKS).index(task)])
    examples = (compose(rng, spec, bank, photos) for _ in range(count))
    written[split] = tfrecords.write_detection_tfrecords(
        examples, os.path.join(folder, split), num_shards=2,
        first_source_id=offset * num_train)
  with open(os.path.join(folder, 'label_map.json'), 'w') as f:
    json.dump({i + 1: name for i, name in enumerate(spec.classes)}, f,
              indent=1)
  return written


def build(output_dir: str, tasks: list[str] | None = None,
          num_train: int = 1000, num_val: int = 200, seed: int = 0,
          source_dir: str = fashion_mnist.DEBIAN_DIR
          ) -> dict[str, dict[str, list[str]]]:
  """Writes every task in `tasks` (default: all of `TASKS`)."""
  images, labels = fashion_mnist.load(source_dir)['train']
  bank = ObjectBank(images, labels)
  return {task: build_task(output_dir, task, bank, num_train, num_val, seed)
          for task in tasks or sorted(TASKS)}


def _define_flags() -> None:
  flags.DEFINE_string('output_dir', 'data/composites', 'Output folder.')
  flags.DEFINE_list('tasks', sorted(TASKS), 'Tasks to write.')
  flags.DEFINE_integer('num_train', 1000, 'Training images per task.')
  flags.DEFINE_integer('num_val', 200, 'Validation images per task.')
  flags.DEFINE_string('source_dir', fashion_mnist.DEBIAN_DIR,
                      'Fashion-MNIST IDX folder.')


def main(_):
  args = flags.FLAGS
  for task, splits in build(args.output_dir, args.tasks, args.num_train,
                            args.num_val, source_dir=args.source_dir).items():
    print(f'{task}: {", ".join(f"{s} {len(p)} shards" for s, p in splits.items())}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
