"""The patch file of a patch-training run (fixed kinds or a learned SpotPatch).

A run of `mnv4_retinanet_composites_patch` or `_spot` trains one task's
patch of a frozen base. What the task keeps is the patch file
(`univision.modeling.patches.save`): the variables of `task.patch` and, for
a SpotPatch, the copies of the layers its hardened gates put in the patch,
stored under the names of the shared kernels they replace. Loaded into the
plain base (`patches.load`, `export.py --patch`) it gives the trained
detector. `train.py` writes it at the end of a run; the model-patch study
writes one per run, also from a finished run's checkpoint.
"""
import os

import tensorflow as tf, tf_keras
from official.core import config_definitions as cfg
from official.core import task_factory

from univision.core import checkpoints
from univision.modeling import patches

FILE_NAME = 'patch.npz'


def default_path(model_dir: str) -> str:
  """Where `train.py` writes a run's patch file."""
  return os.path.join(model_dir, FILE_NAME)


def write_patch(model: tf_keras.Model, spec: str,
                path: str) -> patches.PatchSize:
  """Hardens the model's SpotPatch (if any) and writes the patch file.

  Args:
    model: A trained patch model (with a `spot_patch` attribute for a
      learned patch).
    spec: The kinds always in the patch (`task.patch`).
    path: The file to write.

  Returns:
    The patch's size: its trained parameters (the kinds' plus the gated-on
    copies), the detector's trainable parameters (the SpotPatch's own
    variables left out) and the float32 bytes the file stores.
  """
  spot = getattr(model, 'spot_patch', None)
  kernels = {}
  if spot is not None:
    spot.harden()
    kernels = spot.patch_kernels()
  patches.save(model, spec, path, kernels=kernels)
  own = {id(v) for v in spot.variables} if spot is not None else set()
  detector = [v for v in model.weights if id(v) not in own]
  kernel_values = patches.count_parameters(list(kernels.values()))
  variables = patches.select(model, spec)
  return patches.PatchSize(
      patches.count_parameters(patches.trainable(variables)) + kernel_values,
      patches.count_parameters(patches.trainable(detector)),
      4 * (patches.count_parameters(variables) + kernel_values))


def restore_run(params: cfg.ExperimentConfig,
                model_dir: str) -> tf_keras.Model:
  """The task's model with the latest checkpoint of `model_dir` restored.

  Raises:
    FileNotFoundError: naming `model_dir` if it holds no checkpoint.
  """
  checkpoint = checkpoints.resolve_checkpoint(model_dir, key='model_dir')
  model = task_factory.get_task(params.task).build_model()
  model(tf.zeros([1, *params.task.model.input_size]), training=False)
  tf.train.Checkpoint(model=model).read(
      checkpoint).expect_partial().assert_existing_objects_matched()
  return model


def write_patch_of_run(params: cfg.ExperimentConfig, model_dir: str,
                       path: str) -> patches.PatchSize:
  """`write_patch` for the latest checkpoint of a finished run."""
  return write_patch(restore_run(params, model_dir), params.task.patch, path)
