"""Convolution + batch norm + activation, with TF or PyTorch-style padding.

Two padding modes exist because the same architecture is trained in two
ecosystems:

* ``'same'``: TensorFlow's SAME padding. For a stride-2 conv on an even input
  it pads one pixel at the bottom/right only.
* ``'symmetric'``: PyTorch's explicit padding of ``((s - 1) + d * (k - 1)) // 2``
  pixels on every side, the convention timm's MobileNetV4 weights were trained
  with. Only strided convs differ from ``'same'``; for them an explicit
  ``ZeroPadding2D`` precedes a VALID conv.
"""
from typing import Any

import tensorflow as tf, tf_keras

from univision.modeling.layers import antialias as antialias_lib

PADDING_MODES = ('same', 'symmetric')


def check_padding(padding: str) -> str:
  """Returns `padding` if it is a known mode, else raises a `ValueError`."""
  if padding not in PADDING_MODES:
    raise ValueError(
        f'padding={padding!r} is not one of {PADDING_MODES}.')
  return padding


def symmetric_padding_size(kernel_size: int, strides: int,
                           dilation_rate: int = 1) -> int:
  """Pixels padded on each side by PyTorch-style symmetric padding."""
  return ((strides - 1) + dilation_rate * (kernel_size - 1)) // 2


def needs_explicit_padding(padding: str, kernel_size: int,
                           strides: int) -> bool:
  """Whether `symmetric` mode differs from SAME for this conv."""
  return padding == 'symmetric' and (strides > 1 or kernel_size % 2 == 0)


def serialize_regularizer(regularizer) -> dict[str, Any] | None:
  """A JSON-able form of a regularizer (None stays None) for `get_config`."""
  return tf_keras.regularizers.serialize(regularizer) if regularizer else None


def conv_norm_kwargs(padding: str = 'same',
                     kernel_initializer: str = 'VarianceScaling',
                     kernel_regularizer=None,
                     use_sync_bn: bool = False,
                     norm_momentum: float = 0.99,
                     norm_epsilon: float = 0.001,
                     antialias: str = '') -> dict[str, Any]:
  """The `ConvNormAct` arguments a block passes to all its convs, checked.

  Blocks keep this dict both to build their convs and in `get_config`;
  `antialias` (a key only when set) acts on the strided ones only.
  """
  kwargs = dict(
      padding=check_padding(padding),
      kernel_initializer=kernel_initializer,
      kernel_regularizer=tf_keras.regularizers.get(kernel_regularizer),
      use_sync_bn=use_sync_bn,
      norm_momentum=norm_momentum,
      norm_epsilon=norm_epsilon)
  if antialias_lib.check_antialias(antialias):
    kwargs['antialias'] = antialias
  return kwargs


def serialize_conv_norm_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
  """`conv_norm_kwargs` output made JSON-able for `get_config`."""
  return {**kwargs,
          'kernel_regularizer': serialize_regularizer(
              kwargs['kernel_regularizer'])}


@tf_keras.utils.register_keras_serializable(package='univision')
class ConvNormAct(tf_keras.layers.Layer):
  """A k x k convolution (full or depthwise), batch norm, optional activation.

  The conv has no bias: batch norm provides the shift, as in MobileNetV4.
  """

  def __init__(self,
               filters: int | None,
               kernel_size: int,
               strides: int = 1,
               depthwise: bool = False,
               activation: str | None = 'relu',
               use_norm: bool = True,
               padding: str = 'same',
               kernel_initializer: str = 'VarianceScaling',
               kernel_regularizer: tf_keras.regularizers.Regularizer
               | None = None,
               use_sync_bn: bool = False,
               norm_momentum: float = 0.99,
               norm_epsilon: float = 0.001,
               antialias: str = '',
               **kwargs):
    """Initializes the layer.

    Args:
      filters: An `int` of output channels; ignored (may be None) when
        `depthwise`, which keeps the input channels.
      kernel_size: An `int` kernel size.
      strides: An `int` stride.
      depthwise: A `bool`, whether the conv is depthwise.
      activation: A `str` activation name or None for no activation.
      use_norm: A `bool`, whether to apply batch norm after the conv.
      padding: A `str`, `'same'` or `'symmetric'` (see module docstring).
      kernel_initializer: A `str` kernel initializer name.
      kernel_regularizer: A `tf_keras.regularizers.Regularizer` or None.
      use_sync_bn: A `bool`, whether to use synchronized batch norm.
      norm_momentum: A `float` batch norm moving average momentum.
      norm_epsilon: A `float` batch norm epsilon.
      antialias: '' (none), 'avg' or 'blur': with `strides` > 1, the conv
        runs at stride 1 and that low-pass layer downsamples after the
        norm and activation (`antialias.downsample`), as timm's
        anti-aliased MobileNetV4s do.
      **kwargs: Keyword arguments for `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    if not depthwise and not filters:
      raise ValueError(f'{self.name}: a full conv needs `filters`, got '
                       f'{filters!r}.')
    self._filters = filters
    self._kernel_size = kernel_size
    self._strides = strides
    self._depthwise = depthwise
    self._activation = activation
    self._use_norm = use_norm
    self._padding = check_padding(padding)
    self._kernel_initializer = kernel_initializer
    self._kernel_regularizer = tf_keras.regularizers.get(kernel_regularizer)
    self._use_sync_bn = use_sync_bn
    self._norm_momentum = norm_momentum
    self._norm_epsilon = norm_epsilon
    self._antialias = antialias_lib.check_antialias(antialias)

  def build(self, input_shape):
    aa = self._antialias and self._strides > 1
    conv_strides = 1 if aa else self._strides
    explicit = needs_explicit_padding(self._padding, self._kernel_size,
                                      conv_strides)
    self._pad = None
    if explicit:
      self._pad = tf_keras.layers.ZeroPadding2D(
          symmetric_padding_size(self._kernel_size, conv_strides))
    conv_args = dict(
        kernel_size=self._kernel_size,
        strides=conv_strides,
        padding='valid' if explicit else 'same',
        use_bias=False)
    if self._depthwise:
      self.conv = tf_keras.layers.DepthwiseConv2D(
          depthwise_initializer=self._kernel_initializer,
          depthwise_regularizer=self._kernel_regularizer,
          **conv_args)
    else:
      self.conv = tf_keras.layers.Conv2D(
          self._filters,
          kernel_initializer=self._kernel_initializer,
          kernel_regularizer=self._kernel_regularizer,
          **conv_args)
    self.norm = None
    if self._use_norm:
      self.norm = tf_keras.layers.BatchNormalization(
          momentum=self._norm_momentum,
          epsilon=self._norm_epsilon,
          synchronized=self._use_sync_bn)
    self.act = (tf_keras.layers.Activation(self._activation)
                if self._activation else None)
    self.aa = (antialias_lib.downsample(self._antialias, self._strides)
               if aa else None)
    super().build(input_shape)

  @property
  def pre_activation_channels(self) -> int:
    """Channels of the features `modulate` sees (the conv's); built."""
    return (self.conv.filters if not self._depthwise
            else self.conv.kernel.shape[2])

  def call(self, inputs, training=None, modulate=None):
    """Conv, norm, `modulate` (a function of the normalised features, e.g.
    a query modulation; None: none), activation, anti-aliasing."""
    x = self._pad(inputs) if self._pad is not None else inputs
    x = self.conv(x)
    if self.norm is not None:
      x = self.norm(x, training=training)
    if modulate is not None:
      x = modulate(x)
    if self.act is not None:
      x = self.act(x)
    if self.aa is not None:
      x = self.aa(x)
    return x

  def get_config(self) -> dict[str, Any]:
    config = {
        'filters': self._filters,
        'kernel_size': self._kernel_size,
        'strides': self._strides,
        'depthwise': self._depthwise,
        'activation': self._activation,
        'use_norm': self._use_norm,
        'padding': self._padding,
        'kernel_initializer': self._kernel_initializer,
        'kernel_regularizer': serialize_regularizer(self._kernel_regularizer),
        'use_sync_bn': self._use_sync_bn,
        'norm_momentum': self._norm_momentum,
        'norm_epsilon': self._norm_epsilon,
        'antialias': self._antialias,
    }
    return {**super().get_config(), **config}


class ExpansionModulated:
  """Mixin of the blocks whose first activated features are their
  expansion, `self.expand` (a `ConvNormAct`): their `call` takes
  `modulate`, a function of features (e.g. a query modulation) applied to
  the expansion after its norm, before its activation."""

  @property
  def pre_activation_channels(self) -> int:
    """Channels of the expansion (the block's widest features); built."""
    return self.expand.pre_activation_channels
