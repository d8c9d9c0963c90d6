"""What machine a measurement ran on, for reports that print absolute times."""


def cpu_description(cpuinfo: str = '/proc/cpuinfo') -> str:
  """'<logical CPUs> x <model name>' from `cpuinfo`, or 'unknown'."""
  try:
    with open(cpuinfo) as f:
      names = [l.split(':', 1)[1].strip() for l in f
               if l.startswith('model name')]
    return f'{len(names)} x {names[0]}'
  except (OSError, IndexError):
    return 'unknown'
