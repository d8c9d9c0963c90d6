"""Checked assignment of timm tensors: all problems listed, nothing half-set."""
import numpy as np
import pytest
import safetensors.numpy
import tf_keras

from univision.interop import timm_state_dict


def _model_and_assignments():
  model = tf_keras.Sequential([tf_keras.layers.Dense(3, input_shape=(2,))])
  dense = model.layers[0]
  found = [timm_state_dict.Assignment(dense.kernel, 'fc.weight', np.transpose),
           timm_state_dict.Assignment(dense.bias, 'fc.bias', lambda w: w)]
  return model, found


def _state_dict():
  return {'fc.weight': np.arange(6, dtype=np.float32).reshape(3, 2),
          'fc.bias': np.ones(3, np.float32)}


def test_assigns_transformed_tensors():
  model, found = _model_and_assignments()
  timm_state_dict.assign_checked(model, found, _state_dict(), 'tiny')
  np.testing.assert_array_equal(model.layers[0].kernel.numpy(),
                                _state_dict()['fc.weight'].T)
  np.testing.assert_array_equal(model.layers[0].bias.numpy(), np.ones(3))


def test_every_problem_is_listed_and_nothing_is_assigned():
  model, found = _model_and_assignments()
  before = [w.numpy() for w in model.weights]
  tensors = _state_dict()
  tensors['fc.weight'] = tensors['fc.weight'][:2]
  tensors['extra'] = np.zeros(4, np.float32)
  tensors['bn.num_batches_tracked'] = np.zeros((), np.int64)
  del tensors['fc.bias']
  with pytest.raises(ValueError) as error:
    timm_state_dict.assign_checked(
        model, found, tensors, 'tiny',
        ignored_suffixes=('.num_batches_tracked',),
        shape_hints={'fc.weight': 'another width'})
  assert str(error.value).splitlines() == [
      'timm weights do not fit tiny:',
      '  shape mismatch: fc.weight (2, 2) -> '
      f'{model.layers[0].kernel.name} (2, 3) (another width)',
      '  missing in timm weights: fc.bias (for '
      f'{model.layers[0].bias.name} (3,))',
      '  unused timm tensor: extra (4,)']
  for weight, value in zip(model.weights, before):
    np.testing.assert_array_equal(weight.numpy(), value)


def test_weights_without_an_assignment_are_named():
  model, found = _model_and_assignments()
  with pytest.raises(ValueError, match=r'not set from timm: .*bias'):
    timm_state_dict.assign_checked(model, found[:1], _state_dict(), 'tiny')


def test_class_count_is_timms_or_one_more_with_a_background_class():
  tensors = _state_dict()
  assert timm_state_dict.fit_class_count(tensors, 3, 'fc') is tensors
  fitted = timm_state_dict.fit_class_count(tensors, 4, 'fc')
  np.testing.assert_array_equal(fitted['fc.weight'][0], [0, 0])
  np.testing.assert_array_equal(fitted['fc.weight'][1:], tensors['fc.weight'])
  assert fitted['fc.bias'][0] == -1e4
  with pytest.raises(ValueError, match='5 classes, the timm weights 3: use '
                     r'3 or 4 \(background class 0\)'):
    timm_state_dict.fit_class_count(tensors, 5, 'fc')


def test_safetensors_round_trip_and_bad_files(tmp_path):
  path = str(tmp_path / 'w.safetensors')
  safetensors.numpy.save_file(_state_dict(), path)
  read = timm_state_dict.read_safetensors(path)
  assert sorted(read) == ['fc.bias', 'fc.weight']
  with pytest.raises(FileNotFoundError, match='nope.safetensors'):
    timm_state_dict.read_safetensors(str(tmp_path / 'nope.safetensors'))
  garbage = tmp_path / 'garbage.safetensors'
  garbage.write_bytes(b'\x00' * 64)
  with pytest.raises(ValueError, match='garbage.safetensors: not a readable'):
    timm_state_dict.read_safetensors(str(garbage))
