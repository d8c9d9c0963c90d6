"""Classifiers built outside a task config: backbone + pooling + linear head.

Tasks build their classifier from the experiment config through Model
Garden's factory. Tools that need one from code (timm conversion, NAS cost
estimates, quantization checks, reports) build it here, so every classifier
is Model Garden's `ClassificationModel` (global average pooling, dropout,
dense head) on a backbone whose input spec matches the model's.
"""
from collections.abc import Callable

import tf_keras
from official.vision.modeling import classification_model

from univision.modeling.backbones import mobilenet_v4
from univision.modeling.backbones import mobilenet_v4_specs as specs

BackboneFn = Callable[[tf_keras.layers.InputSpec], tf_keras.Model]


def classifier(make_backbone: BackboneFn, num_classes: int,
               input_size: tuple[int | None, int | None] = (None, None),
               kernel_initializer: str = 'random_uniform'
               ) -> classification_model.ClassificationModel:
  """Model Garden's classifier on the backbone `make_backbone` builds.

  Args:
    make_backbone: Builds the backbone for an input spec.
    num_classes: Classes of the linear head.
    input_size: (height, width); None for a size fixed at call time.
    kernel_initializer: The head's kernel initializer.

  Returns:
    The classifier.
  """
  input_specs = tf_keras.layers.InputSpec(shape=[None, *input_size, 3])
  return classification_model.ClassificationModel(
      make_backbone(input_specs), num_classes, input_specs=input_specs,
      kernel_initializer=kernel_initializer)


def mobilenet_v4_classifier(
    model_id: str, num_classes: int = 1000,
    input_size: tuple[int | None, int | None] = (None, None),
    model_spec: specs.ModelSpec | None = None,
    kernel_initializer: str = 'random_uniform',
    **backbone_kwargs) -> classification_model.ClassificationModel:
  """A MobileNetV4 classifier.

  Args:
    model_id: A built-in architecture (`mobilenet_v4_specs.MODEL_SPECS`);
      with `model_spec`, a label for that table.
    num_classes: Classes of the linear head.
    input_size: (height, width); None for a size fixed at call time.
    model_spec: A table that is not built in (e.g. a NAS candidate).
    kernel_initializer: The head's kernel initializer.
    **backbone_kwargs: More `MobileNetV4` arguments (padding, norm_epsilon,
      norm_momentum, ...).

  Returns:
    The classifier.
  """
  return classifier(
      lambda input_specs: mobilenet_v4.MobileNetV4(
          model_id, input_specs=input_specs, model_spec=model_spec,
          **backbone_kwargs),
      num_classes, input_size, kernel_initializer)
