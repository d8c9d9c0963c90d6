"""SSDLite-style feature maps for Model Garden's RetinaNet meta-architecture.

SSDLite (MobileNetV2, Sandler et al. 2018) predicts from the backbone's last
feature maps plus extra, cheap stride-2 layers, with 3x3 depthwise-separable
predictors and no top-down (FPN) path. Model Garden has FPN, NAS-FPN and an
identity decoder but no SSDLite, so this decoder builds the SSDLite feature
pyramid and registers it as decoder `ssdlite`; paired with a RetinaNet head
of `num_convs: 0, use_separable_conv: true` (separable predictors only) it
gives an SSDLite-style detector trained with Model Garden's RetinaNet task.

Differences from the SSDLite paper, on purpose: every level is projected to
`num_filters` channels by a 1x1 conv (Model Garden's heads share weights
across levels, so levels need one width), and the loss is RetinaNet's focal
loss instead of SSD's hard-negative mining.

Per level (min_level..max_level):
  backbone level l: 1x1 conv to num_filters + BN + activation;
  extra level l > the backbone's last: 1x1 conv to num_filters/2, 3x3
    depthwise stride 2, 1x1 conv to num_filters (each + BN + activation),
    from level l-1.
"""
from typing import Any, Mapping

import tensorflow as tf, tf_keras
from official.modeling import hyperparams
from official.vision.modeling.decoders import factory

from univision.modeling.layers import conv_norm


@tf_keras.utils.register_keras_serializable(package='univision')
class SSDLiteFeatures(tf_keras.Model):
  """Backbone endpoints -> SSDLite feature maps {str(level): tensor}."""

  def __init__(self,
               input_specs: Mapping[str, tf.TensorShape],
               min_level: int = 3,
               max_level: int = 6,
               num_filters: int = 128,
               activation: str = 'relu',
               use_sync_bn: bool = False,
               norm_momentum: float = 0.99,
               norm_epsilon: float = 0.001,
               kernel_regularizer: tf_keras.regularizers.Regularizer
               | None = None,
               **kwargs):
    """Builds the decoder.

    Args:
      input_specs: The backbone's `output_specs` ({level: shape}).
      min_level: The finest output level; the backbone must have it.
      max_level: The coarsest output level; levels past the backbone's last
        are extra layers.
      num_filters: Channels of every output level (even).
      activation: Activation name.
      use_sync_bn: Whether batch norms are synchronized across replicas.
      norm_momentum: Batch-norm momentum.
      norm_epsilon: Batch-norm epsilon.
      kernel_regularizer: Regularizer of the conv kernels.
      **kwargs: `tf_keras.Model` arguments.
    """
    levels = sorted(int(k) for k in input_specs if str(k).isdigit())
    if min_level not in levels:
      raise ValueError(f'decoder.ssdlite: min_level {min_level} is not a '
                       f'backbone level (backbone levels: {levels}).')
    if max_level < min_level or num_filters % 2:
      raise ValueError(f'decoder.ssdlite: need min_level <= max_level and '
                       f'an even num_filters; got levels {min_level}..'
                       f'{max_level}, num_filters {num_filters}.')
    config = dict(min_level=min_level, max_level=max_level,
                  num_filters=num_filters, activation=activation,
                  use_sync_bn=use_sync_bn, norm_momentum=norm_momentum,
                  norm_epsilon=norm_epsilon,
                  kernel_regularizer=conv_norm.serialize_regularizer(
                      kernel_regularizer))
    conv_args = dict(activation=activation, use_sync_bn=use_sync_bn,
                     norm_momentum=norm_momentum, norm_epsilon=norm_epsilon,
                     kernel_regularizer=kernel_regularizer)
    inputs = {str(k): tf_keras.Input(shape=input_specs[k][1:])
              for k in input_specs}
    last = max(l for l in levels if l <= max_level)
    features = {}
    for level in range(min_level, last + 1):
      features[str(level)] = conv_norm.ConvNormAct(
          num_filters, 1, name=f'project_{level}', **conv_args)(
              inputs[str(level)])
    x = features[str(last)]
    for level in range(last + 1, max_level + 1):
      x = conv_norm.ConvNormAct(num_filters // 2, 1,
                                name=f'extra_{level}_reduce', **conv_args)(x)
      x = conv_norm.ConvNormAct(None, 3, strides=2, depthwise=True,
                                name=f'extra_{level}_depthwise',
                                **conv_args)(x)
      x = conv_norm.ConvNormAct(num_filters, 1,
                                name=f'extra_{level}_expand', **conv_args)(x)
      features[str(level)] = x
    super().__init__(inputs=inputs, outputs=features, **kwargs)
    self._input_specs = input_specs
    self._config_dict = config
    self._output_specs = {k: v.get_shape() for k, v in features.items()}

  @property
  def output_specs(self) -> Mapping[str, tf.TensorShape]:
    return self._output_specs

  def get_config(self) -> dict[str, Any]:
    return {'input_specs': {k: v.as_list() for k, v in
                            self._input_specs.items()},
            **self._config_dict}

  @classmethod
  def from_config(cls, config, custom_objects=None):
    config = dict(config)
    config['input_specs'] = {k: tf.TensorShape(v)
                             for k, v in config['input_specs'].items()}
    config['kernel_regularizer'] = tf_keras.regularizers.get(
        config['kernel_regularizer'])
    return cls(**config)


@factory.register_decoder_builder('ssdlite')
def build_ssdlite(input_specs: Mapping[str, tf.TensorShape],
                  model_config: hyperparams.Config,
                  l2_regularizer: tf_keras.regularizers.Regularizer
                  | None = None) -> tf_keras.Model:
  """Builds `SSDLiteFeatures` from a RetinaNet model config."""
  decoder = model_config.decoder
  if decoder.type != 'ssdlite':
    raise ValueError(f'Inconsistent decoder type {decoder.type!r}.')
  norm = model_config.norm_activation
  return SSDLiteFeatures(
      input_specs=input_specs, min_level=model_config.min_level,
      max_level=model_config.max_level,
      num_filters=decoder.ssdlite.num_filters, activation=norm.activation,
      use_sync_bn=norm.use_sync_bn, norm_momentum=norm.norm_momentum,
      norm_epsilon=norm.norm_epsilon, kernel_regularizer=l2_regularizer)
