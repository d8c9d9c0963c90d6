"""Offline detection tasks: real objects composited onto real photos.

  python -m univision.data.detection_composites --output_dir=data/composites

No detection dataset installs offline, so each task here pastes real objects
- Fashion-MNIST items (their dark background cut away), scikit-image's horse
silhouette and scikit-learn's handwritten digits (8x8 images, upscaled) - onto
real photos bundled with scikit-image and scikit-learn, and records EXACT
boxes: the tight bounding box of each pasted object's mask. Objects never
overlap, so no box is hidden.

The tasks (`TASKS`) serve the model-patch study (issue #5): a shared base
detector is trained on `base_clothing` (3000 train images; the others have
1000), and every other task gets a small patch:

  task                    labels                       backgrounds      px
  base_clothing           top, bottom, footwear, bag   PHOTOS           16-64
  tops_on_photos          the four tops                4 of PHOTOS      28-56
  small_items_on_scenery  trouser, dress, bag          china, flower    12-24
  horses_and_bags         horse, bag                   2 photos, grass  32-72
  footwear_on_textures    sandal, sneaker, ankle boot  TEXTURES         20-40
  digits_on_textures      digit 0, 1, 7, 8             TEXTURES         16-40
  clothing_close_ups      top, bottom, footwear, bag   PHOTOS           36-72

They move away from the base by different amounts: `clothing_close_ups` is
the nearest (the base's own labels and photos, objects larger on average
and at most three per image); `tops_on_photos` is a near copy too (finer
labels for the base's 'top', on its photos);
`small_items_on_scenery` and `horses_and_bags` keep photos but shrink the
objects or add a new one; `footwear_on_textures` puts known objects on
textures the base never shows (brick, grass, gravel); `digits_on_textures`
is the far task: new objects on those textures.

`crowded_clothing` serves query-modulated detection (issue #20): all 11
object classes of Fashion-MNIST and the horse, 4 to 8 objects per image (so
several classes per image), with look-alike groups (the four tops; sandal,
sneaker and ankle boot), 3000 train images:

  crowded_clothing        10 Fashion-MNIST + horse     PHOTOS           16-36

A label may stand for a group of object classes (`TaskSpec.groups`):
`base_clothing`'s 'top' is any of the four tops, and so on.

Output per task: `<task>/{train,val,test}-*.tfrecord` in Model Garden's
detection tf.Example format (normalized boxes, labels 1..K, K <=
`MAX_LABELS`) and `<task>/label_map.json` ({label id: label name}). Each
split is drawn from its own random stream (offsets 0, 1, 2), so adding the
test split left the train and val records unchanged. `test` is held out:
report on it, choose nothing on it. The objects of all splits come from the
same pool (Fashion-MNIST's train split, all of scikit-learn's digits); the
splits differ in their compositions.
"""
import dataclasses
import json
import os
from typing import Mapping

from absl import app
from absl import flags
import numpy as np
import skimage.data
import skimage.transform
import sklearn.datasets

from univision.data import fashion_mnist
from univision.data import tfrecords

HORSE = 'horse'
DIGITS = tuple(f'digit {d}' for d in range(10))
OBJECT_CLASSES = (*fashion_mnist.CLASS_NAMES, HORSE, *DIGITS)
# Labels of one task: at most every object class but the digits. (The
# model-patch study's detectors have 5 class outputs, background included;
# it refuses task folders with more labels itself.)
MAX_LABELS = 11
# Photos bundled in the wheels (no download): name -> loader.
BACKGROUNDS = {
    'astronaut': skimage.data.astronaut, 'coffee': skimage.data.coffee,
    'chelsea': skimage.data.chelsea, 'rocket': skimage.data.rocket,
    'china': lambda: sklearn.datasets.load_sample_image('china.jpg'),
    'flower': lambda: sklearn.datasets.load_sample_image('flower.jpg'),
    'brick': skimage.data.brick, 'grass': skimage.data.grass,
    'gravel': skimage.data.gravel,
}
PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'china', 'flower')
TEXTURES = ('brick', 'grass', 'gravel')
TOPS = ('t-shirt/top', 'pullover', 'shirt', 'coat')
FOOTWEAR = ('sandal', 'sneaker', 'ankle boot')
# The base's labels and the object classes each stands for.
CLOTHING = ('top', 'bottom', 'footwear', 'bag')
CLOTHING_GROUPS = {'top': TOPS, 'bottom': ('trouser', 'dress'),
                   'footwear': FOOTWEAR}
# A split's position here is its random stream's offset.
SPLITS = ('train', 'val', 'test')


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """One detection task.

  Attributes:
    classes: Label names; label i + 1 is `classes[i]`. A name is an object
      class (one of `OBJECT_CLASSES`) unless `groups` maps it to several.
    backgrounds: Names in `BACKGROUNDS`.
    object_size: (min, max) longer side of a pasted object, in pixels.
    max_objects: At most this many objects per image (at least 1).
    min_objects: At least this many objects per image (placement is tried
      again until they fit).
    image_size: Side of the square output images.
    groups: Label name -> the object classes it stands for; each object of
      that label is one of them, drawn uniformly.
    num_train: Training images written unless the caller says otherwise.

  Raises:
    ValueError: naming the value, for no or more than `MAX_LABELS` labels,
      a `groups` key that is not a label, an object class not in
      `OBJECT_CLASSES`, or `min_objects` not in 1..`max_objects`.
  """
  classes: tuple[str, ...]
  backgrounds: tuple[str, ...]
  object_size: tuple[int, int]
  max_objects: int = 4
  image_size: int = 128
  groups: Mapping[str, tuple[str, ...]] = dataclasses.field(
      default_factory=dict)
  num_train: int = 1000
  min_objects: int = 1

  def __post_init__(self):
    if not 1 <= self.min_objects <= self.max_objects:
      raise ValueError(f'min_objects {self.min_objects} must be in 1..'
                       f'max_objects ({self.max_objects}).')
    if not 1 <= len(self.classes) <= MAX_LABELS:
      raise ValueError(f'A task has 1 to {MAX_LABELS} labels, got '
                       f'{len(self.classes)}: {self.classes}.')
    for label in self.groups:
      if label not in self.classes:
        raise ValueError(f'groups[{label!r}] is not a label of {self.classes}.')
    for label in self.classes:
      for name in self.sources(label):
        if name not in OBJECT_CLASSES:
          raise ValueError(f'Unknown object class {name!r} (label {label!r});'
                           f' known: {OBJECT_CLASSES}.')

  def sources(self, label: str) -> tuple[str, ...]:
    """The object classes that label name `label` stands for."""
    return tuple(self.groups.get(label, (label,)))

  def object_class(self, rng: np.random.Generator, index: int) -> str:
    """The object class of a new object of label `index + 1`.

    A label of one class draws no random number, so a task without groups
    composes the same images as before groups existed.
    """
    sources = self.sources(self.classes[index])
    if len(sources) == 1:
      return sources[0]
    return sources[rng.integers(len(sources))]


TASKS = {
    'base_clothing': TaskSpec(
        CLOTHING, PHOTOS, (16, 64), max_objects=5, num_train=3000,
        groups=CLOTHING_GROUPS),
    'tops_on_photos': TaskSpec(TOPS, PHOTOS[:4], (28, 56)),
    'footwear_on_textures': TaskSpec(FOOTWEAR, TEXTURES, (20, 40),
                                     max_objects=5),
    'small_items_on_scenery': TaskSpec(
        ('trouser', 'dress', 'bag'), ('china', 'flower'), (12, 24),
        max_objects=6),
    'horses_and_bags': TaskSpec(
        (HORSE, 'bag'), ('china', 'rocket', 'grass'), (32, 72),
        max_objects=3),
    'digits_on_textures': TaskSpec(
        ('digit 0', 'digit 1', 'digit 7', 'digit 8'), TEXTURES, (16, 40),
        max_objects=5),
    'crowded_clothing': TaskSpec(
        (*fashion_mnist.CLASS_NAMES, HORSE), PHOTOS, (16, 36),
        min_objects=4, max_objects=8, num_train=3000),
    'clothing_close_ups': TaskSpec(
        CLOTHING, PHOTOS, (36, 72), max_objects=3, groups=CLOTHING_GROUPS),
}
# A task's position here numbers its random stream: the first four are the
# original tasks in their original (sorted) order; new tasks are appended, so
# adding a task never changes another task's images.
STREAMS = ('footwear_on_textures', 'horses_and_bags', 'small_items_on_scenery',
           'tops_on_photos', 'base_clothing', 'digits_on_textures',
           'crowded_clothing', 'clothing_close_ups')
# Extra placements allowed to reach a task's `min_objects`.
_TOP_UP_TRIES = 50


def rgb(image: np.ndarray) -> np.ndarray:
  """A photo as uint8 RGB (grayscale repeated, alpha dropped)."""
  if image.ndim == 2:
    image = np.stack([image] * 3, axis=-1)
  return image[..., :3].astype(np.uint8)


def digit_items() -> dict[str, np.ndarray]:
  """scikit-learn's 8x8 handwritten digits as uint8 [N, 8, 8] by class."""
  digits = sklearn.datasets.load_digits()
  images = np.round(digits.images * (255 / 16)).astype(np.uint8)
  return {name: images[digits.target == d] for d, name in enumerate(DIGITS)}


class ObjectBank:
  """Object appearances (grayscale intensity in [0, 1] and mask) by class.

  Holds the given Fashion-MNIST items, the horse and the digits.
  """

  def __init__(self, fmnist_images: np.ndarray, fmnist_labels: np.ndarray):
    self._items = {name: fmnist_images[fmnist_labels == i]
                   for i, name in enumerate(fashion_mnist.CLASS_NAMES)}
    horse = ~skimage.data.horse()  # True on the horse.
    self._items[HORSE] = horse[None].astype(np.uint8) * 255
    self._items.update(digit_items())

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
  for _ in range(int(rng.integers(spec.min_objects, spec.max_objects + 1))):
    _paste(rng, spec, bank, image, boxes, labels)
  # Objects that found no free place are tried again up to `min_objects`
  # (with min_objects 1 only an image left empty draws more).
  tries = 0
  while len(boxes) < spec.min_objects:
    if tries == _TOP_UP_TRIES:
      raise ValueError(f'{spec.min_objects} objects of {spec.object_size} '
                       f'px do not fit in {size} px images; lower '
                       'min_objects or object_size.')
    _paste(rng, spec, bank, image, boxes, labels)
    tries += 1
  return (image.clip(0, 255).astype(np.uint8), np.array(boxes, np.int64),
          np.array(labels, np.int64))


def _paste(rng: np.random.Generator, spec: TaskSpec, bank: ObjectBank,
           image: np.ndarray, boxes: list, labels: list) -> None:
  """Pastes one random object where it overlaps no box (or gives up)."""
  size = spec.image_size
  label = int(rng.integers(len(spec.classes)))
  object_class = spec.object_class(rng, label)
  intensity, mask = bank.sample(
      rng, object_class,
      int(rng.integers(spec.object_size[0], spec.object_size[1] + 1)))
  if not mask.any():
    return
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
    return
  color = rng.uniform(80, 255, 3)
  region = image[top:top + h, left:left + w]
  region[mask] = intensity[mask, None] * color
  boxes.append(box)
  labels.append(label + 1)


def split_rng(task: str, split: str, seed: int = 0) -> np.random.Generator:
  """The random stream of one task's split."""
  return np.random.default_rng([seed, SPLITS.index(split),
                                STREAMS.index(task)])


def build_task(output_dir: str, task: str, bank: ObjectBank,
               num_train: int | None = None, num_val: int = 200,
               num_test: int = 200, seed: int = 0) -> dict[str, list[str]]:
  """Writes one task's train/val/test TFRecords and label map.

  Args:
    output_dir: The folder of all tasks; this one goes to `<task>/`.
    task: A name in `TASKS`.
    bank: The objects.
    num_train: Training images; default: the task's `num_train`.
    num_val: Validation images.
    num_test: Test images.
    seed: Seeds every split's random stream.

  Returns:
    {split: its shard paths}. Source ids count on across the splits.
  """
  if task not in TASKS:
    raise ValueError(f'Unknown task {task!r}; known: {sorted(TASKS)}.')
  spec = TASKS[task]
  counts = {'train': spec.num_train if num_train is None else num_train,
            'val': num_val, 'test': num_test}
  photos = {name: rgb(BACKGROUNDS[name]()) for name in spec.backgrounds}
  folder = os.path.join(output_dir, task)
  os.makedirs(folder, exist_ok=True)
  written, first_id = {}, 0
  for split in SPLITS:
    rng = split_rng(task, split, seed)
    examples = (compose(rng, spec, bank, photos)
                for _ in range(counts[split]))
    written[split] = tfrecords.write_detection_tfrecords(
        examples, os.path.join(folder, split), num_shards=2,
        first_source_id=first_id)
    first_id += counts[split]
  with open(os.path.join(folder, 'label_map.json'), 'w') as f:
    json.dump({i + 1: name for i, name in enumerate(spec.classes)}, f,
              indent=1)
  return written


def build(output_dir: str, tasks: list[str] | None = None,
          num_train: int | None = None, num_val: int = 200,
          num_test: int = 200, seed: int = 0,
          source_dir: str = fashion_mnist.DEBIAN_DIR
          ) -> dict[str, dict[str, list[str]]]:
  """Writes every task in `tasks` (default: all of `TASKS`).

  See `build_task` for the counts; `source_dir` holds Fashion-MNIST's IDX
  files.
  """
  images, labels = fashion_mnist.load(source_dir)['train']
  bank = ObjectBank(images, labels)
  return {task: build_task(output_dir, task, bank, num_train, num_val,
                           num_test, seed)
          for task in tasks or sorted(TASKS)}


def _define_flags() -> None:
  flags.DEFINE_string('output_dir', 'data/composites', 'Output folder.')
  flags.DEFINE_list('tasks', sorted(TASKS), 'Tasks to write.')
  flags.DEFINE_integer('num_train', None, 'Training images per task '
                       '(default: the task\'s own; 3000 for base_clothing, '
                       '1000 for the others).')
  flags.DEFINE_integer('num_val', 200, 'Validation images per task.')
  flags.DEFINE_integer('num_test', 200, 'Test images per task.')
  flags.DEFINE_string('source_dir', fashion_mnist.DEBIAN_DIR,
                      'Fashion-MNIST IDX folder.')


def main(_):
  args = flags.FLAGS
  written = build(args.output_dir, args.tasks, num_train=args.num_train,
                  num_val=args.num_val, num_test=args.num_test,
                  source_dir=args.source_dir)
  for task, splits in written.items():
    shards = ', '.join(f'{s} {len(p)} shards' for s, p in splits.items())
    print(f'{task}: {shards}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
