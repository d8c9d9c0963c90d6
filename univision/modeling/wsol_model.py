"""A classifier that localizes by class activation maps (CAM).

WSOL (Zhou et al., CVPR 2016; protocol of Choe et al., CVPR 2020): a
classifier trained on image labels only, whose last layers are

  backbone level `feature_level` -> 1x1 conv + BN + ReLU -> [ADL]
  -> global average pooling -> linear classifier,

so that the class-c score is the spatial mean of the map
CAM_c = sum_k w_ck f_k(x, y) (plus a bias): `cams` returns that map for
given classes. Any Model Garden backbone with level endpoints works
(MobileNetV4, ResNet-50, ...). For finer maps, WSOL models remove the last
strides (the reference ResNet-50 its last stage's): MobileNetV4's
`output_stride` does that (e.g. 8, with `feature_level` '3': every block
runs, 16x16 maps at 128 px); reading an earlier level instead skips the
deeper blocks' computation for the map.

ADL (Choe & Shim, CVPR 2019) thresholds the channel mean of activations,
so it goes where features are non-negative: the reference inserts it after
ReLU'd ResNet blocks of the last stages. MobileNetV4's block outputs are
linear projections (signed), so here ADL follows the head's ReLU, the one
activated map before pooling.
"""
import tensorflow as tf, tf_keras

from univision.modeling.layers import attention_dropout


@tf_keras.utils.register_keras_serializable(package='univision')
class WSOLModel(tf_keras.Model):
  """Backbone + CAM head; `call` gives logits, `cams` the maps."""

  def __init__(self, backbone: tf_keras.Model, num_classes: int,
               feature_level: str = '4', feature_dim: int = 256,
               adl: dict | None = None, norm_momentum: float = 0.99,
               norm_epsilon: float = 1e-3,
               kernel_regularizer: tf_keras.regularizers.Regularizer | None
               = None, **kwargs):
    """Initializes the model.

    Args:
      backbone: A backbone returning a dict of level endpoints.
      num_classes: Classes at the training label level.
      feature_level: The endpoint the CAM head reads.
      feature_dim: Channels of the head's 1x1 conv (0: no conv; the
        classifier reads the endpoint directly).
      adl: `AttentionDropout` arguments to apply ADL after the head's ReLU
        (needs `feature_dim`), or None for no ADL.
      norm_momentum: BN momentum of the head conv.
      norm_epsilon: BN epsilon of the head conv.
      kernel_regularizer: Regularizer of the head's kernels.
      **kwargs: `tf_keras.Model` arguments.
    """
    super().__init__(**kwargs)
    self._config = dict(num_classes=num_classes, feature_level=feature_level,
                        feature_dim=feature_dim, adl=adl,
                        norm_momentum=norm_momentum, norm_epsilon=norm_epsilon,
                        kernel_regularizer=kernel_regularizer)
    if adl is not None and not feature_dim:
      raise ValueError('task.adl needs task.model.feature_dim > 0: ADL '
                       'reads activated (ReLU) features, and the backbone\'s '
                       'endpoints are signed.')
    self.backbone = backbone
    self._feature_level = feature_level
    self._adl = (attention_dropout.AttentionDropout(**adl, name='adl')
                 if adl is not None else None)
    self._head = []
    if feature_dim:
      self._head = [
          tf_keras.layers.Conv2D(feature_dim, 1, use_bias=False,
                                 kernel_regularizer=kernel_regularizer,
                                 name='cam_conv'),
          tf_keras.layers.BatchNormalization(momentum=norm_momentum,
                                             epsilon=norm_epsilon,
                                             name='cam_bn'),
          tf_keras.layers.ReLU(name='cam_relu')]
    self.classifier = tf_keras.layers.Dense(
        num_classes, kernel_regularizer=kernel_regularizer, name='classifier')

  @property
  def checkpoint_items(self) -> dict[str, tf_keras.Model]:
    return {'backbone': self.backbone}

  def features(self, images: tf.Tensor, training=None) -> tf.Tensor:
    """The map the classifier pools: [batch, h, w, channels]."""
    endpoints = self.backbone(images, training=training)
    if self._feature_level not in endpoints:
      raise ValueError(f'feature_level {self._feature_level!r} is not a '
                       f'backbone endpoint; it has {sorted(endpoints)}.')
    x = endpoints[self._feature_level]
    for layer in self._head:
      x = layer(x, training=training)
    if self._adl is not None:
      x = self._adl(x, training=training)
    return x

  def call(self, images: tf.Tensor, training=None) -> tf.Tensor:
    pooled = tf.reduce_mean(self.features(images, training), axis=[1, 2])
    return self.classifier(pooled)

  def cams(self, images: tf.Tensor, class_ids: tf.Tensor) -> tf.Tensor:
    """Class activation maps [batch, h, w] of `class_ids` [batch].

    The maps are at the feature resolution, before any normalization;
    their spatial mean plus the class bias is the class's logit.
    """
    features = self.features(images, training=False)
    weights = tf.gather(tf.transpose(self.classifier.kernel),
                        tf.cast(class_ids, tf.int32))  # [batch, channels]
    return tf.einsum('bhwc,bc->bhw', features,
                     tf.cast(weights, features.dtype))

  def get_config(self) -> dict:
    config = dict(self._config)
    config['kernel_regularizer'] = tf_keras.regularizers.serialize(
        config['kernel_regularizer']) if config['kernel_regularizer'] else None
    return {'backbone': tf_keras.layers.serialize(self.backbone), **config}

  @classmethod
  def from_config(cls, config: dict, custom_objects=None) -> 'WSOLModel':
    config = dict(config)
    config['backbone'] = tf_keras.layers.deserialize(
        config['backbone'], custom_objects=custom_objects)
    if config.get('kernel_regularizer'):
      config['kernel_regularizer'] = tf_keras.regularizers.deserialize(
          config['kernel_regularizer'])
    return cls(**config)
