"""Felzenszwalb-Huttenlocher (FH) regions for R-MAE, stored with the images.

R-MAE (Nguyen et al., ICLR 2024) learns to reconstruct region maps; its
regions are FH segments (`skimage.segmentation.felzenszwalb`) computed
offline, once per image at the image's own resolution (facebookresearch/
r-mae `tools/preprocess/create_fh_mask_for_imnet.py`: ImageNet `scale=1000,
min_size=1000`, skimage's default `sigma=0.8`; COCO: three segmentations at
scales 500/1000/1500 with equal min sizes). The reference saves them as
`.npy` files next to the image folders; Model Garden reads TFRecords, so
this module (ours) adds them to existing classification TFRecords instead:
each record gets `image/region/encoded`, a 1-channel 16-bit PNG label map of
the image's height and width (segment ids 0 .. n-1; 16 bits because the
reference's uint8 would wrap above 255 segments).

Offline is the default, as in the reference: FH costs about 0.04 s for a
224x224 and 0.17 s for a 375x500 image on one core here, so an input
pipeline feeding 4096 ImageNet images per step would need hundreds of host
cores, and `tf.numpy_function` holds the GIL and ties the pipeline to
Python. The same `segment` is what the in-pipeline alternative calls
(`task.regions.type: 'felzenszwalb'`, `univision.dataloaders.rmae_input`),
for small data or trying other FH settings without rewriting records.

Usage:
  python -m univision.data.fh_regions \
    --input_pattern='data/fashion_mnist/train-*' \
    --output_dir=data/fashion_mnist_regions --scale=200 --min_size=30
(the settings of `vit_rmae_fashion_mnist`; ImageNet: the defaults).
"""
import concurrent.futures
import dataclasses
import multiprocessing
import os

from absl import app
from absl import flags
import numpy as np
import skimage.segmentation
import tensorflow as tf

REGION_KEY = 'image/region/encoded'
_IMAGE_KEY = 'image/encoded'
_SOURCE_ID_KEY = 'image/source_id'
_MAX_SEGMENTS = 2**16


@dataclasses.dataclass(frozen=True)
class FHParams:
  """`skimage.segmentation.felzenszwalb` settings; defaults: r-mae ImageNet.

  Attributes:
    scale: Higher means fewer, larger segments.
    sigma: Gaussian pre-smoothing (skimage's default; the reference keeps
      it).
    min_size: Smallest segment, in pixels (smaller ones are merged).
  """
  scale: float = 1000.0
  sigma: float = 0.8
  min_size: int = 1000


def segment(image: np.ndarray, params: FHParams) -> np.ndarray:
  """FH label map [H, W] uint16 (ids 0 .. n-1) of a uint8 [H, W, 3] image."""
  labels = skimage.segmentation.felzenszwalb(
      image, scale=params.scale, sigma=params.sigma,
      min_size=params.min_size)
  if labels.max() >= _MAX_SEGMENTS:
    raise ValueError(f'{labels.max() + 1} FH segments do not fit 16 bits; '
                     'raise scale or min_size.')
  return labels.astype(np.uint16)


def add_regions_to_file(input_path: str, output_path: str,
                        params: FHParams) -> int:
  """Copies one TFRecord file, adding `REGION_KEY` to every record.

  Args:
    input_path: A `str` classification TFRecord file (`image/encoded`).
    output_path: A `str` file to write; renamed into place when complete.
    params: The `FHParams`.

  Returns:
    The number of records written.

  Raises:
    ValueError: naming the file and record if an image does not decode.
  """
  os.makedirs(os.path.dirname(output_path) or '.', exist_ok=True)
  count = 0
  with tf.io.TFRecordWriter(output_path + '.incomplete') as writer:
    for serialized in tf.data.TFRecordDataset(input_path):
      example = tf.train.Example.FromString(serialized.numpy())
      features = example.features.feature
      record = (features[_SOURCE_ID_KEY].bytes_list.value or
                [str(count).encode()])[0].decode()
      try:
        image = tf.io.decode_image(features[_IMAGE_KEY].bytes_list.value[0],
                                   channels=3, expand_animations=False)
      except (IndexError, tf.errors.InvalidArgumentError) as error:
        raise ValueError(f'{input_path}: record {record}: image does not '
                         f'decode ({error}).') from error
      labels = segment(image.numpy(), params)
      features[REGION_KEY].bytes_list.value[:] = [
          tf.io.encode_png(labels[..., np.newaxis]).numpy()]
      writer.write(example.SerializeToString())
      count += 1
  os.replace(output_path + '.incomplete', output_path)
  return count


def add_regions(input_pattern: str, output_dir: str,
                params: FHParams = FHParams(),
                num_workers: int = 1) -> list[str]:
  """`add_regions_to_file` for every file matching a pattern.

  Args:
    input_pattern: A `str` glob of classification TFRecord files.
    output_dir: A `str` folder; each output keeps its input's file name, so
      the sharding (and a `train-*` pattern) carries over.
    params: The `FHParams`.
    num_workers: An `int`; above 1, files are processed in that many
      processes.

  Returns:
    The written paths.
  """
  inputs = sorted(tf.io.gfile.glob(input_pattern))
  if not inputs:
    raise FileNotFoundError(f'No file matches {input_pattern!r}.')
  outputs = [os.path.join(output_dir, os.path.basename(p)) for p in inputs]
  if num_workers <= 1:
    for source, target in zip(inputs, outputs):
      add_regions_to_file(source, target, params)
    return outputs
  with concurrent.futures.ProcessPoolExecutor(
      num_workers, mp_context=multiprocessing.get_context('spawn')) as pool:
    list(pool.map(add_regions_to_file, inputs, outputs,
                  [params] * len(inputs)))
  return outputs


def main(_):
  flags_ = flags.FLAGS
  params = FHParams(flags_.scale, flags_.sigma, flags_.min_size)
  written = add_regions(flags_.input_pattern, flags_.output_dir, params,
                        flags_.num_workers)
  print(f'{len(written)} files with FH regions ({params}) in '
        f'{flags_.output_dir}')


if __name__ == '__main__':
  flags.DEFINE_string('input_pattern', None,
                      'Classification TFRecord files to add regions to.')
  flags.DEFINE_string('output_dir', None, 'Folder for the new TFRecords.')
  flags.DEFINE_float('scale', FHParams.scale, 'FH scale.')
  flags.DEFINE_float('sigma', FHParams.sigma, 'FH Gaussian sigma.')
  flags.DEFINE_integer('min_size', FHParams.min_size, 'FH minimum segment.')
  flags.DEFINE_integer('num_workers', 1, 'Processes (one file each).')
  flags.mark_flags_as_required(['input_pattern', 'output_dir'])
  app.run(main)
