"""Every experiment YAML parses into its registered config; bad keys are named."""
import glob
import os

import pytest
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
from univision.modeling.backbones import mobilenet_v4_specs

EXPERIMENTS_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))), 'univision', 'configs',
                               'experiments')
YAMLS = sorted(glob.glob(os.path.join(EXPERIMENTS_DIR, '**', '*.yaml'),
                         recursive=True))


def _experiment_of(path: str) -> str:
  with open(path) as f:
    first = f.readline().strip()
  assert first.startswith('# --experiment='), (
      f'{path}: the first line must name the experiment')
  return first.split('=', 1)[1]


def test_there_are_recipes_for_all_five_models():
  ids = set()
  for path in YAMLS:
    with open(path) as f:
      ids.update(l.split("'")[1] for l in f if 'model_id:' in l)
  assert set(mobilenet_v4_specs.MODEL_SPECS) <= ids


@pytest.mark.parametrize('path', YAMLS, ids=os.path.basename)
def test_yaml_parses_into_registered_config(path):
  params = config_parsing.parse_experiment(_experiment_of(path), [path])
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
  assert backbone.type == 'mobilenet_v4'
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
    if not os.path.basename(path).startswith('coco_'):
      continue
    params = config_parsing.parse_experiment(_experiment_of(path), [path])
    default = exp_factory.get_exp_config(_experiment_of(path))
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


def test_query_yaml_sets_the_joint_loss_weights():
  path = os.path.join(EXPERIMENTS_DIR, 'query_detection',
                      'composites_mnv4_query_ssdlite_cpu.yaml')
  params = config_parsing.parse_experiment(
      _experiment_of(path), [path],
      'task.query.query_weight=2.0,task.query.modulation=concat')
  assert isinstance(params.task, query_retinanet.QueryRetinaNetTask)
  assert params.task.query.standard_weight == 1.0
  assert params.task.query.query_weight == 2.0
  assert params.task.query.modulation == 'concat'
  assert params.task.init_checkpoint_modules == 'backbone'


def test_registered_experiments_build():
  for name in ('mnv4_imagenet', 'mnv4_fashion_mnist',
               'mnv4_retinanet_composites', 'mnv4_ssdlite_composites',
               'mnv4_retinanet_composites_patch', 'mnv4_retinanet_coco',
               'mnv4_ssdlite_coco', 'mnv4_query_ssdlite_composites',
               'mnv4_wsol_composites', 'resnet50_wsol_composites',
               'mnv4_wsol_inatloc500', 'vit_mae_imagenet',
               'vit_mae_fashion_mnist', 'hiera_mae_imagenet',
               'hiera_mae_fashion_mnist', 'vit_fashion_mnist',
               'vit_weak_fashion_mnist', 'mnv4_distill_fashion_mnist',
               'mnv4_distill_imagenet'):
    params = exp_factory.get_exp_config(name)
    params.validate()


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
