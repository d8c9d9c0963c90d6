"""A real-box detection task: tree crowns in airborne RGB images.

  python -m univision.data.tree_crowns --output_dir=data/tree_crowns

The DeepForest package (Weinstein et al.) ships four airborne RGB images
(NEON sites, 10 cm pixels) with hand-drawn tree-crown boxes in Pascal VOC
XML. Its wheel installs without its torch dependencies
(`pip install --no-deps deepforest==2.1.0`, done by the Makefile); this
module reads only the data files, never imports the package.

Tiles of `TILE` pixels are cut at native resolution. A crown cut by a tile
border is kept, clipped, when at least `MIN_VISIBLE` of its box area lies
inside the tile, and dropped otherwise; tiles left without a crown are
skipped. All boxes are one class, `tree` (SOAP_061's Alive/Dead labels are
merged).

Splits are by image, so no crown is seen in two of them: train =
`TRAIN_IMAGES` (tiles every TILE/2 pixels), val = `VAL_IMAGES` and test =
`TEST_IMAGES` (non-overlapping tiles). `test` is held out: report on it,
choose nothing on it. The four annotated images come from three NEON sites
(YELL twice, OSBS and SOAP once each), so not every site can be in every
split: val is the second YELL image, a site train shows, while test is
OSBS_029 (61 crowns, 16 tiles), a site train never shows - test measures
transfer to a new site, and is small. SOAP_061 stays in train for its dead
trees.
"""
import dataclasses
import importlib.util
import json
import os
from xml.etree import ElementTree

from absl import app
from absl import flags
import numpy as np
from PIL import Image

from univision.data import tfrecords

TILE = 128
MIN_VISIBLE = 0.5
TRAIN_IMAGES = ('2019_YELL_2_528000_4978000_image_crop2.xml',
                'SOAP_061.xml')
VAL_IMAGES = ('2019_YELL_2_541000_4977000_image_crop.xml',)
TEST_IMAGES = ('OSBS_029.xml',)
LABEL_MAP = {1: 'tree'}
INSTALL_HINT = 'pip install --no-deps deepforest==2.1.0'


@dataclasses.dataclass(frozen=True)
class Annotation:
  """One VOC annotation file.

  Attributes:
    image_path: The image file next to the XML.
    boxes: [N, 4] pixel boxes (ymin, xmin, ymax, xmax), 0-based, max
      exclusive.
    names: [N] object names as written in the file.
  """
  image_path: str
  boxes: np.ndarray
  names: tuple[str, ...]


def deepforest_data_dir() -> str:
  """The data folder of the installed deepforest wheel (not imported)."""
  spec = importlib.util.find_spec('deepforest')
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError(
        f'The deepforest package is not installed; run `{INSTALL_HINT}`.')
  return os.path.join(list(spec.submodule_search_locations)[0], 'data')


def _number(obj: ElementTree.Element, key: str, where: str) -> float:
  node = obj.find(f'bndbox/{key}')
  try:
    return float(node.text)
  except (AttributeError, TypeError, ValueError) as e:
    raise ValueError(f'{where}: bndbox/{key} missing or not a number.') from e


def read_voc(xml_path: str) -> Annotation:
  """Reads a Pascal VOC file (1-based inclusive pixel corners).

  Raises:
    ValueError: naming the file (and object) for a malformed file, an
      empty box, or a box outside the image size it declares.
  """
  try:
    root = ElementTree.parse(xml_path).getroot()
  except ElementTree.ParseError as e:
    raise ValueError(f'{xml_path}: not valid XML ({e}).') from e
  filename = root.findtext('filename')
  width, height = root.findtext('size/width'), root.findtext('size/height')
  if not filename or not width or not height:
    raise ValueError(f'{xml_path}: needs <filename> and <size> '
                     '<width>/<height>.')
  width, height = int(float(width)), int(float(height))
  boxes, names = [], []
  for i, obj in enumerate(root.findall('object')):
    where = f'{xml_path} object {i}'
    xmin, ymin, xmax, ymax = (_number(obj, k, where)
                              for k in ('xmin', 'ymin', 'xmax', 'ymax'))
    box = (ymin - 1, xmin - 1, ymax, xmax)  # 0-based, max exclusive.
    if (box[0] < 0 or box[1] < 0 or box[2] > height or box[3] > width or
        box[2] <= box[0] or box[3] <= box[1]):
      raise ValueError(f'{where}: box xmin={xmin:g} ymin={ymin:g} '
                       f'xmax={xmax:g} ymax={ymax:g} is empty or outside '
                       f'the {width}x{height} image.')
    boxes.append(box)
    names.append(obj.findtext('name') or '')
  return Annotation(os.path.join(os.path.dirname(xml_path), filename),
                    np.array(boxes, np.float64).reshape(-1, 4), tuple(names))


def tiles(image: np.ndarray, boxes: np.ndarray, size: int, stride: int,
          min_visible: float = MIN_VISIBLE):
  """Yields (tile image, its clipped boxes) for tiles with a crown.

  Tiles start every `stride` pixels and are `size` square (the last row and
  column are shifted to end at the image border). A box is kept, clipped to
  the tile, if at least `min_visible` of its area is inside.
  """
  height, width = image.shape[:2]
  if height < size or width < size:
    raise ValueError(f'Image {width}x{height} is smaller than a {size} '
                     'tile.')
  starts = lambda n: sorted({*range(0, n - size + 1, stride), n - size})
  area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
  for top in starts(height):
    for left in starts(width):
      clipped = np.stack([
          np.clip(boxes[:, 0] - top, 0, size),
          np.clip(boxes[:, 1] - left, 0, size),
          np.clip(boxes[:, 2] - top, 0, size),
          np.clip(boxes[:, 3] - left, 0, size)], axis=1)
      inside = ((clipped[:, 2] - clipped[:, 0]) *
                (clipped[:, 3] - clipped[:, 1]))
      keep = inside >= min_visible * area
      if keep.any():
        yield image[top:top + size, left:left + size], clipped[keep]


def _examples(data_dir: str, xml_names: tuple[str, ...], stride: int):
  for name in xml_names:
    annotation = read_voc(os.path.join(data_dir, name))
    image = np.asarray(Image.open(annotation.image_path).convert('RGB'))
    for tile, boxes in tiles(image, annotation.boxes, TILE, stride):
      yield tile, boxes, np.ones(len(boxes), np.int64)


def _check_disjoint(splits: dict[str, tuple[str, ...]]) -> None:
  """Raises ValueError naming a file listed in two splits."""
  seen = {}
  for split, names in splits.items():
    for name in names:
      if name in seen:
        raise ValueError(f'{name} is in both the {seen[name]} and the {split} '
                         'split; splits must use different images.')
      seen[name] = split


def build(output_dir: str, data_dir: str | None = None,
          train_files: tuple[str, ...] = TRAIN_IMAGES,
          val_files: tuple[str, ...] = VAL_IMAGES,
          test_files: tuple[str, ...] = TEST_IMAGES) -> dict[str, list[str]]:
  """Writes `train-*`, `val-*`, `test-*` TFRecords and `label_map.json`.

  Args:
    output_dir: The task folder to write.
    data_dir: Folder of the VOC files; default: deepforest's data.
    train_files: VOC files (in `data_dir`) of the training split.
    val_files: VOC files of the validation split.
    test_files: VOC files of the test split.

  Raises:
    ValueError: naming a file given to two splits.
  """
  files = {'train': train_files, 'val': val_files, 'test': test_files}
  _check_disjoint(files)
  data_dir = data_dir or deepforest_data_dir()
  os.makedirs(output_dir, exist_ok=True)
  written = {}
  for split, stride, first_id in (('train', TILE // 2, 0),
                                  ('val', TILE, 100_000),
                                  ('test', TILE, 200_000)):
    written[split] = tfrecords.write_detection_tfrecords(
        _examples(data_dir, files[split], stride),
        os.path.join(output_dir, split), num_shards=2,
        first_source_id=first_id)
  with open(os.path.join(output_dir, 'label_map.json'), 'w') as f:
    json.dump(LABEL_MAP, f, indent=1)
  return written


def _define_flags() -> None:
  flags.DEFINE_string('output_dir', 'data/tree_crowns', 'Output folder.')
  flags.DEFINE_string('data_dir', None, 'Folder of the VOC files and images '
                      '(default: the installed deepforest wheel\'s data).')


def main(_):
  args = flags.FLAGS
  for split, paths in build(args.output_dir, args.data_dir).items():
    print(f'{split}: {", ".join(paths)}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
