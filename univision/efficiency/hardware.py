"""Hardware profiles of the roofline latency model, read from YAML.

A profile (`univision/efficiency/hardware_profiles/<name>.yaml`, or any
file) has a `name` and four quantities, each a mapping with a positive
`value` and either a `source` (URL or paper) or `assumed: true` with a `why`:

  peak_macs_per_s: multiply-accumulates per second (1 MAC = 2 ops, so a
    vendor's "4 TOPS" is 2e12 MACs/s).
  bandwidth_bytes_per_s: memory bandwidth, bytes per second.
  weight_bytes: bytes per weight element (1 int8, 2 fp16, 4 fp32).
  activation_bytes: bytes per activation element.

Write exponents with a sign (`2.0e+12`): YAML 1.1, which PyYAML reads, takes
`2.0e12` for a string, and the loader refuses it.
"""
import dataclasses
import os
from typing import Any

import yaml

HARDWARE_DIR = os.path.join(os.path.dirname(__file__), 'hardware_profiles')
QUANTITIES = ('peak_macs_per_s', 'bandwidth_bytes_per_s', 'weight_bytes',
              'activation_bytes')


class ProfileError(ValueError):
  """A hardware profile with a missing key or a bad value."""


@dataclasses.dataclass(frozen=True)
class HardwareProfile:
  """Peak compute, memory bandwidth and element widths of one device."""
  name: str
  peak_macs_per_s: float
  bandwidth_bytes_per_s: float
  weight_bytes: float
  activation_bytes: float

  @property
  def ridge_point(self) -> float:
    """RP = PeakMACs / PeakMemBW: the MACs per byte of a balanced layer."""
    return self.peak_macs_per_s / self.bandwidth_bytes_per_s


def available_profiles() -> list[str]:
  """Names of the bundled profiles, for `load_profile`."""
  return sorted(f[:-len('.yaml')] for f in os.listdir(HARDWARE_DIR)
                if f.endswith('.yaml'))


def _quantity(path: str, key: str, entry: Any) -> float:
  """The checked `value` of one quantity of the profile at `path`."""
  if not isinstance(entry, dict) or 'value' not in entry:
    raise ProfileError(f'{path}: key {key}.value is missing.')
  value = entry['value']
  if (isinstance(value, bool) or not isinstance(value, (int, float))
      or value <= 0):
    raise ProfileError(
        f'{path}: key {key}.value must be a positive number, got {value!r} '
        '(write exponents with a sign: 2.0e+12).')
  if entry.get('assumed') is True:
    if not entry.get('why'):
      raise ProfileError(f'{path}: key {key} is assumed but has no `why`.')
  elif not entry.get('source'):
    raise ProfileError(
        f'{path}: key {key} needs a `source` or `assumed: true` and `why`.')
  return float(value)


def load_profile(name_or_path: str) -> HardwareProfile:
  """Reads and checks a profile.

  Args:
    name_or_path: A bundled profile's name (see `available_profiles`) or the
      path of a YAML file.

  Returns:
    The profile.

  Raises:
    ProfileError: If the file is not found, a key is missing or a value is
      not a positive number; the message names the file and the key.
  """
  path = name_or_path
  if not os.path.exists(path):
    path = os.path.join(HARDWARE_DIR, f'{name_or_path}.yaml')
  if not os.path.exists(path):
    raise ProfileError(
        f'{name_or_path}: no such file and not a bundled profile '
        f'({", ".join(available_profiles())}).')
  with open(path) as f:
    data = yaml.safe_load(f)
  if not isinstance(data, dict):
    raise ProfileError(f'{path}: expected a mapping of keys.')
  if not data.get('name'):
    raise ProfileError(f'{path}: key name is missing.')
  for key in QUANTITIES:
    if key not in data:
      raise ProfileError(f'{path}: key {key} is missing.')
  return HardwareProfile(
      name=str(data['name']),
      **{key: _quantity(path, key, data[key]) for key in QUANTITIES})
