"""The package layers of docs/architecture.md hold: no module imports upward.

Read from the source (`ast`), so an import inside a function counts too;
only the `main` of a program may import `univision.registry_imports`.
"""
import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, 'univision')

# Which univision packages each package may import (besides itself), as
# docs/architecture.md draws them, bottom to top.
ALLOWED = {
    'core': set(),
    'configs': set(),
    'modeling': set(),
    'data': {'core'},
    'dataloaders': {'core', 'data'},
    'quantization': {'core', 'modeling'},
    'evaluation': {'core'},
    'tasks': {'configs', 'core', 'data', 'dataloaders', 'evaluation',
              'modeling', 'quantization'},
    'serving': {'configs', 'core', 'modeling', 'quantization'},
    'interop': {'modeling', 'serving'},
    'studies': {'configs', 'core', 'data', 'evaluation', 'modeling', 'tasks'},
    'efficiency': {'core', 'modeling', 'studies'},
}
# Single modules a package may use from a package not in its set.
ALLOWED_MODULES = {
    # The NAS trial log is a run log like the studies'.
    'efficiency': {'univision.studies.runs'},
}
REGISTRY = 'univision.registry_imports'


def _modules():
  for folder, _, files in os.walk(PACKAGE):
    for name in sorted(files):
      if name.endswith('.py'):
        path = os.path.join(folder, name)
        yield os.path.relpath(path, REPO)[:-3].replace(os.sep, '.'), path


def _imports(path: str):
  """(imported module, enclosing function name or None) of a source file."""
  with open(path) as f:
    tree = ast.parse(f.read())
  found = []

  def visit(node, function):
    for child in ast.iter_child_nodes(node):
      inner = (child.name if isinstance(
          child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function)
      if isinstance(child, ast.Import):
        found.extend((a.name, function) for a in child.names)
      elif isinstance(child, ast.ImportFrom) and child.module:
        found.extend((f'{child.module}.{a.name}', function)
                     for a in child.names)
      visit(child, inner)

  visit(tree, None)
  return [(name, function) for name, function in found
          if name.startswith('univision.')]


MODULES = sorted(_modules())


@pytest.mark.parametrize('module, path', MODULES, ids=[m for m, _ in MODULES])
def test_no_module_imports_upward(module, path):
  parts = module.split('.')
  if len(parts) < 3:  # univision/__init__.py, registry_imports.py.
    return
  package = parts[1]
  assert package in ALLOWED, f'{package}/ is missing from ALLOWED.'
  for name, function in _imports(path):
    if name.startswith(REGISTRY):
      assert function == 'main', (
          f'{module} imports {REGISTRY} outside a program\'s main().')
      continue
    target = name.split('.')[1]
    if target == package or target not in ALLOWED:  # e.g. `import univision`.
      continue
    assert (target in ALLOWED[package] or any(
        name.startswith(allowed)
        for allowed in ALLOWED_MODULES.get(package, ()))), (
            f'{module} imports {name}: {package}/ may import only '
            f'{sorted(ALLOWED[package])} (docs/architecture.md).')


def test_every_package_is_drawn():
  packages = {m.split('.')[1] for m, _ in MODULES if m.count('.') >= 2}
  assert packages == set(ALLOWED)
