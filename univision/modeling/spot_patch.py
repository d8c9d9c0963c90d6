"""SpotPatch: learned gates that put a model's layers in a task's patch.

SpotPatch (arXiv 2101.01260) learns, per task, which layers of a shared,
frozen detector get task-specific weights. `SpotPatch.attach(model, layers)`
gives each candidate layer (convs, depthwise and separable convs, dense) a
task copy of its kernels, initialised from the shared ones, and a
`SpotGate`; from then on the layer computes with

  (1 - g) * shared kernel + g * copy

(`spot_gate.mix`, exact at g = 0 or 1). The model's layers and checkpoint
names stay as they are; the copies and gates are new variables of the
`SpotPatch` module. Training differentiates the detection loss plus
lambda * `penalty()` with respect to `variables()` (copies and gate
logits; batch norm and the predictor join through `univision.modeling.
patches`). `resample()` draws the gates' noise once per step, so a layer
called several times in one step (Model Garden's heads share their convs
across pyramid levels) sees one gate value. `harden()` fixes the gates;
the patch is then the copies of the gated-on layers. A gate may serve a
group of layers: `attach(..., granularity='block')` gives one gate per
block (`blocks`), so whole blocks join the patch or stay shared.

Why the layers' kernels are swapped at call time instead of wrapping the
layers: Model Garden's heads and backbones keep their layers in private
lists and call them directly, so a wrapper would have to be spliced into
each model family; swapping the kernel attribute for the mixed tensor while
the layer's own `call` runs works for every Keras conv and dense layer. The
swap happens while a function is traced and is guarded by a lock, so
replicas traced in parallel threads (MirroredStrategy) do not interleave.
"""
import threading
from typing import Optional, Sequence

import tensorflow as tf, tf_keras
from tf_keras.src.engine import base_layer_utils  # pylint: disable=g-direct-tensorflow-import

from univision.modeling.layers import spot_gate

_SWAP_LOCK = threading.RLock()


def kernel_attributes(layer: tf_keras.layers.Layer) -> tuple[str, ...]:
  """The kernel attributes a gate mixes for `layer` (none: not a candidate).

  Args:
    layer: Any Keras layer.

  Returns:
    ('kernel',) for Conv2D and Dense, ('depthwise_kernel',) for
    DepthwiseConv2D, both kernels for SeparableConv2D, () otherwise.
  """
  if isinstance(layer, tf_keras.layers.SeparableConv2D):
    return ('depthwise_kernel', 'pointwise_kernel')
  if isinstance(layer, tf_keras.layers.DepthwiseConv2D):
    return ('depthwise_kernel',)
  if isinstance(layer, (tf_keras.layers.Conv2D, tf_keras.layers.Dense)):
    return ('kernel',)
  return ()


def candidate_kernels(model: tf_keras.Model,
                      exclude: Sequence[tf_keras.layers.Layer] = ()
                      ) -> list[tf.Variable]:
  """The shared kernels of `candidates`, in order: a patch file's positions.

  Read outside a layer's call, a gated layer's kernel attributes are its
  shared variables, so the list is the same with or without a SpotPatch.
  """
  return [getattr(layer, attribute)
          for layer in candidates(model, exclude)
          for attribute in kernel_attributes(layer)]


def candidates(model: tf_keras.Model,
               exclude: Sequence[tf_keras.layers.Layer] = ()
               ) -> list[tf_keras.layers.Layer]:
  """Built conv and dense layers of `model`, in `submodules` order.

  Args:
    model: A built model.
    exclude: Layers to leave out (e.g. the predictor, always in the patch).

  Returns:
    The layers a gate can put in the patch.
  """
  excluded = {id(layer) for layer in exclude}
  return [layer for layer in model.submodules
          if isinstance(layer, tf_keras.layers.Layer) and layer.built
          and kernel_attributes(layer) and id(layer) not in excluded]


class SpotPatch(tf.Module):
  """Gates and kernel copies attached to the candidate layers of a model."""

  def __init__(self, layers: Sequence[tf_keras.layers.Layer],
               groups: Optional[Sequence[Sequence[int]]] = None,
               initial_logit: float = 0.0,
               initial_temperature: float = 1.0,
               group_names: Optional[Sequence[str]] = None,
               name: str = 'spot_patch'):
    """Attaches gates and kernel copies to the layers (see the module).

    Args:
      layers: Built candidate layers (`candidates`), in the model's
        candidate order (a patch file's kernel positions follow it).
      groups: Indices into `layers` sharing one gate (`blocks`); default:
        a gate per layer. Every layer must be in exactly one group.
      initial_logit: Each gate's logit at the start (0: P(copy) = 0.5).
      initial_temperature: The gates' relaxation temperature at the start.
      group_names: A name per group (default: its layers' names joined).
      name: The module's name.

    Raises:
      ValueError: naming a layer that is not a built conv or dense layer,
        appears twice, already has a gate, or is in no or several groups.
    """
    super().__init__(name=name)
    seen = set()
    for layer in layers:
      if not (layer.built and kernel_attributes(layer)):
        raise ValueError(f'SpotPatch: layer {layer.name!r} is not a built '
                         'conv or dense layer.')
      if id(layer) in seen or getattr(layer, '_spot_gated', False):
        raise ValueError(f'SpotPatch: layer {layer.name!r} already has a '
                         'gate.')
      seen.add(id(layer))
    layers = tuple(layers)
    groups = [list(g) for g in groups] if groups is not None else [
        [i] for i in range(len(layers))]
    members = sorted(i for group in groups for i in group)
    if members != list(range(len(layers))):
      missing = sorted(set(range(len(layers))) - set(members))
      raise ValueError(
          'SpotPatch: every layer needs exactly one gate group; '
          + (f'layer {layers[missing[0]].name!r} is in none.' if missing
             else 'a layer is in several groups.'))
    # The layers are reached through a function, which tf.Module does not
    # track: the shared kernels are not this module's variables.
    self._layers = lambda: layers
    self.layer_names = [layer.name for layer in layers]
    self.groups = groups
    self.gate_names = list(group_names) if group_names else [
        '+'.join(self.layer_names[i] for i in group) for group in groups]
    self._gate_of = {i: g for g, group in enumerate(groups) for i in group}
    self.gates = [spot_gate.SpotGate(initial_logit, initial_temperature,
                                     name=f'gate_{i}')
                  for i in range(len(groups))]
    for gate in self.gates:
      gate.build(None)
    self.copies = [
        [tf.Variable(getattr(layer, attribute).read_value(), trainable=True,
                     name=f'copy_{i}_{attribute}')
         for attribute in kernel_attributes(layer)]
        for i, layer in enumerate(layers)]
    self.noise = tf.Variable(tf.fill([max(1, len(groups))], 0.5),
                             trainable=False, name='noise')
    for index, layer in enumerate(layers):
      self._install(index, layer)

  @property
  def sizes(self) -> list[int]:
    """|W_l|: the kernel parameters each gate would put in the patch."""
    return [sum(c.shape.num_elements() for i in group for c in self.copies[i])
            for group in self.groups]

  def variables_to_train(self) -> list[tf.Variable]:
    """The copies and gate logits (hardened gates' logits left out)."""
    variables = [c for copies in self.copies for c in copies]
    return variables + [g.logit for g in self.gates if g.hard_value is None]

  def resample(self) -> None:
    """Draws the gates' noise for the next step (call once per step)."""
    self.noise.assign(tf.random.uniform(self.noise.shape))

  def set_temperature(self, temperature: tf.Tensor) -> None:
    """Sets every gate's relaxation temperature."""
    for gate in self.gates:
      gate.temperature.assign(temperature)

  def penalty(self, total_parameters: int) -> tf.Tensor:
    """The patch's expected share of `total_parameters` (`size_penalty`)."""
    return spot_gate.size_penalty(self.gates, self.sizes, total_parameters)

  def reset_copies(self) -> None:
    """Copies the shared kernels again (after the base is restored)."""
    for layer, copies in zip(self._layers(), self.copies):
      for attribute, copy in zip(kernel_attributes(layer), copies):
        copy.assign(getattr(layer, attribute))

  def harden(self) -> list[str]:
    """Fixes every gate (P > 0.5: copy); returns the gated-on groups."""
    return [name for name, gate in zip(self.gate_names, self.gates)
            if gate.harden() == 1.0]

  def patch_kernels(self) -> dict[int, tf.Variable]:
    """The copies of the gated-on layers, by `candidate_kernels` position.

    The patch's layers must be `candidates(model, exclude)` in order (as
    `attach` makes them) for the positions to be those of
    `candidate_kernels(model, exclude)`.

    Raises:
      ValueError: if a gate is not hardened (`harden` first).
    """
    learning = [n for n, g in zip(self.gate_names, self.gates)
                if g.hard_value is None]
    if learning:
      raise ValueError(f'SpotPatch: gates of {learning[:3]} are not hardened; '
                       'call harden() before saving the patch.')
    kernels, position = {}, 0
    for index, copies in enumerate(self.copies):
      for copy in copies:
        if self.gates[self._gate_of[index]].hard_value == 1.0:
          kernels[position] = copy
        position += 1
    return kernels

  def _install(self, index: int, layer: tf_keras.layers.Layer) -> None:
    """Makes `layer` compute with the mixed kernels (see the module)."""
    attributes = kernel_attributes(layer)
    shared = [getattr(layer, attribute) for attribute in attributes]
    original_call = layer.call
    patch = self

    group = self._gate_of[index]

    def gated_call(*args, **kwargs):
      gate = patch.gates[group].value(training=_in_training(),
                                      uniform=patch.noise[group])
      with _SWAP_LOCK:
        for attribute, kernel, copy in zip(attributes, shared,
                                           patch.copies[index]):
          object.__setattr__(layer, attribute,
                             spot_gate.mix(kernel, copy, gate))
        try:
          return original_call(*args, **kwargs)
        finally:
          for attribute, kernel in zip(attributes, shared):
            object.__setattr__(layer, attribute, kernel)

    object.__setattr__(layer, 'call', gated_call)
    object.__setattr__(layer, '_spot_gated', True)


def _in_training() -> bool:
  """Whether the enclosing Keras call is a training call.

  Keras passes `training` down the layer calls through its call context;
  conv and dense layers take no `training` argument of their own.
  """
  training = base_layer_utils.call_context().training
  return bool(training) if isinstance(training, bool) else False


def blocks(model: tf_keras.Model,
           layers: Sequence[tf_keras.layers.Layer]
           ) -> tuple[list[list[int]], list[str]]:
  """Groups `layers` by block: (index groups, block names).

  A block is a child of one of the model's parts (backbone, decoder,
  head): a MobileNetV4 backbone's blocks (stem, each UIB / MQA block, ...),
  while the layers an FPN or a detection head holds directly are blocks of
  their own. A gate per block puts whole blocks in the patch.
  """
  block_of = {}
  for part in model._flatten_layers(include_self=False, recursive=False):  # pylint: disable=protected-access
    for child in part._flatten_layers(include_self=False, recursive=False):  # pylint: disable=protected-access
      for layer in child._flatten_layers(include_self=True, recursive=True):  # pylint: disable=protected-access
        block_of.setdefault(id(layer), child)
  groups, names, index_of = [], [], {}
  for i, layer in enumerate(layers):
    block = block_of.get(id(layer), layer)
    if id(block) not in index_of:
      index_of[id(block)] = len(groups)
      groups.append([])
      names.append(block.name)
    groups[index_of[id(block)]].append(i)
  return groups, names


GRANULARITIES = ('layer', 'block')


def attach(model: tf_keras.Model,
           exclude: Sequence[tf_keras.layers.Layer] = (),
           initial_logit: float = 0.0,
           initial_temperature: float = 1.0,
           granularity: str = 'layer') -> Optional[SpotPatch]:
  """Gates the candidate layers of `model` (`candidates`); None if none.

  Args:
    model: A built model.
    exclude: Layers that get no gate (e.g. the predictor).
    initial_logit: Each gate's logit at the start.
    initial_temperature: The gates' temperature at the start.
    granularity: 'layer' (a gate per layer) or 'block' (`blocks`).

  Raises:
    ValueError: for an unknown granularity.
  """
  if granularity not in GRANULARITIES:
    raise ValueError(f'SpotPatch granularity {granularity!r}; choose from '
                     f'{GRANULARITIES}.')
  layers = candidates(model, exclude)
  if not layers:
    return None
  groups, names = None, None
  if granularity == 'block':
    groups, names = blocks(model, layers)
  return SpotPatch(layers, groups, initial_logit, initial_temperature,
                   group_names=names)
