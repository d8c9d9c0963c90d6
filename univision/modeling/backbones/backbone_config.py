"""Config plumbing that univision's backbones share.

* A functional backbone's `get_config` must be JSON-able, so it writes its
  `InputSpec` as `{'shape': [...]}`; `from_config` turns that back.
* A backbone builder (`factory.register_backbone_builder`) gets the whole
  `backbone` one-of config and checks that the chosen type is its own.
"""
from typing import Any

from official.modeling import hyperparams
import tf_keras


def serialize_input_specs(config: dict[str, Any]) -> dict[str, Any]:
  """A copy of `config` whose `input_specs` is `{'shape': [...]}`."""
  return {**config,
          'input_specs': {'shape': list(config['input_specs'].shape)}}


def deserialize_input_specs(config: dict[str, Any]) -> dict[str, Any]:
  """A copy of `config` whose dict `input_specs` (if any) is an `InputSpec`."""
  config = dict(config)
  specs_config = config.get('input_specs')
  if isinstance(specs_config, dict):
    config['input_specs'] = tf_keras.layers.InputSpec(**specs_config)
  return config


def chosen(backbone_config: hyperparams.Config,
           backbone_type: str) -> hyperparams.Config:
  """The config of the chosen backbone, which must be `backbone_type`.

  Args:
    backbone_config: The `backbone` one-of config a builder receives.
    backbone_type: The type the builder builds.

  Returns:
    `backbone_config.get()`, the chosen type's own config.

  Raises:
    ValueError: if the chosen type is another.
  """
  if backbone_config.type != backbone_type:
    raise ValueError(f'Inconsistent backbone type {backbone_config.type!r}.')
  return backbone_config.get()
