"""Tests for finding the damaged TFRecord file behind a DataLossError."""
import os
import shutil
import struct

import pytest
import tensorflow as tf, tf_keras
from official.core import exp_factory

from univision import registry_imports  # pylint: disable=unused-import
from univision.core import tfrecord_check


def truncated_copy(source: str, target: str, drop_bytes: int = 100) -> str:
  """Copies a file without its last `drop_bytes` (an interrupted copy)."""
  with open(source, 'rb') as f:
    data = f.read()
  with open(target, 'wb') as f:
    f.write(data[:-drop_bytes])
  return target


def flipped_copy(source: str, target: str) -> str:
  """Copies a file with two bytes inverted in the data of a record past its
  middle (bit rot; the record framing stays intact)."""
  data = bytearray(open(source, 'rb').read())
  offset = 0
  while offset < len(data) // 2:
    (length,) = struct.unpack('<Q', data[offset:offset + 8])
    offset += 16 + length
  (length,) = struct.unpack('<Q', data[offset:offset + 8])
  middle = offset + 12 + length // 2
  data[middle] ^= 0xFF
  data[middle + 1] ^= 0x0F
  with open(target, 'wb') as f:
    f.write(bytes(data))
  return target


def _data_loss(files: list[str]) -> tf.errors.DataLossError:
  """The error tf.data raises reading `files` (interleaved, as in training)."""
  dataset = tf.data.Dataset.from_tensor_slices(files).interleave(
      tf.data.TFRecordDataset, cycle_length=4)
  with pytest.raises(tf.errors.DataLossError) as error:
    for _ in dataset:
      pass
  return error.value


@pytest.fixture
def shards(fake_fmnist_tfrecords, tmp_path) -> list[str]:
  """Copies of the train shards, to damage."""
  paths = []
  for source in sorted(tf.io.gfile.glob(f'{fake_fmnist_tfrecords}/train-*')):
    paths.append(str(tmp_path / os.path.basename(source)))
    shutil.copy(source, paths[-1])
  return paths


def test_crc32c_of_the_standard_check_string():
  crc = 0xE3069283  # CRC-32C of b'123456789' (RFC 3720).
  masked = (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
  assert tfrecord_check.masked_crc32c(b'123456789') == masked


def test_intact_files_pass_framing_and_data_checks(shards):
  for path in shards:
    assert tfrecord_check.scan_file(path) is None
    assert tfrecord_check.scan_file(path, data_offset=0) is None


def test_truncated_file(shards):
  truncated_copy(shards[2], shards[2])
  damage = tfrecord_check.scan_file(shards[2])
  assert damage.path == shards[2]
  assert 'truncated: the record needs' in damage.problem
  error = _data_loss([shards[2]])
  assert f'record at {damage.offset}' in error.message


def test_flipped_bytes_found_at_the_offset_tensorflow_names(shards):
  flipped_copy(shards[5], shards[5])
  assert tfrecord_check.scan_file(shards[5]) is None  # Framing intact.
  error = _data_loss([shards[5]])
  damage = tfrecord_check.scan_file(
      shards[5], int(error.message.split('record at ')[1].split()[0]))
  assert damage.problem == 'the record data fails its CRC check'
  assert damage.offset >= os.path.getsize(shards[5]) // 2


def test_not_a_tfrecord_file(shards):
  with open(shards[0], 'wb') as f:
    f.write(b'a text file, not records\n' * 4)
  damage = tfrecord_check.scan_file(shards[0])
  assert damage.offset == 0
  assert 'is this a TFRecord file?' in damage.problem


def _params(folder: str):
  params = exp_factory.get_exp_config('mnv4_fashion_mnist')
  params.override({'task': {
      'train_data': {'input_path': f'{folder}/train-*'},
      'validation_data': {'input_path': f'{folder}/missing-*'}}})
  return params


@pytest.mark.parametrize('damage', [truncated_copy, flipped_copy])
def test_locate_damage_names_key_file_and_offset(shards, damage):
  damage(shards[3], shards[3])
  located = tfrecord_check.locate_damage(
      _params(os.path.dirname(shards[0])), _data_loss(shards))
  assert isinstance(located, tf.errors.DataLossError)
  assert located.message.startswith(
      f'task.train_data.input_path: {shards[3]} is damaged at byte ')
  assert 'Re-create or re-copy this file' in located.message


def test_locate_damage_none_when_inputs_are_intact(shards, tmp_path):
  error = _data_loss([flipped_copy(shards[0], str(tmp_path / 'other'))])
  assert tfrecord_check.locate_damage(
      _params(os.path.dirname(shards[0])), error) is None


def test_other_data_loss_errors_are_not_scanned_for(shards, monkeypatch):
  """A checkpoint's DataLossError names no record: no input file is read."""
  def fail(*args):
    raise AssertionError(f'scanned {args}')
  monkeypatch.setattr(tfrecord_check, 'scan_file', fail)
  error = tf.errors.DataLossError(
      None, None, 'Checksum does not match: stored 1 vs. calculated on the '
      'restored bytes 2')
  assert tfrecord_check.locate_damage(
      _params(os.path.dirname(shards[0])), error) is None
