"""Top-1 / top-5 of a MobileNetV4 with a timm tag's evaluation pre-processing.

  python -m univision.interop.validate \
    --model=mobilenetv4_conv_small.e2400_r224_in1k \
    --weights_file=model.safetensors --data_dir=imagenet/val [--batch_size=64]
  # Or Model Garden's ImageNet TFRecords (labels 1..1000: --label_offset=1)
  python -m univision.interop.validate --model=... --pretrained \
    --tfrecords='imagenet/validation-*'

Like timm's `validate.py`: `--data_dir` is an ImageNet-style folder, one
sub-folder per class (class index = position of the folder name in sorted
order, as timm's ImageFolder counts); `--tfrecords` a pattern of
classification TFRecords (`image/encoded`, `image/class/label` minus
`--label_offset`, in file order). Each image goes through the tag's
evaluation transform (`timm_tags.Tag`: shorter side to
floor(test_size / test_crop_pct) with PIL bicubic, centre crop of
test_size, scaled to [0, 1], normalised with the tag's mean and std, as
timm's `transforms_imagenet_eval` does) and the model
(`univision.create_model`). Prints top-1, top-5 and images per second.
"""
import io
import math
import os
import time
from collections.abc import Iterator

from absl import app
from absl import flags
import numpy as np
from PIL import Image
import tensorflow as tf

from univision.interop import create
from univision.interop import timm_tags

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def preprocess(image: Image.Image, tag: timm_tags.Tag) -> np.ndarray:
  """[test_size, test_size, 3] float32: the tag's evaluation transform."""
  image = image.convert('RGB')
  scale = math.floor(tag.test_size / tag.test_crop_pct)
  width, height = image.size
  if width <= height:
    size = (scale, int(scale * height / width))
  else:
    size = (int(scale * width / height), scale)
  resample = {'bicubic': Image.BICUBIC, 'bilinear': Image.BILINEAR}[
      tag.interpolation]
  image = image.resize(size, resample)
  top = int(round((size[1] - tag.test_size) / 2.0))
  left = int(round((size[0] - tag.test_size) / 2.0))
  image = image.crop((left, top, left + tag.test_size, top + tag.test_size))
  pixels = np.asarray(image, np.float32) / 255.0
  return (pixels - np.float32(tag.mean)) / np.float32(tag.std)


def image_folder(data_dir: str) -> tuple[list[tuple[str, int]], list[str]]:
  """([(image path, class index)], class names) of an ImageNet-style folder.

  Raises:
    ValueError: naming the folder if it has no class folder or no image.
  """
  if not os.path.isdir(data_dir):
    raise ValueError(f'--data_dir={data_dir!r} is not a folder.')
  classes = sorted(d for d in os.listdir(data_dir)
                   if os.path.isdir(os.path.join(data_dir, d)))
  items = [(os.path.join(data_dir, name, f), index)
           for index, name in enumerate(classes)
           for f in sorted(os.listdir(os.path.join(data_dir, name)))
           if f.lower().endswith(IMAGE_SUFFIXES)]
  if not items:
    raise ValueError(f'--data_dir={data_dir!r}: no images in class '
                     'sub-folders (expected <class>/<image>.jpg).')
  return items, classes


def tfrecord_examples(pattern: str, label_offset: int = 1
                      ) -> Iterator[tuple[Image.Image, int]]:
  """(image, class index) of every record of `pattern`, in file order.

  Raises:
    ValueError: naming the pattern if it matches no file, or the file and
      key of a record without `image/encoded` or `image/class/label`.
  """
  files = sorted(tf.io.gfile.glob(pattern))
  if not files:
    raise ValueError(f'--tfrecords={pattern!r}: no file matches.')

  def examples():
    for path in files:
      for index, record in enumerate(tf.data.TFRecordDataset(path)):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        for key in ('image/encoded', 'image/class/label'):
          if key not in feature:
            raise ValueError(f'{path}: record {index} has no {key!r}.')
        yield (Image.open(io.BytesIO(
            feature['image/encoded'].bytes_list.value[0])),
               feature['image/class/label'].int64_list.value[0] - label_offset)

  return examples()


def validate(name: str, data_dir: str | None = None,
             weights_file: str | None = None, pretrained: bool = False,
             batch_size: int = 32, tfrecords: str | None = None,
             label_offset: int = 1) -> dict[str, float]:
  """Top-1 and top-5 (percent) and images per second.

  Args:
    name: timm's `architecture.tag` (the tag fixes the pre-processing).
    data_dir: An ImageNet-style folder; or
    tfrecords: a pattern of classification TFRecords, whose labels minus
      `label_offset` are the class indices.
    weights_file: A timm `.safetensors`; else `pretrained` from the Hub.
    pretrained: Fetch the tag's weights.
    batch_size: Images per forward pass.
    label_offset: Subtracted from TFRecord labels (1 for Model Garden's
      ImageNet records, 1..1000).

  Raises:
    ValueError: unless exactly one of `data_dir` and `tfrecords` is given.
  """
  if bool(data_dir) == bool(tfrecords):
    raise ValueError('Give exactly one of --data_dir or --tfrecords.')
  tag = timm_tags.get_tag(name)
  if data_dir:
    items, _ = image_folder(data_dir)
    examples = ((Image.open(path), label) for path, label in items)
  else:
    examples = tfrecord_examples(tfrecords, label_offset)
  model = create.create_model(name, pretrained=pretrained,
                              weights_file=weights_file)
  top1 = top5 = count = 0
  start = time.time()
  while batch := [e for _, e in zip(range(batch_size), examples)]:
    images = np.stack([preprocess(image, tag) for image, _ in batch])
    logits = np.asarray(model(images, training=False))
    labels = np.array([label for _, label in batch])
    best = np.argsort(-logits, axis=1)[:, :5]
    top1 += int((best[:, 0] == labels).sum())
    top5 += int((best == labels[:, None]).any(axis=1).sum())
    count += len(batch)
  seconds = time.time() - start
  if not count:
    raise ValueError(f'--tfrecords={tfrecords!r}: no record.')
  return {'top1': 100.0 * top1 / count, 'top5': 100.0 * top5 / count,
          'images': count, 'images_per_second': count / seconds}


def _define_flags() -> None:
  flags.DEFINE_string('model', None, 'timm name with its tag, e.g. '
                      'mobilenetv4_conv_small.e2400_r224_in1k.')
  flags.DEFINE_string('data_dir', None, 'ImageNet-style class folders.')
  flags.DEFINE_string('tfrecords', None, 'Or: classification TFRecords.')
  flags.DEFINE_integer('label_offset', 1, 'Subtracted from TFRecord labels '
                       "(1: Model Garden's ImageNet records, labels 1..1000).")
  flags.DEFINE_string('weights_file', None, 'A timm .safetensors file.')
  flags.DEFINE_bool('pretrained', False, "Fetch the tag's weights instead.")
  flags.DEFINE_integer('batch_size', 32, 'Images per forward pass.')
  flags.mark_flags_as_required(['model'])


def main(_):
  f = flags.FLAGS
  if bool(f.weights_file) == f.pretrained:
    raise app.UsageError('Give exactly one of --weights_file or --pretrained.')
  try:
    result = validate(f.model, f.data_dir, f.weights_file, f.pretrained,
                      f.batch_size, f.tfrecords, f.label_offset)
  except ValueError as e:  # One line naming the input, not a traceback.
    raise app.UsageError(str(e)) from e
  print(f'{f.model}: top-1 {result["top1"]:.2f}%, top-5 {result["top5"]:.2f}% '
        f'on {result["images"]} images, {result["images_per_second"]:.1f} '
        'images/s')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
