"""Model patches: a small named set of a model's variables, saved on its own.

Mudrakarta et al., "K for the Price of 1: Parameter-efficient Multi-task and
Transfer Learning" (ICLR 2019) and SpotPatch (arXiv 2101.01260): a model for
task k is a shared base plus a small per-task patch. A patch here is chosen
by KIND, and kinds combine with '+':

| kind        | variables                                                |
|-------------|----------------------------------------------------------|
| `bn`        | batch-norm scale and shift (gamma, beta)                 |
| `bias`      | biases of convs and dense layers                          |
| `depthwise` | depthwise conv kernels                                    |
| `head`      | every trainable variable of `model.head` (detection head) |

e.g. `'bn+head'`. Batch-norm moving statistics travel with `bn` (a patch
that retunes BN on a new task must bring the statistics it was trained with)
but are not counted as patch parameters (they are not trained).

A patch file (`.npz`) stores the values in the model's variable order with
names and shapes, plus the kinds; loading checks every name and shape.
"""
import dataclasses
import io
import json
from typing import Sequence
import zipfile

import numpy as np
import tensorflow as tf, tf_keras

KINDS = ('bn', 'bias', 'depthwise', 'head')
# Model Garden's heads use SyncBatchNormalization, not a BatchNormalization.
NORM_LAYERS = (tf_keras.layers.BatchNormalization,
               tf_keras.layers.experimental.SyncBatchNormalization)
_BN_TRAINED = ('gamma', 'beta')
_BN_STATS = ('moving_mean', 'moving_variance')


def parse_kinds(spec: str) -> tuple[str, ...]:
  """'bn+head' -> ('bn', 'head'), checked against `KINDS`."""
  kinds = tuple(k.strip() for k in spec.split('+') if k.strip())
  unknown = [k for k in kinds if k not in KINDS]
  if not kinds or unknown:
    raise ValueError(f'Patch {spec!r}: unknown kind(s) {unknown or [spec]}; '
                     f'kinds are {", ".join(KINDS)}, combined with "+".')
  return kinds


def _short_name(name: str) -> str:
  """'a/b/gamma:0' -> 'gamma'."""
  return name.split('/')[-1].split(':')[0]


def _owners(model: tf_keras.Model) -> dict[int, tf_keras.layers.Layer]:
  """id(variable) -> the innermost layer that created it."""
  owners = {}
  for layer in model.submodules:
    if isinstance(layer, tf_keras.layers.Layer):
      for variable in layer._trainable_weights + layer._non_trainable_weights:  # pylint: disable=protected-access
        owners[id(variable)] = layer
  return owners


def _in_kind(kind: str, variable: tf.Variable, layer, head_ids) -> bool:
  name = _short_name(variable.name)
  is_norm = isinstance(layer, NORM_LAYERS)
  if kind == 'bn':
    return is_norm and name in _BN_TRAINED + _BN_STATS
  if kind == 'bias':
    return name == 'bias' and not is_norm
  if kind == 'depthwise':
    return name == 'depthwise_kernel'
  return id(variable) in head_ids  # 'head'


def select(model: tf_keras.Model, spec: str) -> list[tf.Variable]:
  """The variables of patch `spec`, in `model.weights` order.

  Raises:
    ValueError: for an unknown kind, or `head` on a model without `.head`.
  """
  kinds = parse_kinds(spec)
  head_ids = set()
  if 'head' in kinds:
    head = getattr(model, 'head', None)
    if head is None:
      raise ValueError(f'Patch {spec!r}: {type(model).__name__} has no '
                       '`head` attribute.')
    head_ids = {id(v) for v in head.trainable_weights}
  owners = _owners(model)
  return [v for v in model.weights
          if any(_in_kind(k, v, owners.get(id(v)), head_ids) for k in kinds)]


def trainable(variables: Sequence[tf.Variable]) -> list[tf.Variable]:
  """The patch variables an optimizer updates (BN statistics excluded)."""
  return [v for v in variables if v.trainable]


@dataclasses.dataclass(frozen=True)
class PatchSize:
  parameters: int  # Trained patch parameters.
  model_parameters: int  # Trainable parameters of the whole model.
  file_bytes: int  # float32 bytes of everything the patch file stores.

  @property
  def fraction(self) -> float:
    return self.parameters / self.model_parameters


def size(model: tf_keras.Model, spec: str) -> PatchSize:
  variables = select(model, spec)
  count = lambda vs: int(sum(np.prod(v.shape) for v in vs))
  return PatchSize(count(trainable(variables)),
                   count(model.trainable_weights),
                   4 * count(variables))


def save(model: tf_keras.Model, spec: str, path: str) -> str:
  """Writes patch `spec` of `model` to `path` (.npz); returns the path."""
  variables = select(model, spec)
  arrays = {f'v{i:05d}': v.numpy() for i, v in enumerate(variables)}
  meta = {'kinds': list(parse_kinds(spec)),
          'names': [v.name for v in variables]}
  buffer = io.BytesIO()
  np.savez(buffer, __meta__=np.array(json.dumps(meta)), **arrays)
  with tf.io.gfile.GFile(path, 'wb') as f:
    f.write(buffer.getvalue())
  return path


def load(model: tf_keras.Model, path: str) -> tuple[str, ...]:
  """Assigns a saved patch to `model`; returns its kinds.

  Raises:
    ValueError: naming the file and the first variable whose name or shape
      differs from the model's (a patch for another architecture or kind).
  """
  with tf.io.gfile.GFile(path, 'rb') as f:
    content = f.read()
  try:
    data = np.load(io.BytesIO(content), allow_pickle=False)
    meta = json.loads(str(data['__meta__']))
    arrays = [data[f'v{i:05d}'] for i in range(len(meta['names']))]
  except (ValueError, KeyError, OSError, zipfile.BadZipFile) as e:
    raise ValueError(f'{path}: not a patch file written by '
                     f'patches.save ({e}).') from e
  kinds = tuple(meta['kinds'])
  variables = select(model, '+'.join(kinds))
  if len(variables) != len(arrays):
    raise ValueError(f'{path}: {len(arrays)} variables in the patch, '
                     f'{len(variables)} of kinds {kinds} in the model.')
  for variable, name, value in zip(variables, meta['names'], arrays):
    if _short_name(variable.name) != _short_name(name) or (
        tuple(variable.shape) != value.shape):
      raise ValueError(f'{path}: patch variable {name} {value.shape} does '
                       f'not fit model variable {variable.name} '
                       f'{tuple(variable.shape)}.')
  for variable, value in zip(variables, arrays):
    variable.assign(value)
  return kinds
