"""Every module of the package imports into one process.

Command-line modules define their absl flags only when run as `__main__`: two
modules defining the same flag at import time (e.g. `--output_dir`) raise
`DuplicateFlagError` as soon as both are imported, as pytest does when it
collects the whole suite.
"""
import importlib
import pkgutil

import univision


def test_all_modules_import_together():
  names = [m.name for m in pkgutil.walk_packages(univision.__path__,
                                                 'univision.')]
  assert len(names) > 50
  for name in names:
    importlib.import_module(name)
