"""Reader for the IDX files of (Fashion-)MNIST, with errors naming the file.

Format (LeCun et al.): big-endian magic `0x0000 <dtype> <ndim>`, then `ndim`
uint32 sizes, then the data. Files may be gzip-compressed.
"""
import gzip
import struct

import numpy as np

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype('>i2'),
           0x0C: np.dtype('>i4'), 0x0D: np.dtype('>f4'),
           0x0E: np.dtype('>f8')}


def read_idx(path: str) -> np.ndarray:
  """Reads an IDX(.gz) file into an array.

  Args:
    path: A `str` path; a `.gz` suffix means gzip-compressed.

  Returns:
    The array, with the file's shape and dtype.

  Raises:
    ValueError: naming `path` if the header or size is wrong.
  """
  opener = gzip.open if path.endswith('.gz') else open
  try:
    with opener(path, 'rb') as f:
      raw = f.read()
  except (OSError, EOFError) as e:
    raise ValueError(f'{path}: cannot read IDX file ({e}).') from e
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
    raise ValueError(f'{path}: not an IDX file (bad magic {raw[:4]!r}).')
  dtype, ndim = np.dtype(_DTYPES[raw[2]]), raw[3]
  header = 4 + 4 * ndim
  if len(raw) < header:
    raise ValueError(f'{path}: IDX header truncated.')
  shape = struct.unpack(f'>{ndim}I', raw[4:header])
  expected = header + int(np.prod(shape)) * dtype.itemsize
  if len(raw) != expected:
    raise ValueError(f'{path}: IDX data has {len(raw)} bytes, the header '
                     f'{shape} says {expected}.')
  return np.frombuffer(raw, dtype, offset=header).reshape(shape)
