"""Top-1 / top-5 of a MobileNetV4 with a timm tag's evaluation pre-processing.

  python -m univision.interop.validate \
    --model=mobilenetv4_conv_small.e2400_r224_in1k \
    --weights_file=model.safetensors --data_dir=imagenet/val [--batch_size=64]

Like timm's `validate.py`: `--data_dir` is an ImageNet-style folder, one
sub-folder per class (class index = position of the folder name in sorted
order, as timm's ImageFolder counts); each image goes through the tag's
evaluation transform (`timm_tags.Tag`: shorter side to
floor(test_size / test_crop_pct) with PIL bicubic, centre crop of
test_size, scaled to [0, 1], normalised with the tag's mean and std, as
timm's `transforms_imagenet_eval` does) and the model
(`univision.create_model`). Prints top-1, top-5 and images per second.
"""
import math
import os
import time

from absl import app
from absl import flags
import numpy as np
from PIL import Image

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


def validate(name: str, data_dir: str, weights_file: str | None = None,
             pretrained: bool = False, batch_size: int = 32
             ) -> dict[str, float]:
  """Top-1 and top-5 (percent) and images per second on `data_dir`.

  Args:
    name: timm's `architecture.tag` (the tag fixes the pre-processing).
    data_dir: An ImageNet-style folder.
    weights_file: A timm `.safetensors`; else `pretrained` from the Hub.
    pretrained: Fetch the tag's weights.
    batch_size: Images per forward pass.
  """
  tag = timm_tags.get_tag(name)
  items, _ = image_folder(data_dir)
  model = create.create_model(name, pretrained=pretrained,
                              weights_file=weights_file)
  top1 = top5 = 0
  start = time.time()
  for i in range(0, len(items), batch_size):
    batch = items[i:i + batch_size]
    images = np.stack([preprocess(Image.open(p), tag) for p, _ in batch])
    logits = np.asarray(model(images, training=False))
    labels = np.array([label for _, label in batch])
    best = np.argsort(-logits, axis=1)[:, :5]
    top1 += int((best[:, 0] == labels).sum())
    top5 += int((best == labels[:, None]).any(axis=1).sum())
  seconds = time.time() - start
  return {'top1': 100.0 * top1 / len(items), 'top5': 100.0 * top5 / len(items),
          'images': len(items), 'images_per_second': len(items) / seconds}


def _define_flags() -> None:
  flags.DEFINE_string('model', None, 'timm name with its tag, e.g. '
                      'mobilenetv4_conv_small.e2400_r224_in1k.')
  flags.DEFINE_string('data_dir', None, 'ImageNet-style class folders.')
  flags.DEFINE_string('weights_file', None, 'A timm .safetensors file.')
  flags.DEFINE_bool('pretrained', False, "Fetch the tag's weights instead.")
  flags.DEFINE_integer('batch_size', 32, 'Images per forward pass.')
  flags.mark_flags_as_required(['model', 'data_dir'])


def main(_):
  f = flags.FLAGS
  if bool(f.weights_file) == f.pretrained:
    raise app.UsageError('Give exactly one of --weights_file or --pretrained.')
  result = validate(f.model, f.data_dir, f.weights_file, f.pretrained,
                    f.batch_size)
  print(f'{f.model}: top-1 {result["top1"]:.2f}%, top-5 {result["top5"]:.2f}% '
        f'on {result["images"]} images, {result["images_per_second"]:.1f} '
        'images/s')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
