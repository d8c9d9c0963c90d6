"""SavedModel export of univision experiments through Model Garden's library.

The SavedModel's `serving_default` signature follows Model Garden's
conventions (`input_type`: `image_tensor` uint8 [batch, h, w, 3],
`image_bytes` encoded images, `tf_example` serialized examples, or `tflite`).
"""
import tensorflow as tf, tf_keras
from official.vision.serving import export_saved_model_lib

from univision import registry_imports  # pylint: disable=unused-import
from univision.core import config_parsing

SIGNATURE_INPUT_TYPES = ('image_tensor', 'image_bytes', 'tf_example', 'tflite')


def resolve_checkpoint(path: str) -> str:
  """A checkpoint prefix from a checkpoint or a folder, or a clear error."""
  if tf.io.gfile.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest is None:
      raise FileNotFoundError(f'--checkpoint_path={path}: no checkpoint in '
                              'this folder.')
    return latest
  if not tf.io.gfile.exists(path + '.index'):
    raise FileNotFoundError(f'--checkpoint_path={path}: no such checkpoint.')
  return path


def export(experiment: str, config_files: list[str] | None,
           params_override: str, checkpoint_path: str, export_dir: str,
           input_type: str = 'image_tensor',
           input_image_size: list[int] | None = None,
           batch_size: int | None = None,
           extra_signatures: list[str] | None = None) -> str:
  """Exports an experiment's model from a checkpoint; returns its folder.

  Args:
    experiment: A registered experiment name.
    config_files: YAML overrides, applied in order.
    params_override: Final overrides (YAML/JSON/CSV string).
    checkpoint_path: A checkpoint, or a folder (its latest checkpoint).
    export_dir: The output folder; the SavedModel goes to `saved_model/`.
    input_type: The serving input type.
    input_image_size: [height, width]; default: the model's input size.
    batch_size: A fixed batch size, or None for a dynamic one.
    extra_signatures: More input types to serve, each as signature
      `serving_<input type>` next to `serving_default` (`input_type`).

  Returns:
    The SavedModel folder.
  """
  params = config_parsing.parse_experiment(experiment, config_files,
                                           params_override)
  return export_from_params(params, checkpoint_path, export_dir, input_type,
                            input_image_size, batch_size, extra_signatures)


def export_from_params(params, checkpoint_path: str, export_dir: str,
                       input_type: str = 'image_tensor',
                       input_image_size: list[int] | None = None,
                       batch_size: int | None = None,
                       extra_signatures: list[str] | None = None) -> str:
  """`export` for an already parsed experiment config."""
  size = input_image_size or params.task.model.input_size[:2]
  function_keys = {input_type: 'serving_default'}
  for extra in extra_signatures or []:
    if extra not in SIGNATURE_INPUT_TYPES:
      raise ValueError(f'Unknown signature input type {extra!r}; choose from '
                       f'{", ".join(SIGNATURE_INPUT_TYPES)}.')
    function_keys.setdefault(extra, f'serving_{extra}')
  export_saved_model_lib.export_inference_graph(
      input_type=input_type,
      batch_size=batch_size,
      input_image_size=[int(s) for s in size],
      params=params,
      checkpoint_path=resolve_checkpoint(checkpoint_path),
      export_dir=export_dir,
      export_checkpoint_subdir='checkpoint',
      export_saved_model_subdir='saved_model',
      function_keys=function_keys)
  return f'{export_dir}/saved_model'
