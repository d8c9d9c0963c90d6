"""Finds which TFRecord file a `DataLossError` came from.

`tf.data.TFRecordDataset` reports a damaged file as `DataLossError:
corrupted record at 4813` or `truncated record at 10561`: the byte offset of
the bad record, but not the file. Nothing is checked ahead of time (a pre-scan
of a large dataset on every start would cost minutes); only after such an
error does `locate_damage` walk the input files of the experiment, in order
until the first damaged one, reading just the 12-byte record headers (one
small read per record, so it is slow on large remote datasets, but it runs
only once the run has already failed). It checks the framing (each header's length
CRC, records ending exactly at the end of the file) and, at the offset the
error names, the record data's CRC too, so a file damaged in the middle of a
record's data is found without reading every file in full.

The record format: uint64 length, uint32 masked CRC-32C of the length, the
data, uint32 masked CRC-32C of the data (all little-endian).
"""
import dataclasses
import re
import struct

import tensorflow as tf, tf_keras
from official.core import config_definitions as cfg

from univision.core import input_checks

_HEADER = struct.Struct('<QI')
_CRC = struct.Struct('<I')
_MASK_DELTA = 0xA282EAD8
_OFFSET = re.compile(r'(?:corrupted|truncated) record at (\d+)')


def _crc32c_table() -> list[int]:
  table = []
  for byte in range(256):
    crc = byte
    for _ in range(8):
      crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    table.append(crc)
  return table


_TABLE = _crc32c_table()


def masked_crc32c(data: bytes) -> int:
  """The CRC-32C (Castagnoli) of `data`, masked as TFRecord stores it."""
  crc = 0xFFFFFFFF
  for byte in data:
    crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  crc ^= 0xFFFFFFFF
  return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


class CorruptRecordFileError(tf.errors.DataLossError):
  """A `DataLossError` whose message names the damaged file and offset."""

  def __init__(self, message: str):
    super().__init__(None, None, message)


@dataclasses.dataclass(frozen=True)
class Damage:
  """Where a TFRecord file is damaged and how."""
  path: str
  offset: int
  problem: str

  def __str__(self) -> str:
    return (f'{self.path} is damaged at byte {self.offset}: {self.problem}. '
            'Re-create or re-copy this file, or leave it out of the pattern.')


def scan_file(path: str, data_offset: int | None = None) -> Damage | None:
  """The first damage in a TFRecord file, or None.

  Args:
    path: A TFRecord file (uncompressed).
    data_offset: The offset of a record whose data CRC is checked too (of
      its header or of its data: TensorFlow's errors name either); the other
      records' data is skipped, not read.

  Returns:
    A `Damage`, or None if the framing (and the data at `data_offset`) is
    intact.
  """
  size = tf.io.gfile.stat(path).length
  offset = 0
  with tf.io.gfile.GFile(path, 'rb') as f:
    while offset < size:
      header = f.read(_HEADER.size)
      if len(header) < _HEADER.size:
        return Damage(path, offset, f'truncated: a record header needs '
                      f'{_HEADER.size} bytes, the file ends after '
                      f'{len(header)}')
      length, length_crc = _HEADER.unpack(header)
      if masked_crc32c(header[:8]) != length_crc:
        what = 'the record length fails its CRC check'
        if offset == 0:
          what += ' (is this a TFRecord file?)'
        return Damage(path, offset, what)
      end = offset + _HEADER.size + length + _CRC.size
      if end > size:
        return Damage(path, offset, f'truncated: the record needs '
                      f'{end - offset} bytes, the file ends '
                      f'{size - offset} bytes after its start')
      if data_offset in (offset, offset + _HEADER.size):
        data = f.read(length)
        (data_crc,) = _CRC.unpack(f.read(_CRC.size))
        if masked_crc32c(data) != data_crc:
          return Damage(path, offset, 'the record data fails its CRC check')
      else:
        f.seek(end)
      offset = end
  return None


def _tfrecord_inputs(task: cfg.TaskConfig) -> list[tuple[str, list[str]]]:
  """(config key, files) of the task's uncompressed TFRecord inputs."""
  inputs = []
  for field in dataclasses.fields(task):
    data = getattr(task, field.name)
    if (isinstance(data, cfg.DataConfig) and data.input_path and
        isinstance(data.input_path, (str, list, tuple)) and
        getattr(data, 'file_type', 'tfrecord') == 'tfrecord'):
      files = sorted(path for pattern in input_checks.split_input_path(
          data.input_path) for path in tf.io.gfile.glob(pattern))
      inputs.append((f'task.{field.name}.input_path', files))
  return inputs


def locate_damage(params: cfg.ExperimentConfig,
                  error: tf.errors.DataLossError
                  ) -> CorruptRecordFileError | None:
  """An error naming the damaged input file behind `error`, or None.

  Args:
    params: The experiment whose input files are scanned.
    error: The `DataLossError` raised while reading them.

  Returns:
    A `CorruptRecordFileError` naming the config key, file, offset and
    problem; None if `error` is not a damaged-record error (e.g. it came
    from a checkpoint; nothing is scanned then) or no input file is damaged.
  """
  match = _OFFSET.search(error.message)
  if not match:
    return None
  data_offset = int(match.group(1))
  for key, files in _tfrecord_inputs(params.task):
    for path in files:
      damage = scan_file(path, data_offset)
      if damage:
        return CorruptRecordFileError(f'{key}: {damage}')
  return None
