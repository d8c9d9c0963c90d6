"""A label hierarchy: each finest-level label's ancestor at every coarser level.

Weakly supervised localization trains on image labels at a chosen level of
granularity (Cole et al., ECCV 2022: species ... phylum of iNatLoc500), while
records store only the finest label. `LabelHierarchy` maps finest labels to
any level, in Python and inside tf.data, and is saved as JSON next to the
TFRecords:

  {"levels": ["fine", "coarse"],
   "names": {"fine": ["t-shirt/top", ...], "coarse": ["tops", ...]},
   "parents": {"coarse": [0, 2, 0, ...]}}

`parents[level][i]` is the label at `level` of finest label i; the finest
level (first in `levels`) maps to itself.
"""
import dataclasses
import json

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class LabelHierarchy:
  """Levels from finest to coarsest, class names and parent tables."""
  levels: tuple[str, ...]
  names: dict[str, tuple[str, ...]]
  parents: dict[str, tuple[int, ...]]

  def __post_init__(self):
    _check(self)

  @property
  def finest(self) -> str:
    return self.levels[0]

  def num_classes(self, level: str) -> int:
    self._check_level(level)
    return len(self.names[level])

  def table(self, level: str) -> np.ndarray:
    """[num finest classes] int array: finest label -> label at `level`."""
    self._check_level(level)
    if level == self.finest:
      return np.arange(len(self.names[level]))
    return np.asarray(self.parents[level], np.int64)

  def to_level(self, fine_labels, level: str):
    """Maps finest labels (NumPy or a tf.Tensor) to `level`."""
    table = self.table(level)
    if isinstance(fine_labels, tf.Tensor):
      return tf.gather(tf.constant(table, fine_labels.dtype), fine_labels)
    return table[np.asarray(fine_labels)]

  def _check_level(self, level: str) -> None:
    if level not in self.levels:
      raise ValueError(f'Unknown label level {level!r}; this hierarchy has '
                       f'{list(self.levels)}.')

  def to_json(self) -> dict:
    return {'levels': list(self.levels),
            'names': {k: list(v) for k, v in self.names.items()},
            'parents': {k: list(v) for k, v in self.parents.items()}}


def _check(h: LabelHierarchy) -> None:
  """Raises ValueError naming the key of any inconsistency."""
  if not h.levels:
    raise ValueError(f'"levels" is empty.')
  for level in h.levels:
    if level not in h.names:
      raise ValueError(f'"names" has no level {level!r}.')
  fine = len(h.names[h.finest])
  for level in h.levels[1:]:
    if level not in h.parents:
      raise ValueError(f'"parents" has no level {level!r}.')
    parents = h.parents[level]
    if len(parents) != fine:
      raise ValueError(f'parents[{level!r}] has {len(parents)} '
                       f'entries; the finest level {h.finest!r} has {fine} '
                       'classes.')
    count = len(h.names[level])
    for i, parent in enumerate(parents):
      if not 0 <= parent < count:
        raise ValueError(f'parents[{level!r}][{i}] = {parent} is '
                         f'not a label of {level!r} (0..{count - 1}).')


def from_json(data: dict, where: str = 'hierarchy') -> LabelHierarchy:
  """Builds a hierarchy from its JSON dict; errors name `where` and the key."""
  try:
    return LabelHierarchy(
        levels=tuple(data['levels']),
        names={k: tuple(v) for k, v in data['names'].items()},
        parents={k: tuple(int(p) for p in v)
                 for k, v in data.get('parents', {}).items()})
  except KeyError as e:
    raise ValueError(f'{where}: missing key {e.args[0]!r}.') from e
  except (ValueError, TypeError, AttributeError) as e:
    raise ValueError(f'{where}: {e}') from e


def load(path: str) -> LabelHierarchy:
  """Reads a hierarchy JSON file; errors name the file."""
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f'Label hierarchy {path} does not exist.')
  with tf.io.gfile.GFile(path) as f:
    try:
      data = json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f'{path}: not JSON ({e}).') from e
  return from_json(data, where=path)


def save(hierarchy: LabelHierarchy, path: str) -> None:
  with tf.io.gfile.GFile(path, 'w') as f:
    json.dump(hierarchy.to_json(), f, indent=1)
