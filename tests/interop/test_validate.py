"""The validation command: timm's evaluation transform and top-k, offline."""
import numpy as np
import pytest
from PIL import Image

from tests.interop import timm_fixtures
from univision.data import tfrecords
from univision.interop import timm_tags
from univision.interop import validate

NAME = 'mobilenetv4_conv_small.e1200_r224_in1k'


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
  """Made-up images of odd sizes in two class folders."""
  root = tmp_path_factory.mktemp('val')
  rng = np.random.default_rng(0)
  for name, sizes in (('b_cat', [(300, 260), (240, 400)]),
                      ('a_dog', [(257, 257), (500, 280), (231, 233)])):
    (root / name).mkdir()
    for i, (w, h) in enumerate(sizes):
      pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
      Image.fromarray(pixels).save(root / name / f'{i}.png')
  (root / 'a_dog' / 'notes.txt').write_text('not an image')
  return str(root)


def test_preprocessing_is_timms_eval_transform(folder):
  import timm  # pylint: disable=g-import-not-at-top
  from timm.data import create_transform, resolve_data_config  # pylint: disable=g-import-not-at-top
  # timm's evaluation transform for the tag (its test size and crop).
  config = resolve_data_config({}, model=timm.create_model(
      NAME, pretrained=False), use_test_size=True)
  transform = create_transform(**config)
  tag = timm_tags.get_tag(NAME)
  assert config['input_size'][1:] == (tag.test_size, tag.test_size)
  items, classes = validate.image_folder(folder)
  assert classes == ['a_dog', 'b_cat'] and len(items) == 5
  for path, _ in items:
    want = transform(Image.open(path).convert('RGB')).numpy().transpose(
        1, 2, 0)
    got = validate.preprocess(Image.open(path), tag)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_validate_counts_top1_and_top5(folder, tmp_path):
  model = timm_fixtures.random_timm_model('mobilenetv4_conv_small', 96)
  weights = timm_fixtures.save_safetensors(model,
                                           str(tmp_path / 'w.safetensors'))
  result = validate.validate(NAME, folder, weights_file=weights,
                             batch_size=2)
  # timm on the same transform: its top-1 / top-5 over the 5 images.
  tag = timm_tags.get_tag(NAME)
  items, _ = validate.image_folder(folder)
  images = np.stack([validate.preprocess(Image.open(p), tag)
                     for p, _ in items])
  logits = timm_fixtures.timm_logits(model, images)
  labels = np.array([label for _, label in items])
  order = np.argsort(-logits, axis=1)
  assert result['top1'] == 100 * np.mean(order[:, 0] == labels)
  assert result['top5'] == 100 * np.mean((order[:, :5] == labels[:, None])
                                         .any(1))
  assert result['images'] == 5 and result['images_per_second'] > 0
  with pytest.raises(ValueError, match='no images'):
    validate.image_folder(str(tmp_path))


def test_tfrecords_are_validated_with_the_tags_transform(tmp_path):
  rng = np.random.default_rng(1)
  images = rng.integers(0, 256, (5, 240, 300, 3), dtype=np.uint8)
  labels = np.array([3, 1, 4, 1, 5])
  tfrecords.write_classification_tfrecords(
      images, labels + 1, str(tmp_path / 'val'), 2, 'made_up')
  model = timm_fixtures.random_timm_model('mobilenetv4_conv_small', 96)
  weights = timm_fixtures.save_safetensors(model,
                                           str(tmp_path / 'w.safetensors'))
  got = validate.validate(NAME, tfrecords=str(tmp_path / 'val*'),
                          weights_file=weights, batch_size=2)
  tag = timm_tags.get_tag(NAME)
  logits = timm_fixtures.timm_logits(model, np.stack(
      [validate.preprocess(Image.fromarray(i), tag) for i in images]))
  order = np.argsort(-logits, axis=1)
  # Records come shard by shard, not in write order: the counts agree.
  assert got['images'] == 5
  assert got['top1'] == 100 * np.mean(order[:, 0] == labels)
  assert got['top5'] == 100 * np.mean((order[:, :5] == labels[:, None])
                                      .any(1))
  with pytest.raises(ValueError, match="--tfrecords='nothing-\\*'"):
    validate.validate(NAME, tfrecords='nothing-*', weights_file=weights)
  with pytest.raises(ValueError, match='exactly one of --data_dir or '
                     '--tfrecords'):
    validate.validate(NAME, weights_file=weights)
