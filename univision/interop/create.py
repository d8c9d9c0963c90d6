"""`univision.create_model` and `univision.list_models`, as timm has them.

  import univision
  univision.list_models('mobilenetv4_conv_*', pretrained=True)
  model = univision.create_model('mobilenetv4_conv_aa_large.e600_r384_in1k',
                                 pretrained=True)           # from the Hub
  model = univision.create_model('mobilenetv4_conv_small',
                                 weights_file='model.safetensors',
                                 num_classes=10)            # new head
  backbone = univision.create_model('mobilenetv4_hybrid_medium',
                                    pretrained=True, features_only=True)

A name is timm's (`architecture` or `architecture.tag`, `timm_tags`) or a
univision model id. Models are laid out as timm's weights need them
(`timm_mobilenet_v4.build_timm_compatible_classifier`: PyTorch-style
padding, BN epsilon 1e-5) whether or not weights are loaded, so one name
always gives one architecture. Weights come from `weights_file` (a timm
`.safetensors`), else with `pretrained` from the Hub: the name's tag, or
the architecture's default tag. The file's own class count (1000, or
11,821 for ImageNet-12k tags) is loaded; `num_classes` one more than it
keeps the file's classifier behind Model Garden's background class 0
(zero weights, bias -1e4: ImageNet TFRecords labelled 1..1000); another
`num_classes` gets a new, freshly initialised classifier on the loaded
backbone.
"""
import fnmatch
from collections.abc import Mapping

import numpy as np
import tf_keras

from univision.interop import hub
from univision.interop import timm_mobilenet_v4 as timm_weights
from univision.interop import timm_state_dict
from univision.interop import timm_tags
from univision.modeling.backbones import mobilenet_v4_specs


def list_models(pattern: str = '*', pretrained: bool = False) -> list[str]:
  """timm's MobileNetV4 names matching `pattern` (fnmatch).

  Architectures by default; with `pretrained`, every `architecture.tag`
  with published weights.
  """
  names = timm_tags.TAGS if pretrained else timm_weights.TIMM_NAMES
  return sorted(n for n in names if fnmatch.fnmatch(n, pattern))


def hub_id(name: str, model_id: str, instead: str,
           defaults: Mapping[str, str] = timm_weights.TIMM_HUB_WEIGHTS
           ) -> str:
  """The Hub repository of `name`'s weights: its tag's, else the default.

  Args:
    name: timm's `architecture[.tag]` (tags: MobileNetV4's) or a model id.
    model_id: The univision model id `name` resolves to.
    instead: What to pass when timm publishes no weights (for the error).
    defaults: Model id -> the repository of its default weights.

  Raises:
    ValueError: for an unknown tag (listing the known ones), or a model
      without published weights (naming `instead`).
  """
  if '.' in name:
    return timm_tags.get_tag(name).hub_id
  if model_id not in defaults:
    raise ValueError(f'timm publishes no pretrained weights for {name!r} '
                     f'(known: {", ".join(sorted(defaults))}); pass '
                     f'{instead} instead.')
  return defaults[model_id]


def create_model(name: str, pretrained: bool = False,
                 weights_file: str | None = None,
                 num_classes: int | None = None,
                 features_only: bool = False) -> tf_keras.Model:
  """A MobileNetV4 classifier (or its backbone), with timm's weights if asked.

  Args:
    name: timm's `architecture[.tag]` or a univision model id.
    pretrained: Load the tag's (or the default tag's) weights from the Hub.
    weights_file: A timm `.safetensors` file to load instead of the Hub.
    num_classes: Classes of the classifier; None: the weights' (1000
      without weights); the weights' + 1: theirs behind a background class.
    features_only: Return the backbone (a dict of levels '2'..'5' and the
      head embedding '6') instead of the classifier.

  Raises:
    ValueError: for an unknown name or tag (listing the known ones), or a
      file that does not fit the architecture (naming the tensors).
    hub.HubDownloadError: when the Hub cannot be reached.
  """
  model_id = timm_weights.resolve_model_id(name)
  if model_id not in mobilenet_v4_specs.MODEL_SPECS:
    raise ValueError(f'Unknown MobileNetV4 {name!r}; known: '
                     f'{", ".join(list_models())}.')
  if num_classes is not None and num_classes < 1:
    raise ValueError(f'num_classes={num_classes} must be >= 1.')
  if not (pretrained or weights_file):
    model = timm_weights.build_timm_compatible_classifier(
        model_id, num_classes or timm_weights.TIMM_NUM_CLASSES)
    return model.backbone if features_only else model
  instead = 'weights_file=<a local .safetensors>'
  path = weights_file or hub.download_safetensors(
      hub_id(name, model_id, f'{instead} (or pretrained=False)'), instead)
  state_dict = timm_state_dict.read_safetensors(path)
  if 'classifier.weight' not in state_dict:
    raise ValueError(f'{path}: no classifier.weight; not a timm MobileNetV4 '
                     'classifier file.')
  file_classes = int(state_dict['classifier.weight'].shape[0])
  kept = num_classes if num_classes == file_classes + 1 else file_classes
  model = timm_weights.build_timm_compatible_classifier(model_id, kept)
  timm_weights.load_timm_weights(model, state_dict)
  if num_classes not in (None, kept):
    headed = timm_weights.build_timm_compatible_classifier(model_id,
                                                           num_classes)
    size = mobilenet_v4_specs.MODEL_SPECS[model_id].resolution
    headed(np.zeros([1, size, size, 3], np.float32), training=False)
    headed.backbone.set_weights(model.backbone.get_weights())
    model = headed
  return model.backbone if features_only else model
