"""Tests for MobileNetV4 spec files and the backbone built from them."""
import json

import pytest
import tf_keras
from official.vision.configs import common
from official.vision.modeling.backbones import factory

from univision.configs import backbones as backbone_cfg
from univision.efficiency import counting
from univision.modeling.backbones import mobilenet_v4
from univision.modeling.backbones import mobilenet_v4_spec_file as spec_file
from univision.modeling.backbones import mobilenet_v4_specs as specs

SMALL_INPUT = tf_keras.layers.InputSpec(shape=[None, 32, 32, 3])


def _write_text(tmp_path, text: str) -> str:
  path = str(tmp_path / 'spec.yaml')
  with open(path, 'w') as f:
    f.write(text)
  return path


def _small_table() -> dict:
  """A valid mapping: Conv-S's table as written by `to_dict`."""
  return spec_file.to_dict(specs.CONV_SMALL)


@pytest.mark.parametrize('model_id', sorted(specs.MODEL_SPECS))
def test_write_read_round_trip_is_exact(tmp_path, model_id):
  path = str(tmp_path / f'{model_id}.yaml')
  spec_file.write(specs.MODEL_SPECS[model_id], path, header='a\nb')
  assert spec_file.read(path) == specs.MODEL_SPECS[model_id]
  with open(path) as f:
    assert f.readline() == '# a\n'


def test_rows_may_leave_out_default_fields(tmp_path):
  path = _write_text(tmp_path, (
      'blocks:\n'
      '- {block: conv, strides: 2, filters: 16, kernel_size: 3}\n'
      '- {block: uib, strides: 2, filters: 24, middle_dw_kernel_size: 3,'
      ' expand_ratio: 4}\n'
      '- {block: uib, strides: 2, filters: 32, start_dw_kernel_size: 5,'
      ' expand_ratio: 2}\n'
      '- {block: uib, filters: 32, expand_ratio: 2}\n'  # FFN, stride 1.
      '- {block: mqa, num_heads: 2, key_dim: 16}\n'
      '- {block: conv, strides: 2, filters: 48, kernel_size: 3}\n'
      '- {block: conv, strides: 2, filters: 64, kernel_size: 1}\n'))
  spec = spec_file.read(path)
  assert spec.blocks[1] == specs.uib(0, 3, 2, 24, 4.0)
  assert spec.blocks[3] == specs.uib(0, 0, 1, 32, 2.0)
  assert spec.blocks[4] == specs.mqa(2, 16, 1)
  assert spec.head_filters == (960, 1280) and spec.activation == 'relu'


@pytest.mark.parametrize('change,message', [
    (lambda t: t['blocks'][5].update(kernel_size=3),
     'blocks row 5 (uib): unknown key(s) kernel_size'),
    (lambda t: t['blocks'][2].update(block='dense'),
     "blocks row 2: key block='dense' is not one of"),
    (lambda t: t['blocks'][0].pop('filters'),
     'blocks row 0 (conv): missing key(s) filters'),
    (lambda t: t['blocks'][6].update(strides=3),
     'blocks row 6 (uib): key strides must be 1 or 2, got 3'),
    (lambda t: t['blocks'][6].update(filters=-8),
     'blocks row 6 (uib): key filters must be an integer >= 1, got -8'),
    (lambda t: t['blocks'][6].update(expand_ratio='4'),
     'blocks row 6 (uib): key expand_ratio must be a positive number'),
    (lambda t: t['blocks'][5].update(start_dw_kernel_size=0,
                                     middle_dw_kernel_size=0),
     'blocks row 5 (uib): a strided uib needs a depthwise conv'),
    (lambda t: t['blocks'][1].update(strides=1),
     'key blocks downsamples by 16; the strides must multiply to 32'),
    (lambda t: t.update(blocks=[]), 'key blocks must be a non-empty list'),
    (lambda t: t.update(width=2), 'unknown key(s) width'),
    (lambda t: t.update(head_filters=[960]), 'key head_filters must be'),
    (lambda t: t.update(layer_scale_init_value=-1.0),
     'key layer_scale_init_value must be null or a positive number'),
    (lambda t: t.update(antialias='max'),
     "key antialias must be one of ('', 'avg', 'blur'), got 'max'"),
])
def test_bad_tables_name_file_row_and_key(tmp_path, change, message):
  table = _small_table()
  change(table)
  path = str(tmp_path / 'bad.yaml')
  with open(path, 'w') as f:
    json.dump(table, f)  # JSON is YAML: both formats read.
  with pytest.raises(spec_file.SpecFileError) as e:
    spec_file.read(path)
  assert str(e.value).startswith(path + ': ')
  assert message in str(e.value)


def test_missing_and_unparsable_files(tmp_path):
  with pytest.raises(spec_file.SpecFileError, match='nope.yaml: spec file '
                     'not found'):
    spec_file.read(str(tmp_path / 'nope.yaml'))
  path = _write_text(tmp_path, 'blocks: [\n')
  with pytest.raises(spec_file.SpecFileError, match='spec.yaml: not valid '
                     'YAML'):
    spec_file.read(path)
  path = _write_text(tmp_path, '- 1\n')
  with pytest.raises(spec_file.SpecFileError, match='expected a mapping'):
    spec_file.read(path)


def test_write_refuses_a_table_that_would_not_read(tmp_path):
  bad = specs.ModelSpec(blocks=(specs.conv(3, 2, 16),))
  path = str(tmp_path / 'bad.yaml')
  with pytest.raises(spec_file.SpecFileError, match='downsamples by 2'):
    spec_file.write(bad, path)


def test_backbone_from_spec_equals_built_in_and_serializes():
  built_in = mobilenet_v4.MobileNetV4('MobileNetV4ConvSmall',
                                      input_specs=SMALL_INPUT)
  custom = mobilenet_v4.MobileNetV4('my_table.yaml', input_specs=SMALL_INPUT,
                                    model_spec=specs.CONV_SMALL)
  assert counting.count_params(custom) == counting.count_params(built_in)
  assert 'model_spec' not in built_in.get_config()  # Built-ins unchanged.
  config = custom.get_config()
  json.dumps(config)  # Plain data only.
  assert config['model_id'] == 'my_table.yaml'
  rebuilt = mobilenet_v4.MobileNetV4.from_config(config)
  assert rebuilt.model_spec == specs.CONV_SMALL
  assert rebuilt.get_config() == config
  assert counting.count_params(rebuilt) == counting.count_params(built_in)


def test_factory_builds_from_spec_file_config(tmp_path):
  table = _small_table()
  table['blocks'][-1]['filters'] = 136  # Not Conv-S any more.
  path = str(tmp_path / 'nas.yaml')
  spec_file.write(spec_file.from_dict(table, 'test'), path)
  backbone = factory.build_backbone(
      input_specs=SMALL_INPUT,
      backbone_config=backbone_cfg.Backbone(
          type='mobilenet_v4',
          mobilenet_v4=backbone_cfg.MobileNetV4(spec_file=path)),
      norm_activation_config=common.NormActivation())
  assert backbone.output_specs['5'][-1] == 136
  # model_id is a name, never the file's path; the table itself is saved.
  config = backbone.get_config()
  assert config['model_id'] == '' and path not in json.dumps(config)
  assert config['model_spec'] == spec_file.to_dict(backbone.model_spec)

  missing = backbone_cfg.Backbone(
      type='mobilenet_v4',
      mobilenet_v4=backbone_cfg.MobileNetV4(spec_file=str(tmp_path / 'x')))
  with pytest.raises(spec_file.SpecFileError, match='x: spec file not found'):
    factory.build_backbone(input_specs=SMALL_INPUT, backbone_config=missing,
                           norm_activation_config=common.NormActivation())


@pytest.mark.parametrize('field, message', [
    ('model_id', r"model_id='MobileNetV4Tiny' is not a MobileNetV4 model; "
     'known ids: MobileNetV4ConvSmall'),
    ('spec_file', r"bad_kind.yaml: blocks row 1: key block='ffn' is not one "
     'of conv, '),
])
def test_factory_names_the_bad_value(tmp_path, field, message):
  """From YAML to layers: a bad name or spec file names the key and value."""
  table = _small_table()
  table['blocks'][1] = {'block': 'ffn', 'filters': 8}
  path = str(tmp_path / 'bad_kind.yaml')
  with open(path, 'w') as f:
    json.dump(table, f)
  value = {'model_id': 'MobileNetV4Tiny', 'spec_file': path}[field]
  config = backbone_cfg.Backbone(
      type='mobilenet_v4',
      mobilenet_v4=backbone_cfg.MobileNetV4(**{field: value}))
  with pytest.raises(ValueError, match=message):
    factory.build_backbone(input_specs=SMALL_INPUT, backbone_config=config,
                           norm_activation_config=common.NormActivation())


def test_backbone_checks_a_model_spec_like_a_file():
  bad = specs.ModelSpec(blocks=specs.CONV_SMALL.blocks[:-6])  # Stride 16.
  with pytest.raises(spec_file.SpecFileError,
                     match="MobileNetV4 'cut' model_spec: key blocks "
                     'downsamples by 16'):
    mobilenet_v4.MobileNetV4('cut', model_spec=bad)
