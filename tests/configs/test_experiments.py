"""Every experiment YAML parses into its registered config; bad keys are named."""
import glob
import math
import os
import re

import pytest
import yaml
from official.core import exp_factory

from univision import registry_imports  # pylint: disable=unused-import
from univision.configs import distillation
from univision.configs import image_classification
from univision.configs import mae
from univision.configs import query_retinanet
from univision.configs import retinanet
from univision.configs import wsol
from univision.data import inatloc
from univision.dataloaders import view_mixing
from univision.core import config_parsing
from univision.modeling import mae as mae_model
from univision.modeling.backbones import hiera_specs
from univision.modeling.backbones import mobilenet_v4_spec_file
from univision.modeling.backbones import mobilenet_v4_specs

EXPERIMENTS_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))), 'univision', 'configs',
                               'experiments')
YAMLS = sorted(glob.glob(os.path.join(EXPERIMENTS_DIR, '**', '*.yaml'),
                         recursive=True))
POD_SUFFIX = '_tpu_pod.yaml'
POD_YAMLS = [p for p in YAMLS if p.endswith(POD_SUFFIX)]
# TPU replicas (devices TensorFlow sees) per unit of the number in a slice's
# name: v2-v4 and v5p names count TensorCores, and v4 / v5p chips are
# megacores (two TensorCores, one device); v5e / v6e names count chips of
# one TensorCore each.
REPLICAS_PER_NAMED_UNIT = {'v2': 1, 'v3': 1, 'v4': 0.5, 'v5p': 0.5,
                           'v5e': 1, 'v6e': 1}


def test_there_are_recipes_for_all_five_models():
  ids = set()
  for path in YAMLS:
    with open(path) as f:
      ids.update(l.split("'")[1] for l in f if 'model_id:' in l)
  # The paper's five (Model Garden's ids); timm's width and anti-aliased
  # variants are reached through their converted weights' YAML.
  paper = {i for i in mobilenet_v4_specs.MODEL_SPECS
           if i[-1].isalpha() and 'AA' not in i and 'Blur' not in i}
  assert len(paper) == 5 and paper <= ids


@pytest.mark.parametrize('path', YAMLS, ids=os.path.basename)
def test_yaml_parses_into_registered_config(path):
  params = config_parsing.parse_experiment(config_parsing.experiment_of(path), [path])
  params.validate()
  if isinstance(params.task, mae.MAETask):
    if params.task.model.type == 'hiera':
      hiera_specs.get_model_spec(f'hiera_{params.task.model.size}')
    else:
      mae_model.get_vit_size(params.task.model.size)
    if params.task.model.type == 'rmae':
      assert params.task.model.region.num_regions >= 1
      assert params.task.regions.type in mae.REGION_SOURCES
    assert params.task.train_data.input_path
    lr = params.trainer.optimizer_config.learning_rate.cosine
    assert lr.decay_steps + lr.offset == params.trainer.train_steps
    return
  backbone = params.task.model.backbone
  if backbone.type == 'vit_mae':  # The MAWS classification stages.
    mae_model.get_vit_size(backbone.vit_mae.size)
    assert params.task.init_checkpoint_modules == 'backbone'
    assert params.task.init_checkpoint.startswith('results/maws/runs/')
    assert params.trainer.train_steps == (
        params.trainer.optimizer_config.learning_rate.cosine.decay_steps)
    return
  if backbone.type == 'hiera':  # Fine-tuning a Hiera MAE encoder.
    hiera_specs.get_model_spec(backbone.hiera.model_id)
    assert backbone.hiera.q_pool == 3
    assert params.task.init_checkpoint_modules == 'backbone'
    assert params.task.init_checkpoint
    cosine = params.trainer.optimizer_config.learning_rate.cosine
    assert params.trainer.train_steps == cosine.decay_steps
    return
  assert backbone.type == 'mobilenet_v4'
  if backbone.mobilenet_v4.spec_file:  # A NAS result: the file must build.
    mobilenet_v4_spec_file.read(os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(EXPERIMENTS_DIR))),
        backbone.mobilenet_v4.spec_file))
  else:
    mobilenet_v4_specs.get_model_spec(backbone.mobilenet_v4.model_id)
  assert params.task.train_data.input_path
  if isinstance(params.task, image_classification.ImageClassificationTask):
    assert params.trainer.optimizer_config.optimizer.type == 'adamw'
    if isinstance(params.task, distillation.DistillationTask):
      teacher = params.task.teacher.backbone
      mobilenet_v4_specs.get_model_spec(teacher.mobilenet_v4.model_id)
      assert params.task.teacher_checkpoint
      view_mixing.check_weights(params.task.mixing.weights(), path)
    return
  if isinstance(params.task, wsol.WSOLTask):
    assert params.task.label_level in inatloc.LEVELS
    assert params.task.method in wsol.METHODS
    assert params.task.hierarchy_path.endswith('hierarchy.json')
    assert params.runtime.distribution_strategy == 'tpu'
    return
  assert isinstance(params.task, retinanet.RetinaNetTask), path
  model = params.task.model
  assert not backbone.mobilenet_v4.include_head
  assert model.decoder.type in ('fpn', 'ssdlite')
  assert 'ssdlite' in path or model.decoder.type == 'fpn'
  if not os.path.basename(path).startswith('coco_'):
    assert params.runtime.distribution_strategy == 'one_device'
    assert params.trainer.train_steps == (
        params.trainer.optimizer_config.learning_rate.cosine.decay_steps)
    return
  # Model Garden's mobile COCO schedule: 600 epochs, steps at 575 and 590.
  epoch = retinanet.COCO_TRAIN_EXAMPLES // params.task.train_data.global_batch_size
  assert params.trainer.train_steps == 600 * epoch
  lr = params.trainer.optimizer_config.learning_rate.stepwise
  assert lr.boundaries == [575 * epoch, 590 * epoch]
  assert params.runtime.distribution_strategy == 'tpu'


def test_yamls_restate_their_registered_experiment():
  """A COCO YAML changes only the model id and paths of its experiment."""
  for path in YAMLS:
    if (not os.path.basename(path).startswith('coco_') or
        path.endswith(POD_SUFFIX)):  # Pod recipes: test_pod_recipe_scales_...
      continue
    params = config_parsing.parse_experiment(config_parsing.experiment_of(path), [path])
    default = exp_factory.get_exp_config(config_parsing.experiment_of(path))
    default.override({'runtime': {'tpu': params.runtime.tpu}, 'task': {
        'annotation_file': params.task.annotation_file,
        'train_data': {'input_path': params.task.train_data.input_path,
                       'dtype': 'bfloat16'},
        'validation_data': {'input_path':
                            params.task.validation_data.input_path,
                            'dtype': 'bfloat16'},
        'model': {'backbone': {'mobilenet_v4': {
            'model_id': params.task.model.backbone.mobilenet_v4.model_id}}}}})
    assert params.as_dict() == default.as_dict(), path


def _pod_slice(path: str) -> tuple[str, int]:
  """The slice named on a pod YAML's second line, and its replica count."""
  with open(path) as f:
    f.readline()
    line = f.readline()
  match = re.match(r'# Pod slice: (v\d+[a-z]*)-(\d+), (\d+) replicas', line)
  assert match, (f'{path}: line 2 must read "# Pod slice: <type>-<size>, '
                 f'<n> replicas ..."; it reads {line!r}')
  generation, size, replicas = match[1], int(match[2]), int(match[3])
  assert generation in REPLICAS_PER_NAMED_UNIT, (path, generation)
  assert replicas == size * REPLICAS_PER_NAMED_UNIT[generation], (
      f'{path}: {generation}-{size} has '
      f'{size * REPLICAS_PER_NAMED_UNIT[generation]:g} replicas, not '
      f'{replicas}')
  return f'{generation}-{size}', replicas


def _parse(path: str):
  return config_parsing.parse_experiment(config_parsing.experiment_of(path), [path])


def test_every_mnv4_tpu_recipe_has_a_pod_recipe():
  singles = [p for p in YAMLS if p.endswith('_tpu.yaml') and (
      os.path.basename(p).startswith(('imagenet_mnv4_', 'coco_mnv4_')))
             and '_distill_' not in p]
  assert len(singles) == 8
  for path in singles:
    assert path[:-len('.yaml')] + '_pod.yaml' in POD_YAMLS, path
  for path in POD_YAMLS:
    assert path.replace(POD_SUFFIX, '_tpu.yaml') in YAMLS, path


@pytest.mark.parametrize('path', POD_YAMLS, ids=os.path.basename)
def test_pod_recipe_scales_its_single_slice_recipe(path):
  """A pod recipe is its `_tpu.yaml` with batch, LR and schedule scaled by k.

  k = pod batch / single-slice batch; learning rates (peak, stepwise values,
  warm-up start) scale by k, warm-up and EMA horizons in steps by 1/k, and
  the training length, LR boundaries and steps per loop stay the same in
  epochs. Nothing else may differ.
  """
  _, replicas = _pod_slice(path)
  pod = _parse(path)
  single = _parse(path.replace(POD_SUFFIX, '_tpu.yaml'))
  # What a TPU run needs: the strategy, the address left to --tpu, a batch
  # that splits evenly over the replicas.
  assert pod.runtime.distribution_strategy == 'tpu'
  with open(path) as f:
    assert 'tpu' not in yaml.safe_load(f)['runtime'], (
        f'{path}: leave runtime.tpu to the --tpu flag')
  assert (pod.runtime.mixed_precision_dtype ==
          single.runtime.mixed_precision_dtype)
  train, val = pod.task.train_data, pod.task.validation_data
  for key, data in (('train_data', train), ('validation_data', val)):
    assert data.global_batch_size % replicas == 0, (
        f'{path}: task.{key}.global_batch_size={data.global_batch_size} is '
        f'not a multiple of the {replicas} replicas')
  k = train.global_batch_size / single.task.train_data.global_batch_size
  assert k == int(k) and k >= 1, (path, k)

  def same_epochs(pod_steps, single_steps):
    return math.isclose(pod_steps * k, single_steps, rel_tol=0.01)

  t, st = pod.trainer, single.trainer
  assert same_epochs(t.train_steps, st.train_steps)
  assert same_epochs(t.steps_per_loop, st.steps_per_loop)
  for interval in ('summary_interval', 'checkpoint_interval',
                   'validation_interval'):
    assert getattr(t, interval) % t.steps_per_loop == 0, (path, interval)
  covered = val.global_batch_size * t.validation_steps
  single_covered = (single.task.validation_data.global_batch_size *
                    st.validation_steps)
  assert covered >= 0.99 * single_covered, (path, covered, single_covered)

  opt, sopt = t.optimizer_config, st.optimizer_config
  lr, slr = opt.learning_rate, sopt.learning_rate
  assert lr.type == slr.type
  if lr.type == 'cosine':
    assert math.isclose(lr.cosine.initial_learning_rate,
                        k * slr.cosine.initial_learning_rate), (
                            f'{path}: peak LR is not {k:g} x '
                            f'{slr.cosine.initial_learning_rate}')
    assert lr.cosine.decay_steps == t.train_steps
  else:
    assert lr.type == 'stepwise', path
    assert all(math.isclose(v, k * s) for v, s in zip(
        lr.stepwise.values, slr.stepwise.values, strict=True)), (
            f'{path}: LR values are not {k:g} x {slr.stepwise.values}')
    assert all(same_epochs(b, s) for b, s in zip(
        lr.stepwise.boundaries, slr.stepwise.boundaries, strict=True))
  warm, swarm = opt.warmup.linear, sopt.warmup.linear
  assert warm.warmup_steps == round(swarm.warmup_steps / k)
  assert math.isclose(warm.warmup_learning_rate,
                      k * swarm.warmup_learning_rate)
  if sopt.ema:
    assert opt.ema.start_step == round(sopt.ema.start_step / k)
    assert math.isclose(1 - opt.ema.average_decay,
                        k * (1 - sopt.ema.average_decay))

  # Apart from the keys checked above, the pod recipe is its single-slice one.
  scaled = pod.as_dict()
  expected = single.as_dict()
  for keys in (('task', 'train_data', 'global_batch_size'),
               ('task', 'validation_data', 'global_batch_size'),
               ('trainer', 'train_steps'), ('trainer', 'validation_steps'),
               ('trainer', 'steps_per_loop'), ('trainer', 'summary_interval'),
               ('trainer', 'checkpoint_interval'),
               ('trainer', 'validation_interval'),
               ('trainer', 'optimizer_config', 'learning_rate'),
               ('trainer', 'optimizer_config', 'warmup'),
               ('trainer', 'optimizer_config', 'ema')):
    *parents, last = keys
    source, target = scaled, expected
    for key in parents:
      source, target = source[key], target[key]
    target[last] = source[last]
  assert scaled == expected, path


def test_query_yaml_sets_the_joint_loss_weights():
  path = os.path.join(EXPERIMENTS_DIR, 'query_detection',
                      'composites_mnv4_query_ssdlite_cpu.yaml')
  params = config_parsing.parse_experiment(
      config_parsing.experiment_of(path), [path],
      'task.query.query_weight=2.0,task.query.modulation=concat')
  assert isinstance(params.task, query_retinanet.QueryRetinaNetTask)
  assert params.task.query.standard_weight == 1.0
  assert params.task.query.query_weight == 2.0
  assert params.task.query.modulation == 'concat'
  assert params.task.query.backbone_levels == [4, 5]
  assert params.task.query.decoder
  assert params.task.query.query_batch_norm == 'moving'
  assert params.task.init_checkpoint_modules == 'backbone'


@pytest.mark.parametrize('name', config_parsing.registered_experiments())
def test_registered_experiments_build(name):
  params = exp_factory.get_exp_config(name)
  params.validate()


def test_the_registry_lists_every_experiment_a_yaml_names():
  registered = set(config_parsing.registered_experiments())
  assert {config_parsing.experiment_of(p) for p in YAMLS} <= registered
  # Model Garden's own experiments are not univision's.
  assert 'resnet_imagenet' not in registered


def test_unknown_yaml_key_names_file_and_full_key(tmp_path):
  bad = tmp_path / 'bad.yaml'
  bad.write_text('task:\n  model:\n    backbone:\n      mobilenet_v4:\n'
                 '        modle_id: MobileNetV4ConvSmall\n')
  with pytest.raises(ValueError, match=(
      r'bad.yaml: unknown config key\(s\): '
      r'task.model.backbone.mobilenet_v4.modle_id')):
    config_parsing.parse_experiment('mnv4_fashion_mnist', [str(bad)])


def test_unknown_override_key_is_named():
  with pytest.raises(ValueError, match=r'--params_override: unknown config '
                     r'key\(s\): trainer.train_stepz'):
    config_parsing.parse_experiment('mnv4_fashion_mnist',
                                    params_override='trainer.train_stepz=3')


def test_missing_config_file_and_unknown_experiment():
  with pytest.raises(FileNotFoundError, match='nope.yaml'):
    config_parsing.parse_experiment('mnv4_fashion_mnist', ['nope.yaml'])
  with pytest.raises(ValueError, match="'mnv5'.*mnv4_imagenet"):
    config_parsing.parse_experiment('mnv5')


def test_unknown_keys_walks_nested_dicts_only_where_defined():
  params = {'a': {'b': 1, 'c': None}, 'd': 2}
  assert config_parsing.unknown_keys(
      params, {'a': {'b': 2, 'x': 1, 'c': {'anything': 1}}, 'y': 0}) == [
          'a.x', 'y']
