"""The guard that stops a study whose code was edited while it ran."""
import pytest

from univision.studies import code_guard


def _tree(tmp_path):
  (tmp_path / 'pkg' / 'sub').mkdir(parents=True)
  (tmp_path / 'pkg' / 'a.py').write_text('x = 1\n')
  (tmp_path / 'pkg' / 'sub' / 'b.py').write_text('y = 2\n')
  (tmp_path / 'pkg' / 'notes.txt').write_text('not code\n')
  return tmp_path / 'pkg'


def test_unchanged_sources_pass(tmp_path):
  root = _tree(tmp_path)
  guard = code_guard.CodeGuard(str(root))
  (root / 'notes.txt').write_text('edited, but not code\n')
  guard.check('run 1')  # Does not raise.


@pytest.mark.parametrize('edit, named', [
    (lambda root: (root / 'sub' / 'b.py').write_text('y = 3\n'), 'sub/b.py'),
    (lambda root: (root / 'c.py').write_text('z = 0\n'), 'c.py'),
    (lambda root: (root / 'a.py').unlink(), 'a.py'),
])
def test_an_edited_added_or_removed_source_stops_the_study(tmp_path, edit,
                                                           named):
  root = _tree(tmp_path)
  guard = code_guard.CodeGuard(str(root))
  edit(root)
  with pytest.raises(RuntimeError, match=rf'before run 2: 1 source.*{named}'):
    guard.check('run 2')


def test_the_default_root_is_the_univision_package():
  paths = code_guard.fingerprint()
  assert 'studies/code_guard.py' in paths
  assert 'modeling/detectors/query_retinanet.py' in paths
