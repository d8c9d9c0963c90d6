"""MobileNetV4 block-spec tables in YAML files (e.g. a NAS result).

A spec file holds the model-level fields of `ModelSpec` and one mapping per
row of the table; a row lists `block` and the fields its block type uses:

  activation: relu
  layer_scale_init_value: null
  head_filters: [960, 1280]
  resolution: 224
  antialias: ''        # or avg / blur (anti-aliased strided convs)
  blocks:
  - {block: conv, strides: 2, filters: 32, kernel_size: 3}
  - {block: uib, strides: 2, filters: 96, start_dw_kernel_size: 5,
     middle_dw_kernel_size: 5, expand_ratio: 3.0}
  - {block: mqa, num_heads: 4, key_dim: 64, kv_strides: 2}

Fields a row leaves out take `BlockSpec`'s defaults; fields its block type
does not use are errors. `write` then `read` gives back an equal `ModelSpec`.
The body must downsample by exactly 32 (levels 2..5 are the backbone's
endpoints).
"""
import os
from typing import Any

import yaml

from univision.modeling.backbones import mobilenet_v4_specs as specs
from univision.modeling.layers import antialias

# The BlockSpec fields each block type reads (besides `block`).
ROW_FIELDS = {
    'conv': ('strides', 'filters', 'kernel_size'),
    'fused_ib': ('strides', 'filters', 'kernel_size', 'expand_ratio'),
    'uib': ('strides', 'filters', 'start_dw_kernel_size',
            'middle_dw_kernel_size', 'expand_ratio'),
    'mqa': ('num_heads', 'key_dim', 'kv_strides'),
}
REQUIRED = {
    'conv': ('filters', 'kernel_size'),
    'fused_ib': ('filters', 'kernel_size', 'expand_ratio'),
    'uib': ('filters', 'expand_ratio'),
    'mqa': ('num_heads', 'key_dim'),
}
MODEL_FIELDS = ('activation', 'layer_scale_init_value', 'head_filters',
                'resolution', 'antialias', 'blocks')
_BODY_STRIDE = 32


class SpecFileError(ValueError):
  """A spec file or table with a missing key, unknown key or bad value."""


def _int(where: str, key: str, value: Any, minimum: int) -> int:
  if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
    raise SpecFileError(f'{where}: key {key} must be an integer >= {minimum}, '
                        f'got {value!r}.')
  return value


def _row(where: str, row: Any) -> specs.BlockSpec:
  """The checked `BlockSpec` of one row mapping."""
  if not isinstance(row, dict) or 'block' not in row:
    raise SpecFileError(f'{where}: expected a mapping with a `block` key, '
                        f'got {row!r}.')
  kind = row['block']
  if kind not in ROW_FIELDS:
    raise SpecFileError(f'{where}: key block={kind!r} is not one of '
                        f'{", ".join(ROW_FIELDS)}.')
  where = f'{where} ({kind})'
  unknown = sorted(set(row) - {'block', *ROW_FIELDS[kind]})
  if unknown:
    raise SpecFileError(f'{where}: unknown key(s) {", ".join(unknown)}; a '
                        f'{kind} row takes {", ".join(ROW_FIELDS[kind])}.')
  missing = [k for k in REQUIRED[kind] if k not in row]
  if missing:
    raise SpecFileError(f'{where}: missing key(s) {", ".join(missing)}.')
  fields = {}
  for key in ROW_FIELDS[kind]:
    if key not in row:
      continue
    value = row[key]
    if key == 'expand_ratio':
      if (isinstance(value, bool) or not isinstance(value, (int, float))
          or value <= 0):
        raise SpecFileError(f'{where}: key expand_ratio must be a positive '
                            f'number, got {value!r}.')
      value = float(value)
    elif key in ('strides', 'kv_strides'):
      if value not in (1, 2) or isinstance(value, bool):
        raise SpecFileError(f'{where}: key {key} must be 1 or 2, got '
                            f'{value!r}.')
    elif key in ('start_dw_kernel_size', 'middle_dw_kernel_size'):
      _int(where, key, value, 0)  # 0: this depthwise conv is absent.
    else:
      _int(where, key, value, 1)
    fields[key] = value
  block = specs.BlockSpec(kind, **fields)
  if (kind == 'uib' and block.strides > 1 and not (
      block.start_dw_kernel_size or block.middle_dw_kernel_size)):
    raise SpecFileError(f'{where}: a strided uib needs a depthwise conv '
                        '(start_dw_kernel_size or middle_dw_kernel_size > 0).')
  return block


def from_dict(data: Any, source: str) -> specs.ModelSpec:
  """The checked `ModelSpec` of a spec-file mapping.

  Args:
    data: The parsed file: model-level fields and `blocks`.
    source: Names the data in errors (the file path).

  Returns:
    The spec.

  Raises:
    SpecFileError: naming `source`, the row and the key at fault.
  """
  if not isinstance(data, dict):
    raise SpecFileError(f'{source}: expected a mapping of keys, got '
                        f'{type(data).__name__}.')
  unknown = sorted(set(data) - set(MODEL_FIELDS))
  if unknown:
    raise SpecFileError(f'{source}: unknown key(s) {", ".join(unknown)}; '
                        f'known: {", ".join(MODEL_FIELDS)}.')
  rows = data.get('blocks')
  if not isinstance(rows, list) or not rows:
    raise SpecFileError(f'{source}: key blocks must be a non-empty list of '
                        'rows.')
  blocks = tuple(_row(f'{source}: blocks row {i}', row)
                 for i, row in enumerate(rows))
  if blocks[0].block == 'mqa':
    raise SpecFileError(f'{source}: blocks row 0 cannot be mqa (it keeps the '
                        'channels of a previous block).')
  stride = 1
  for block in blocks:
    stride *= block.strides
  if stride != _BODY_STRIDE:
    raise SpecFileError(f'{source}: key blocks downsamples by {stride}; the '
                        f'strides must multiply to {_BODY_STRIDE}.')
  fields = {'blocks': blocks}
  if 'activation' in data:
    if not isinstance(data['activation'], str) or not data['activation']:
      raise SpecFileError(f'{source}: key activation must be a name, got '
                          f'{data["activation"]!r}.')
    fields['activation'] = data['activation']
  if data.get('layer_scale_init_value') is not None:
    value = data['layer_scale_init_value']
    if (isinstance(value, bool) or not isinstance(value, (int, float))
        or value <= 0):
      raise SpecFileError(f'{source}: key layer_scale_init_value must be null '
                          f'or a positive number, got {value!r}.')
    fields['layer_scale_init_value'] = float(value)
  if 'head_filters' in data:
    head = data['head_filters']
    if not isinstance(head, list) or len(head) != 2:
      raise SpecFileError(f'{source}: key head_filters must be a list of two '
                          f'integers, got {head!r}.')
    fields['head_filters'] = tuple(_int(source, 'head_filters', h, 1)
                                   for h in head)
  if 'resolution' in data:
    fields['resolution'] = _int(source, 'resolution', data['resolution'], 1)
  if data.get('antialias'):
    if data['antialias'] not in antialias.KINDS:
      raise SpecFileError(f'{source}: key antialias must be one of '
                          f'{antialias.KINDS}, got {data["antialias"]!r}.')
    fields['antialias'] = data['antialias']
  return specs.ModelSpec(**fields)


def to_dict(spec: specs.ModelSpec) -> dict[str, Any]:
  """The spec-file mapping of `spec` (rows list only their type's fields)."""
  rows = []
  for block in spec.blocks:
    row = {'block': block.block}
    row.update({k: getattr(block, k) for k in ROW_FIELDS[block.block]})
    rows.append(row)
  return {'activation': spec.activation,
          'layer_scale_init_value': spec.layer_scale_init_value,
          'head_filters': list(spec.head_filters),
          'resolution': spec.resolution,
          'antialias': spec.antialias,
          'blocks': rows}


def read(path: str) -> specs.ModelSpec:
  """Reads and checks a spec file; errors name `path`, the row and key."""
  if not os.path.isfile(path):
    raise SpecFileError(f'{path}: spec file not found.')
  with open(path) as f:
    try:
      data = yaml.safe_load(f)
    except yaml.YAMLError as e:
      raise SpecFileError(f'{path}: not valid YAML: {e}') from None
  return from_dict(data, path)


def write(spec: specs.ModelSpec, path: str, header: str = '') -> None:
  """Writes `spec` to `path`, one flow-style line per row.

  Args:
    spec: The spec.
    path: The YAML file to write (its folder is created).
    header: Comment lines put at the top (without the `#`).

  Raises:
    SpecFileError: if `spec` would not read back (e.g. a bad stride).
  """
  data = to_dict(spec)
  from_dict(data, path)  # Refuses to write a table that would not read.
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  rows = data.pop('blocks')
  text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
  text += 'blocks:\n' + ''.join(
      '- ' + yaml.safe_dump(row, sort_keys=False, default_flow_style=True,
                            width=1000) for row in rows)
  comments = ''.join(f'# {line}\n' for line in header.splitlines())
  with open(path, 'w') as f:
    f.write(comments + text)
