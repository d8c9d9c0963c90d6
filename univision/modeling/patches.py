"""Model patches: a small named set of a model's variables, saved on its own.

Mudrakarta et al., "K for the Price of 1: Parameter-efficient Multi-task and
Transfer Learning" (ICLR 2019) and SpotPatch (arXiv 2101.01260): a model for
task k is a shared base plus a small per-task patch. A patch here is chosen
by KIND, and kinds combine with '+':

| kind             | variables                                                |
|------------------|----------------------------------------------------------|
| `bn`             | batch-norm scale and shift (gamma, beta)                 |
| `bias`           | biases of convs and dense layers                          |
| `depthwise`      | depthwise conv kernels                                    |
| `predictor`      | the head's output layers (class scores, box deltas)       |
| `last_head_conv` | the last conv (kernels, bias) of each of the head's       |
|                  | towers: class, box and any attribute tower                |
| `head_convs`     | every conv of the head's towers (not the predictor)       |
| `decoder`        | every variable of `model.decoder` (FPN, SSDLite features) |
| `head`           | every variable of `model.head` (the detection head)       |

e.g. `'bn+predictor'`. The tower kinds read Model Garden's dense prediction
heads (`_cls_convs`, `_box_convs`, `_att_convs`); the towers' norms are kind
`bn`. On a RetinaNet with an FPN the kinds grow from the predictor (a few %
of the parameters) through `last_head_conv` and `head_convs` to `decoder`,
so fixed patches fill the range up to a full fine-tune. A kind that selects
nothing on a model (e.g. `head_convs` on a head without towers, `num_convs:
0`) is an error, not an empty patch.

Kinds are defined on variables, never on whether a layer is currently
frozen, so a patch selects the same variables before and after
`layer.trainable = False`. A new task with its own classes always needs
`predictor` (or `head`): the base's class scores mean the base's classes.
Batch-norm moving statistics travel with `bn` (a patch that retunes BN on a
new task must bring the statistics it was trained with) but are not counted
as patch parameters (they are not trained); the same holds for the batch
norms in `head` and `decoder`.

A patch file (`.npz`) stores the values in the model's variable order with
names and shapes, plus the kinds; loading checks every name and shape. A
learned SpotPatch (`univision.modeling.spot_patch`) adds the kernels of its
gated-on layers, each stored with its position among the model's gateable
kernels and the name of the shared kernel it replaces: base + patch is then
a plain detector, no gates needed.
"""
import dataclasses
import io
import json
import re
from typing import Mapping, Sequence
import zipfile

import numpy as np
import tensorflow as tf, tf_keras

from univision.modeling import spot_patch

KINDS = ('bn', 'bias', 'depthwise', 'predictor', 'last_head_conv',
         'head_convs', 'decoder', 'head')
# Kinds defined by layers of the model's parts rather than by variable names.
_LAYER_KINDS = ('predictor', 'last_head_conv', 'head_convs', 'decoder', 'head')
# Model Garden's dense prediction heads keep their output layers here.
_PREDICTOR_ATTRIBUTES = ('_classifier', '_box_regressor', '_att_predictors')
# ... and their conv towers here: a list of convs shared by the levels, a list
# of such lists (one per level), or a dict of lists (attribute towers).
_TOWER_ATTRIBUTES = ('_cls_convs', '_box_convs', '_att_convs')
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


def _comparable_name(name: str) -> str:
  """A variable name without Keras' per-build uniquifying suffixes.

  'retina_net_head_1/classnet-conv_0/kernel:0' (a second detector built in
  the same process) -> 'retina_net_head/classnet-conv/kernel'.
  """
  return re.sub(r'_\d+(?=/|$)', '', name.split(':')[0])


def _layer_variables(layer) -> list[tf.Variable]:
  """What the layer itself created, whether or not it is frozen."""
  return layer._trainable_weights + layer._non_trainable_weights  # pylint: disable=protected-access


def _owners(model: tf_keras.Model) -> dict[int, tf_keras.layers.Layer]:
  """id(variable) -> the innermost layer that created it."""
  owners = {}
  for layer in model.submodules:
    if isinstance(layer, tf_keras.layers.Layer):
      for variable in _layer_variables(layer):
        owners[id(variable)] = layer
  return owners


def all_variables(model: tf_keras.Model) -> list[tf.Variable]:
  """Every variable of `model`, in an order that freezing does not change.

  `model.weights` lists trainable layers' variables first, so freezing a
  layer (`trainable = False`) reorders it; a patch file stores values by
  position, so patches use this order: layers depth first, each layer's
  variables in creation order.
  """
  seen, ordered = set(), []
  for layer in [model, *model._flatten_layers(include_self=False)]:  # pylint: disable=protected-access
    for variable in _layer_variables(layer):
      if id(variable) not in seen:
        seen.add(id(variable))
        ordered.append(variable)
  return ordered


def _flatten_layers(value) -> list[tf_keras.layers.Layer]:
  if isinstance(value, dict):
    value = list(value.values())
  if isinstance(value, (list, tuple)):
    return [l for item in value for l in _flatten_layers(item)]
  return [value] if isinstance(value, tf_keras.layers.Layer) else []


def _part(model: tf_keras.Model, name: str,
          spec: str) -> tf_keras.layers.Layer:
  """`model.<name>` (e.g. the head), or a ValueError naming the patch."""
  part = getattr(model, name, None)
  if part is None:
    raise ValueError(f'Patch {spec!r}: {type(model).__name__} has no '
                     f'`{name}` attribute.')
  return part


def _head(model: tf_keras.Model, spec: str) -> tf_keras.layers.Layer:
  return _part(model, 'head', spec)


def predictor_layers(model: tf_keras.Model,
                     spec: str = 'predictor') -> list[tf_keras.layers.Layer]:
  """The head's output layers (class scores, box deltas): kind `predictor`.

  Raises:
    ValueError: naming `spec` if the model has no head or the head none of
      Model Garden's output layers.
  """
  head = _head(model, spec)
  layers = [l for a in _PREDICTOR_ATTRIBUTES
            for l in _flatten_layers(getattr(head, a, None))]
  if not layers:
    raise ValueError(f'Patch {spec!r}: head {type(head).__name__} has none '
                     f'of the output layers {_PREDICTOR_ATTRIBUTES}.')
  return layers


def _towers(value) -> list[list[tf_keras.layers.Layer]]:
  """The conv towers in one of `_TOWER_ATTRIBUTES`, each input side first."""
  if isinstance(value, dict):
    return [tower for item in value.values() for tower in _towers(item)]
  if isinstance(value, (list, tuple)) and value and all(
      isinstance(item, (list, tuple)) for item in value):
    return [_flatten_layers(item) for item in value]  # One per level.
  return [_flatten_layers(value)]


def tower_convs(model: tf_keras.Model,
                spec: str = 'head_convs') -> list[list[tf_keras.layers.Layer]]:
  """The head's conv towers (class, box, attributes), each in call order.

  A head without towers (`num_convs: 0`) gives an empty list.

  Raises:
    ValueError: naming `spec` if the model has no head.
  """
  head = _head(model, spec)
  towers = [tower for a in _TOWER_ATTRIBUTES
            for tower in _towers(getattr(head, a, None))]
  return [tower for tower in towers if tower]


def _kind_layers(model: tf_keras.Model, kind: str,
                 spec: str) -> list[tf_keras.layers.Layer]:
  """The layers whose variables make up a kind of `_LAYER_KINDS`."""
  if kind == 'predictor':
    return predictor_layers(model, spec)
  if kind in ('head', 'decoder'):
    return [_part(model, kind, spec)]
  towers = tower_convs(model, spec)
  if kind == 'last_head_conv':
    return [tower[-1] for tower in towers]
  return [layer for tower in towers for layer in tower]  # 'head_convs'


def _layer_kind_ids(model: tf_keras.Model, kind: str, spec: str) -> set[int]:
  """ids of the variables of a kind of `_LAYER_KINDS`.

  Raises:
    ValueError: naming the kind, the patch and the model if the kind selects
      no variable of the model.
  """
  ids = {id(v) for layer in _kind_layers(model, kind, spec)
         for v in layer.weights}
  if not ids:
    raise ValueError(f'Patch {spec!r}: kind {kind!r} selects no variable of '
                     f'{type(model).__name__} {model.name!r} (e.g. a head '
                     'without conv towers, num_convs 0).')
  return ids


def _in_kind(kind: str, variable: tf.Variable, layer, kind_ids) -> bool:
  name = _short_name(variable.name)
  is_norm = isinstance(layer, NORM_LAYERS)
  if kind == 'bn':
    return is_norm and name in _BN_TRAINED + _BN_STATS
  if kind == 'bias':
    return name == 'bias' and not is_norm
  if kind == 'depthwise':
    return name == 'depthwise_kernel'
  return id(variable) in kind_ids[kind]  # `_LAYER_KINDS`


def select(model: tf_keras.Model, spec: str) -> list[tf.Variable]:
  """The variables of patch `spec`, in `all_variables` order.

  Raises:
    ValueError: for an unknown kind, a head or decoder kind on a model
      without a Model Garden style `.head` / `.decoder`, or a kind that
      selects nothing on the model.
  """
  kinds = parse_kinds(spec)
  kind_ids = {k: _layer_kind_ids(model, k, spec)
              for k in kinds if k in _LAYER_KINDS}
  owners = _owners(model)
  return [v for v in all_variables(model)
          if any(_in_kind(k, v, owners.get(id(v)), kind_ids) for k in kinds)]


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
  """Patch `spec`'s size; the model's parameters count frozen layers too."""
  variables = select(model, spec)
  return PatchSize(count_parameters(trainable(variables)),
                   count_parameters(trainable(model.weights)),
                   4 * count_parameters(variables))


def count_parameters(variables: Sequence[tf.Variable]) -> int:
  """Number of values in `variables`."""
  return int(sum(np.prod(v.shape) for v in variables))


def _kernel_slots(model: tf_keras.Model) -> list[tf.Variable]:
  """The kernels a learned SpotPatch can replace, in patch-file order."""
  return spot_patch.candidate_kernels(model, predictor_layers(model))


def save(model: tf_keras.Model, spec: str, path: str,
         kernels: Mapping[int, tf.Variable] | None = None) -> str:
  """Writes patch `spec` of `model` to `path` (.npz); returns the path.

  Args:
    model: The model whose patch is saved.
    spec: The patch kinds.
    path: The file to write.
    kernels: A learned SpotPatch's kernels (`SpotPatch.patch_kernels`), by
      position in the model's candidate kernels; the file stores them with
      the name of the shared kernel each replaces.

  Returns:
    `path`.
  """
  variables = select(model, spec)
  kernels = dict(sorted((kernels or {}).items()))
  slots = _kernel_slots(model) if kernels else []
  arrays = {f'v{i:05d}': v.numpy() for i, v in enumerate(
      [*variables, *kernels.values()])}
  meta = {'kinds': list(parse_kinds(spec)),
          'names': [v.name for v in variables],
          'kernel_positions': list(kernels),
          'kernel_names': [slots[i].name for i in kernels]}
  buffer = io.BytesIO()
  np.savez(buffer, __meta__=np.array(json.dumps(meta)), **arrays)
  with tf.io.gfile.GFile(path, 'wb') as f:
    f.write(buffer.getvalue())
  return path


@dataclasses.dataclass(frozen=True)
class _PatchFile:
  """A patch file's content: kinds' variables, then positioned kernels."""
  kinds: tuple[str, ...]
  names: list[str]
  arrays: list[np.ndarray]
  kernel_positions: list[int]
  kernel_names: list[str]


def _read(path: str) -> _PatchFile:
  """A patch file's kinds, variable names and values."""
  with tf.io.gfile.GFile(path, 'rb') as f:
    content = f.read()
  try:
    data = np.load(io.BytesIO(content), allow_pickle=False)
    meta = json.loads(str(data['__meta__']))
    positions = meta.get('kernel_positions', [])
    count = len(meta['names']) + len(positions)
    arrays = [data[f'v{i:05d}'] for i in range(count)]
  except (ValueError, KeyError, OSError, zipfile.BadZipFile) as e:
    raise ValueError(f'{path}: not a patch file written by '
                     f'patches.save ({e}).') from e
  return _PatchFile(tuple(meta['kinds']), meta['names'], arrays, positions,
                    meta.get('kernel_names', []))


def _check_fit(path: str, variable: tf.Variable, name: str,
               value: np.ndarray) -> None:
  if _comparable_name(variable.name) != _comparable_name(name) or (
      tuple(variable.shape) != value.shape):
    raise ValueError(f'{path}: patch variable {name} {value.shape} does '
                     f'not fit model variable {variable.name} '
                     f'{tuple(variable.shape)}.')


def _matching_variables(model: tf_keras.Model, path: str,
                        patch: _PatchFile) -> list[tf.Variable]:
  """The model's variables for a patch's values, checked name by name."""
  variables = select(model, '+'.join(patch.kinds))
  if len(variables) != len(patch.names):
    raise ValueError(f'{path}: {len(patch.names)} variables in the patch, '
                     f'{len(variables)} of kinds {patch.kinds} in the model.')
  if patch.kernel_positions:
    slots = _kernel_slots(model)
    if max(patch.kernel_positions) >= len(slots):
      raise ValueError(f'{path}: the patch replaces kernel '
                       f'{max(patch.kernel_positions)} of the gateable '
                       f'layers; the model has {len(slots)}.')
    variables += [slots[i] for i in patch.kernel_positions]
  for variable, name, value in zip(
      variables, [*patch.names, *patch.kernel_names], patch.arrays):
    _check_fit(path, variable, name, value)
  return variables


def load(model: tf_keras.Model, path: str) -> tuple[str, ...]:
  """Assigns a saved patch to `model`; returns its kinds.

  Raises:
    ValueError: naming the file and the first variable whose name or shape
      differs from the model's (a patch for another architecture or kind).
  """
  patch = _read(path)
  variables = _matching_variables(model, path, patch)
  for variable, value in zip(variables, patch.arrays):
    variable.assign(value)
  return patch.kinds


class PatchSwitcher:
  """One model in memory serving many tasks: shared base + patch k.

  The base is loaded once (restore it into `model` before creating the
  switcher). `apply(path)` first puts back the base values of every
  variable an earlier patch changed, then loads the new patch, so patches
  of different kinds never mix.
  """

  def __init__(self, model: tf_keras.Model):
    self._model = model
    self._base = {}  # id(variable) -> (variable, base value)

  def apply(self, path: str) -> tuple[str, ...]:
    """Switches the model to the task of patch file `path`; returns kinds."""
    patch = _read(path)
    variables = _matching_variables(self._model, path, patch)
    self.reset()
    for variable, value in zip(variables, patch.arrays):
      self._base.setdefault(id(variable), (variable, variable.numpy()))
      variable.assign(value)
    return patch.kinds

  def reset(self) -> None:
    """Back to the shared base."""
    for variable, value in self._base.values():
      variable.assign(value)
