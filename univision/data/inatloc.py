"""iNatLoc500 (Cole et al., ECCV 2022) metadata as WSOL TFRecords.

  python -m univision.data.inatloc --metadata_dir=metadata_choe \
      --image_root=iNatLoc --output_dir=data/inatloc

The metadata is in Choe et al.'s format (wsolevaluation): `train/`, `val/`,
`test/` folders of comma-separated files, one row per image: `image_ids.txt`
(path), `class_labels.txt` (path,species label),
`class_labels_{genus,family,order,class,phylum,kingdom}.txt` (coarser
labels; the levels used are those whose files exist) and, in val and test,
`image_sizes.txt` (path,image_height,image_width per the README) and
`localization.txt` (path,x_min,y_min,x_max,y_max; one row per box).
Top-level `class_names[_<level>].txt` name the labels, either one name per
line (the line index is the label) or as `label,name` lines (assumed when
every line starts with an integer and a comma); without the file a label is
named by its number. JPEGs lie under an image root at the same relative
paths. Every file is cross-checked; errors name `file:line`.

Size order: most val/test `image_sizes.txt` rows are in fact width,height
(inat_loc issue #2), the order wsolevaluation reads. The true size is read
from the image (JPEG header); each row is counted as 'as_documented',
'swapped' or 'square' in `<output_dir>/<split>_report.json`, and a row
matching neither order is an error. `size_order` can also guess the order
from the boxes alone.

Boxes: wsolevaluation's IoU treats corners as inclusive pixels (a box is
x_max - x_min + 1 wide), so x_max is read as inclusive: the exclusive max
is x_max + 1, clipped to the image (a border box given with an exclusive
x_max == width is kept).
"""
import collections
import dataclasses
import json
import os

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from univision.data import label_hierarchy
from univision.data import wsol_records

LEVELS = ('species', 'genus', 'family', 'order', 'class', 'phylum', 'kingdom')
SPLITS = ('train', 'val', 'test')
REPORT_KEYS = ('images', 'boxes', 'sizes_as_documented', 'sizes_swapped',
               'sizes_square')


@dataclasses.dataclass(frozen=True)
class ImageRecord:
  """One image of a split, as its metadata files describe it.

  Attributes:
    path: The image path relative to the image root.
    label: The species label.
    labels: The label at each level read, finest (species) first.
    boxes: [N, 4] int localization rows as written (x_min, y_min, x_max,
      y_max, inclusive); N = 0 without `localization.txt`.
    size_row: The `image_sizes.txt` row's two numbers in file order, or None.
    rows: `file:line` of the image's rows, keyed by level, 'image_ids' and
      'sizes'.
    box_rows: `file:line` of each box.
  """
  path: str
  label: int
  labels: dict[str, int]
  boxes: np.ndarray
  size_row: tuple[int, int] | None
  rows: dict[str, str]
  box_rows: tuple[str, ...]


def _file(kind: str, level: str) -> str:
  """`class_labels.txt`, `class_names_genus.txt`, ..."""
  return f'{kind}.txt' if level == 'species' else f'{kind}_{level}.txt'


def _rows(path: str, num_fields: int):
  """Yields (`file:line`, fields) for the non-blank lines of a file."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'Metadata file {path} is missing.')
  with open(path) as f:
    for i, line in enumerate(f, 1):
      if not line.strip():
        continue
      fields = line.rstrip('\r\n').split(',')
      if len(fields) != num_fields:
        raise ValueError(f'{path}:{i}: expected {num_fields} comma-separated '
                         f'fields, got {len(fields)}.')
      yield f'{path}:{i}', fields


def _per_image(path: str, images: dict[str, str], num_fields: int,
               several: bool = False) -> dict[str, list]:
  """Image path -> [(`file:line`, integer fields)], every image present."""
  found = collections.defaultdict(list)
  for where, (image, *values) in _rows(path, num_fields):
    if image not in images:
      raise ValueError(f'{where}: {image} is not in image_ids.txt.')
    if found[image] and not several:
      raise ValueError(f'{where}: second row for {image} (first at '
                       f'{found[image][0][0]}).')
    try:
      found[image].append((where, tuple(int(v) for v in values)))
    except ValueError as e:
      raise ValueError(f'{where}: {values} are not all integers.') from e
  for image in images:
    if image not in found:
      raise ValueError(f'{path}: no row for {image}.')
  return found


def read_split(metadata_dir: str, split: str) -> list[ImageRecord]:
  """Reads and cross-checks one split's files, in `image_ids.txt` order.

  Raises:
    FileNotFoundError: naming a missing `image_ids.txt`/`class_labels.txt`.
    ValueError: naming `file:line` for a malformed line, a path listed twice
      or not in `image_ids.txt`, or naming the file and a path it lacks.
  """
  folder = os.path.join(metadata_dir, split)
  images = {}
  for where, (path,) in _rows(os.path.join(folder, 'image_ids.txt'), 1):
    if path in images:
      raise ValueError(f'{where}: {path} listed twice (first at '
                       f'{images[path]}).')
    images[path] = where
  load = lambda name, *args: (
      _per_image(os.path.join(folder, name), images, *args)
      if name == 'class_labels.txt' or
      os.path.exists(os.path.join(folder, name)) else {})
  labels = {level: load(_file('class_labels', level), 2) for level in LEVELS}
  labels = {level: rows for level, rows in labels.items()
            if level == 'species' or rows}
  sizes, boxes = load('image_sizes.txt', 3), load('localization.txt', 5, True)
  records = []
  for path, where in images.items():
    label_rows = {level: rows[path][0] for level, rows in labels.items()}
    box_rows = boxes.get(path, [])
    records.append(ImageRecord(
        path=path, label=label_rows['species'][1][0],
        labels={level: row[1][0] for level, row in label_rows.items()},
        boxes=np.array([b for _, b in box_rows], np.int64).reshape(-1, 4),
        size_row=sizes[path][0][1] if sizes else None,
        rows={'image_ids': where, 'sizes': sizes[path][0][0] if sizes else '',
              **{level: row[0] for level, row in label_rows.items()}},
        box_rows=tuple(w for w, _ in box_rows)))
  return records


def read_names(path: str) -> tuple[str, ...] | None:
  """The names in a `class_names*.txt` file (see the module doc), or None."""
  if not os.path.exists(path):
    return None
  with open(path) as f:
    lines = f.read().rstrip('\r\n').splitlines()
  pairs = [line.split(',', 1) for line in lines]
  if not all(len(p) == 2 and p[0].strip().isdigit() for p in pairs):
    return tuple(lines)
  pairs = sorted((int(label), name) for label, name in pairs)
  if [label for label, _ in pairs] != list(range(len(pairs))):
    raise ValueError(f'{path}: labels are not 0..{len(pairs) - 1}, each once.')
  return tuple(name for _, name in pairs)


def build_hierarchy(metadata_dir: str, splits: dict[str, list[ImageRecord]]
                    ) -> label_hierarchy.LabelHierarchy:
  """Species -> coarser labels, checked over every row of every split.

  Raises:
    ValueError: naming `file:line` for a label without a name or a species
      with two labels at one level (naming both and the first row); naming
      species without an image (their coarser labels are unknown).
  """
  records = [r for rows in splits.values() for r in rows]
  levels = tuple(records[0].labels) if records else ('species',)
  names = {level: read_names(os.path.join(metadata_dir,
                                          _file('class_names', level)))
           for level in levels}
  parents = {level: {} for level in levels[1:]}
  for r in records:
    if tuple(r.labels) != levels:
      raise ValueError(f'{r.rows["image_ids"]}: levels {list(r.labels)}, but '
                       f'{records[0].rows["image_ids"]} has {list(levels)}.')
    for level, label in r.labels.items():
      if label < 0 or (names[level] is not None and
                       label >= len(names[level])):
        raise ValueError(f'{r.rows[level]}: {level} label {label} has no '
                         'name.')
    for level in levels[1:]:
      first = parents[level].setdefault(r.label, (r.labels[level],
                                                  r.rows[level]))
      if first[0] != r.labels[level]:
        raise ValueError(f'{r.rows[level]}: species {r.label} is {level} '
                         f'{r.labels[level]} here but {first[0]} at '
                         f'{first[1]}.')
  for level in levels:
    if names[level] is None:
      count = 1 + max((r.labels[level] for r in records), default=-1)
      names[level] = tuple(str(i) for i in range(count))
  species = range(len(names['species']))
  seen = {r.label for r in records}
  if levels[1:] and len(seen) < len(species):
    raise ValueError(f'Species {sorted(set(species) - seen)} have no image '
                     'in the splits read: their coarser labels are unknown.')
  return label_hierarchy.LabelHierarchy(
      levels, names, {level: tuple(parents[level][s][0] for s in species)
                      for level in levels[1:]})


def _bad_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
  """[N] mask of inclusive boxes that are empty or outside the image."""
  x0, y0, x1, y1 = np.asarray(boxes).reshape(-1, 4).T
  return ((x0 < 0) | (y0 < 0) | (x0 >= width) | (y0 >= height) |
          (x1 > width) | (y1 > height) | (x1 < x0) | (y1 < y0))


def size_order(row: tuple[int, int], boxes: np.ndarray,
               true_size: tuple[int, int] | None = None,
               where: str = 'image_sizes row') -> str:
  """How an `image_sizes.txt` row orders the image's height and width.

  Args:
    row: The row's two numbers, in file order.
    boxes: [N, 4] the image's localization rows (x_min, y_min, x_max, y_max).
    true_size: (height, width) read from the image; decides when given.
    where: Names the row in errors.

  Returns:
    'as_documented' (height, width), 'swapped' (width, height) or 'square'
    (can't tell). Without `true_size`, a row is 'swapped' if the boxes fit
    only when it is read as (width, height), 'as_documented' if they fit
    only as (height, width); when both or neither fit, 'swapped': the
    reading of wsolevaluation, which iNatLoc's metadata was made for.

  Raises:
    ValueError: naming `where` and both sizes if `true_size` is given and
      the row is neither of its orders.
  """
  row = tuple(row)
  if true_size is not None:
    height, width = true_size
    if sorted(row) != sorted(true_size):
      raise ValueError(f'{where}: size {row[0]},{row[1]} is neither the '
                       'height,width nor the width,height of the image, '
                       f'which is {height} high and {width} wide.')
    if height == width:
      return 'square'
    return 'as_documented' if row == (height, width) else 'swapped'
  if row[0] == row[1]:
    return 'square'
  fits_documented = not _bad_boxes(boxes, row[0], row[1]).any()
  fits_swapped = not _bad_boxes(boxes, row[1], row[0]).any()
  return ('as_documented' if fits_documented and not fits_swapped
          else 'swapped')


def pixel_boxes(boxes: np.ndarray, height: int, width: int,
                rows: tuple[str, ...]) -> np.ndarray:
  """Inclusive (x_min, y_min, x_max, y_max) -> (ymin, xmin, ymax, xmax).

  The maxima become exclusive (+1), clipped to the image; a box empty or
  outside the image raises ValueError naming its row (from `rows`).
  """
  boxes = np.asarray(boxes, np.int64).reshape(-1, 4)
  bad = np.flatnonzero(_bad_boxes(boxes, height, width))
  if bad.size:
    raise ValueError(f'{rows[bad[0]]}: box x_min,y_min,x_max,y_max = '
                     f'{",".join(map(str, boxes[bad[0]]))} is empty or '
                     f'outside the image, which is {height} high and '
                     f'{width} wide.')
  x0, y0, x1, y1 = boxes.T
  return np.stack([y0, x0, np.minimum(y1 + 1, height),
                   np.minimum(x1 + 1, width)], axis=1)


def image_size(encoded: bytes) -> tuple[int, int]:
  """(height, width) of JPEG (from the header) or PNG bytes."""
  if tf.io.is_jpeg(encoded):
    shape = tf.io.extract_jpeg_shape(encoded)
  else:
    shape = tf.shape(tf.io.decode_image(encoded, expand_animations=False))
  return int(shape[0]), int(shape[1])


def _example(record: ImageRecord, image_root: str,
             counts: collections.Counter) -> tf.train.Example:
  """The record's tf.Example; counts images, boxes and size orders."""
  path = os.path.join(image_root, record.path)
  if not os.path.exists(path):
    raise FileNotFoundError(f'Image {path} ({record.rows["image_ids"]}) is '
                            'missing.')
  with open(path, 'rb') as f:
    encoded = f.read()
  height, width = image_size(encoded)
  if record.size_row is not None:
    counts['sizes_' + size_order(record.size_row, record.boxes,
                                 (height, width), record.rows['sizes'])] += 1
  boxes = pixel_boxes(record.boxes, height, width, record.box_rows)
  counts.update(images=1, boxes=len(boxes))
  return wsol_records.wsol_example(encoded, height, width, record.label,
                                   boxes, record.path, where=path)


def convert(metadata_dir: str, image_root: str, output_dir: str,
            splits: tuple[str, ...] = SPLITS,
            num_shards: int = 16) -> dict[str, list[str]]:
  """Writes `<split>-*.tfrecord`, `<split>_report.json`, `hierarchy.json`.

  All metadata is read and checked before any image. Records keep the
  image bytes as they are, with the image path as source id and the
  species label.

  Returns:
    A dict from split name to its shard paths.
  """
  records = {split: read_split(metadata_dir, split) for split in splits}
  hierarchy = build_hierarchy(metadata_dir, records)
  os.makedirs(output_dir, exist_ok=True)
  label_hierarchy.save(hierarchy, os.path.join(output_dir, 'hierarchy.json'))
  written = {}
  for split, rows in records.items():
    counts = collections.Counter()
    written[split] = wsol_records.write_wsol_tfrecords(
        (_example(r, image_root, counts) for r in rows),
        os.path.join(output_dir, split), num_shards)
    with open(os.path.join(output_dir, f'{split}_report.json'), 'w') as f:
      json.dump({key: counts[key] for key in REPORT_KEYS}, f, indent=1)
  return written


def _define_flags() -> None:
  flags.DEFINE_string('metadata_dir', None, 'Folder of the Choe-format '
                      'metadata (train/, val/, test/, class_names*.txt).')
  flags.DEFINE_string('image_root', None, 'Folder the image paths are in.')
  flags.DEFINE_string('output_dir', 'data/inatloc', 'Output folder.')
  flags.DEFINE_list('splits', list(SPLITS), 'Splits to convert.')
  flags.DEFINE_integer('num_shards', 16, 'TFRecord shards per split.')
  flags.mark_flags_as_required(['metadata_dir', 'image_root'])


def main(_):
  args = flags.FLAGS
  for split, paths in convert(args.metadata_dir, args.image_root,
                              args.output_dir, tuple(args.splits),
                              args.num_shards).items():
    print(f'{split}: {", ".join(paths)}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
