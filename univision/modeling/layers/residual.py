"""The residual ending that MobileNetV4's blocks share.

FusedIB, UIB and the Mobile MQA block end alike: the branch output, then
(hybrids) a LayerScale, then stochastic depth on the branch, plus the block
input. These functions build and apply that ending; the layers they return
stay attributes of the block (`layer_scale`, `drop_path`), so checkpoints
keep their names.
"""
import tensorflow as tf, tf_keras
from official.vision.modeling.layers import nn_layers

from univision.modeling.layers import layer_scale as layer_scale_lib


def has_residual(use_residual: bool, strides: int, in_filters: int,
                 filters: int) -> bool:
  """Whether a block adds its input: asked for, and the shapes match."""
  return use_residual and strides == 1 and in_filters == filters


def optional_layer_scale(
    init_value: float | None) -> layer_scale_lib.LayerScale | None:
  """A `LayerScale` from `init_value`, or None if that is None or 0."""
  return layer_scale_lib.LayerScale(init_value) if init_value else None


def optional_drop_path(residual: bool,
                       drop_rate: float) -> nn_layers.StochasticDepth | None:
  """The stochastic depth of a residual branch, or None if it has none."""
  if residual and drop_rate:
    return nn_layers.StochasticDepth(drop_rate)
  return None


def block_output(branch: tf.Tensor, inputs: tf.Tensor, residual: bool,
                 layer_scale: tf_keras.layers.Layer | None = None,
                 drop_path: tf_keras.layers.Layer | None = None,
                 training=None) -> tf.Tensor:
  """`inputs + drop_path(layer_scale(branch))`, or without the residual.

  Args:
    branch: The block's branch output.
    inputs: The block's input.
    residual: A `bool`, whether to add `inputs`.
    layer_scale: The `optional_layer_scale` of the block (None: no scale).
    drop_path: The `optional_drop_path` of the block (None: no drop).
    training: Whether stochastic depth is active.

  Returns:
    The block's output.
  """
  if layer_scale is not None:
    branch = layer_scale(branch)
  if not residual:
    return branch
  if drop_path is not None:
    branch = drop_path(branch, training=training)
  return branch + inputs
