"""Accuracy proxy of the NAS: a short classification run of one candidate.

The candidate's table is written as a spec file and trained through the same
machinery as `train.py`: an experiment YAML (the NAS recipe, whose
`backbone.mobilenet_v4.spec_file` is replaced) parsed onto its registered
experiment, then `univision.core.training.run`. The proxy shortens the
schedule, trains at a small resolution and evaluates on the first
`eval_batches` test batches. Batch norm momentum is lowered to 0.9 so the
moving statistics settle within a few hundred steps; at the recipe's 0.99 a
200-step run evaluates at chance level whatever the architecture.
"""
import dataclasses
import os
import shutil

import tf_keras
from official.core import config_definitions as cfg
from official.core import exp_factory

from univision.core import config_parsing
from univision.core import training
from univision.modeling.backbones import mobilenet_v4_spec_file as spec_file
from univision.modeling.backbones import mobilenet_v4_specs as specs

RECIPE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs',
    'experiments', 'image_classification', 'fashion_mnist_mnv4_nas_cpu.yaml')
SPEC_FILE_KEY = 'spec_file'


@dataclasses.dataclass(frozen=True)
class ProxySettings:
  """How each candidate is trained and evaluated.

  Attributes:
    data: Folder of the Fashion-MNIST TFRecords (`train-*`, `test-*`).
    steps: Training steps.
    resolution: Square training and evaluation input side.
    eval_batches: Test batches evaluated (of the recipe's batch size).
    seed: Seed of the weights and the data order (the same per candidate).
    recipe: The experiment YAML whose schedule and data settings are used.
  """
  data: str
  steps: int = 200
  resolution: int = 32
  eval_batches: int = 10
  seed: int = 0
  recipe: str = RECIPE


def recipe_config(recipe: str) -> cfg.ExperimentConfig:
  """The experiment config of a recipe YAML, as `train.py` would parse it."""
  params = exp_factory.get_exp_config(config_parsing.experiment_of(recipe))
  return config_parsing.apply_override(params, recipe, recipe)


def proxy_config(spec_path: str, settings: ProxySettings
                 ) -> cfg.ExperimentConfig:
  """The recipe's config with the candidate's spec and the short schedule."""
  params = recipe_config(settings.recipe)
  steps = settings.steps
  warmup = max(1, steps // 10)
  params.override({
      'task': {
          'model': {
              'input_size': [settings.resolution, settings.resolution, 3],
              'backbone': {'mobilenet_v4': {SPEC_FILE_KEY: spec_path}},
              'norm_activation': {'norm_momentum': 0.9},
          },
          'train_data': {
              'input_path': os.path.join(settings.data, 'train-*'),
              'seed': settings.seed},
          'validation_data': {
              'input_path': os.path.join(settings.data, 'test-*')},
      },
      'trainer': {
          'train_steps': steps, 'validation_steps': settings.eval_batches,
          'validation_interval': steps, 'checkpoint_interval': steps,
          'steps_per_loop': steps, 'summary_interval': steps,
          'optimizer_config': {
              'learning_rate': {'cosine': {'decay_steps': steps}},
              'warmup': {'linear': {'warmup_steps': warmup}}},
      }})
  params.validate()
  return params


def train_accuracy(spec: specs.ModelSpec, run_dir: str,
                   settings: ProxySettings) -> float:
  """Trains `spec` briefly in `run_dir`; its test accuracy in [0, 1].

  Args:
    spec: The candidate's block-spec table.
    run_dir: A folder for its spec file, checkpoint and summaries; what an
      interrupted run left there is deleted first.
    settings: The proxy settings.

  Returns:
    The top-1 accuracy on the evaluated test batches.
  """
  if os.path.exists(run_dir):
    shutil.rmtree(run_dir)
  os.makedirs(run_dir)
  spec_path = os.path.join(run_dir, 'spec.yaml')
  spec_file.write(spec, spec_path)
  params = proxy_config(spec_path, settings)
  tf_keras.backend.clear_session()
  tf_keras.utils.set_random_seed(settings.seed)
  _, metrics = training.run(params, run_dir, 'train_and_eval')
  tf_keras.backend.clear_session()
  return metrics['accuracy']
