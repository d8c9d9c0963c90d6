"""Quantization ranges set from data before QAT."""
import numpy as np
import pytest

from univision.quantization import calibration
from univision.quantization import flat_graph
from univision.quantization import qat
from univision.quantization import readiness

_SIZE = 32


@pytest.fixture(scope='module')
def models():
  model = readiness.random_classifier('MobileNetV4ConvSmall', _SIZE)
  flat = flat_graph.flat_classifier(model, (_SIZE, _SIZE))
  return model, flat, qat.quantize_flat_model(flat)


def _range_values(qat_model):
  return {v.name: v.numpy() for v in qat_model.weights
          if v.name.endswith(('_min:0', '_max:0'))}


def test_no_range_keeps_its_initial_value(models):
  _, flat, qat_model = models
  before = _range_values(qat_model)
  count = calibration.calibrate(
      qat_model, flat, [readiness.random_images(4, _SIZE, s) for s in (5, 6)])
  assert count == 8
  after = _range_values(qat_model)
  unchanged = [n for n in before if np.array_equal(before[n], after[n])]
  assert not unchanged


def test_input_range_is_the_mean_of_batch_extremes(models):
  _, flat, qat_model = models
  batches = [readiness.random_images(4, _SIZE, s) for s in (7, 8)]
  calibration.calibrate(qat_model, flat, batches)
  ranges = calibration._activation_range_vars(qat_model)  # pylint: disable=protected-access
  low, high = (float(np.ravel(v.numpy())[0]) for v in ranges[None])
  np.testing.assert_allclose(low, np.mean([b.min() for b in batches]),
                             rtol=1e-6)
  np.testing.assert_allclose(high, np.mean([b.max() for b in batches]),
                             rtol=1e-6)


def test_calibrated_qat_model_follows_the_float_model(models):
  model, flat, qat_model = models
  calibration.calibrate(qat_model, flat,
                        [readiness.random_images(8, _SIZE, s) for s in (2, 3)])
  images = readiness.random_images(8, _SIZE, seed=9)
  want = model(images, training=False).numpy().ravel()
  got = qat_model(images, training=False).numpy().ravel()
  assert np.corrcoef(got, want)[0, 1] > 0.9


def test_weights_other_than_ranges_are_untouched(models):
  _, flat, qat_model = models
  before = {v.name: v.numpy() for v in qat_model.weights
            if not v.name.endswith(('_min:0', '_max:0'))}
  calibration.calibrate(qat_model, flat, [readiness.random_images(4, _SIZE)])
  for v in qat_model.weights:
    if v.name in before:
      np.testing.assert_array_equal(v.numpy(), before[v.name], v.name)


def test_no_batches_is_an_error(models):
  _, flat, qat_model = models
  with pytest.raises(ValueError, match='no images'):
    calibration.calibrate(qat_model, flat, [])


def _input_range(qat_model):
  ranges = calibration._activation_range_vars(qat_model)  # pylint: disable=protected-access
  return tuple(float(np.ravel(v.numpy())[0]) for v in ranges[None])


def _with_outlier(seed):
  """Ten batches of ordinary images; one image of the last is 50x brighter."""
  batches = [readiness.random_images(4, _SIZE, seed + s) for s in range(10)]
  batches[-1][0] *= 50.0
  return batches


def _widths(qat_model):
  """Every activation range's width (input first), in a fixed order."""
  ranges = calibration._activation_range_vars(qat_model)  # pylint: disable=protected-access
  return np.array([float(np.ravel(high.numpy())[0] - np.ravel(low.numpy())[0])
                   for low, high in ranges.values()])


def test_image_percentile_ranges_ignore_a_planted_outlier_image(models):
  _, flat, qat_model = models
  batches = _with_outlier(20)
  ordinary = np.concatenate(batches[:-1] + [batches[-1][1:]])
  calibration.calibrate(qat_model, flat, batches,
                        estimator='image_percentile', percentile=95.0)
  low, high = _input_range(qat_model)
  assert ordinary.max() / 2 < high <= ordinary.max()
  assert ordinary.min() <= low < ordinary.min() / 2
  robust = _widths(qat_model)
  # The same data under min/max: the outlier sets the input's range, and
  # every range downstream is wider.
  calibration.calibrate(qat_model, flat, batches, estimator='minmax')
  low, high = _input_range(qat_model)
  assert high == pytest.approx(batches[-1].max())
  assert high > 10 * ordinary.max()
  assert np.median(_widths(qat_model) / robust) > 5


def test_percentile_is_read_off_all_values(models):
  _, flat, qat_model = models
  batches = [readiness.random_images(4, _SIZE, s) for s in (30, 31)]
  values = np.concatenate(batches).ravel()
  calibration.calibrate(qat_model, flat, batches, estimator='percentile',
                        percentile=99.0)
  low, high = _input_range(qat_model)
  bin_width = float(values.max() - values.min()) / calibration._BINS  # pylint: disable=protected-access
  assert low == pytest.approx(np.percentile(values, 1.0), abs=bin_width)
  assert high == pytest.approx(np.percentile(values, 99.0), abs=bin_width)


@pytest.mark.parametrize('kwargs, message', [
    ({'estimator': 'kl'}, "estimator='kl'"),
    ({'estimator': 'percentile', 'percentile': 40.0}, 'percentile=40.0'),
])
def test_bad_estimator_settings_are_named(models, kwargs, message):
  _, flat, qat_model = models
  with pytest.raises(ValueError, match=message):
    calibration.calibrate(qat_model, flat, [readiness.random_images(2, _SIZE)],
                          **kwargs)
