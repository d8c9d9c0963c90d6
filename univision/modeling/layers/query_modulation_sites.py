"""Where a query detector's query enters: backbone blocks and decoder levels.

One `QueryModulation` (`MODULATIONS`: FiLM by default, a multiplicative
gate, or concat-and-project) per site: in each named backbone block (by its
index in the backbone's block list; `PLACEMENTS` say where in it) and on
each named decoder level. Sites not named pass features through unchanged.
"""
from typing import Any, Mapping

import tensorflow as tf, tf_keras

from univision.modeling.layers import conv_norm
from univision.modeling.layers import query_concat
from univision.modeling.layers import query_film
from univision.modeling.layers import query_gate

MODULATIONS = {'film': query_film.QueryFiLM, 'gate': query_gate.QueryGate,
               'concat': query_concat.QueryConcat}
# Where a backbone block's modulation acts. 'output': on the block's output.
# 'pre_activation': inside the block, on its first normalised features
# before their activation (an inverted bottleneck's expansion, a conv
# block's conv), as conditional batch norm does, where a batch norm
# downstream cannot normalise the modulation away.
PLACEMENTS = ('output', 'pre_activation')


@tf_keras.utils.register_keras_serializable(package='univision')
class QueryModulationSites(tf_keras.layers.Layer):
  """The query modulations of one detector, by backbone block and level."""

  def __init__(self, kind: str, block_channels: Mapping[Any, int],
               level_channels: Mapping[Any, int],
               kernel_regularizer: tf_keras.regularizers.Regularizer
               | None = None, block_placement: str = 'output', **kwargs):
    """Initializes the layer.

    Args:
      kind: A key of `MODULATIONS`.
      block_channels: {backbone block index: channels of its modulated
        features}, the blocks modulated.
      level_channels: {decoder level: its channels}, the decoder levels
        modulated.
      kernel_regularizer: Regularizer of every modulation's kernel.
      block_placement: Where in a block its modulation acts, one of
        `PLACEMENTS` (the caller applies it there through `block`).
      **kwargs: `tf_keras.layers.Layer` arguments.

    Raises:
      ValueError: for an unknown `kind` or `block_placement` (named as
        `task.query.modulation` / `task.query.backbone_placement`).
    """
    super().__init__(**kwargs)
    if kind not in MODULATIONS:
      raise ValueError(f'task.query.modulation: {kind!r}; choose from '
                       f'{sorted(MODULATIONS)}.')
    if block_placement not in PLACEMENTS:
      raise ValueError(f'task.query.backbone_placement: {block_placement!r};'
                       f' choose from {list(PLACEMENTS)}.')
    self._kind = kind
    self.block_placement = block_placement
    self._block_channels = {int(k): int(c) for k, c in block_channels.items()}
    self._level_channels = {str(k): int(c) for k, c in level_channels.items()}
    self._kernel_regularizer = tf_keras.regularizers.get(kernel_regularizer)
    make = lambda channels, name: MODULATIONS[kind](
        channels, kernel_regularizer=self._kernel_regularizer, name=name)
    self.blocks = {str(i): make(c, f'{kind}_block{i:02d}')
                   for i, c in sorted(self._block_channels.items())}
    self.levels = {l: make(c, f'{kind}_level{l}')
                   for l, c in sorted(self._level_channels.items())}

  @property
  def block_indices(self) -> list[int]:
    """Indices of the modulated backbone blocks, ascending."""
    return sorted(self._block_channels)

  def block(self, index: int, x: tf.Tensor, query: tf.Tensor) -> tf.Tensor:
    """Block `index`'s features (at `block_placement`), modulated if that
    block is a site."""
    if index not in self._block_channels:
      return x
    return self.blocks[str(index)](x, query)

  def call(self, features: Mapping[str, tf.Tensor],
           query: tf.Tensor) -> dict[str, tf.Tensor]:
    """Decoder levels {level: [B, H, W, C]}, the named ones modulated."""
    missing = [l for l in self._level_channels if l not in features]
    if missing:
      raise ValueError(f'{self.name}: no feature level(s) {missing}; got '
                       f'{sorted(features)}.')
    return {level: (self.levels[level](x, query)
                    if level in self._level_channels else x)
            for level, x in features.items()}

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'kind': self._kind,
            'block_channels': {str(k): v
                               for k, v in self._block_channels.items()},
            'level_channels': dict(self._level_channels),
            'block_placement': self.block_placement,
            'kernel_regularizer': conv_norm.serialize_regularizer(
                self._kernel_regularizer)}
