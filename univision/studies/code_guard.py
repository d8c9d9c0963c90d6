"""Stops a long study whose code was edited while it ran.

A study imports univision once, but TensorFlow's autograph reads a
function's source again each time it traces one (each run's training step,
each evaluation). An edit to the checkout while a study runs therefore
mixes old and new code in one process: a crash at best (a changed
signature seen by old callers), a silently different run at worst.
`CodeGuard` fingerprints the package's Python sources when the study
starts; `check` (called before each run and each evaluation) raises,
naming the changed files, so the study stops between two steps of work and
a restart resumes it on one version of the code. Long studies are best run
from a checkout nobody edits (e.g. a `git worktree`).
"""
import hashlib
import os

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fingerprint(root: str = _PACKAGE) -> dict[str, str]:
  """{path relative to `root`: sha256} of every `.py` file under `root`."""
  digests = {}
  for folder, _, files in os.walk(root):
    for name in files:
      if name.endswith('.py'):
        path = os.path.join(folder, name)
        with open(path, 'rb') as f:
          digests[os.path.relpath(path, root)] = hashlib.sha256(
              f.read()).hexdigest()
  return digests


class CodeGuard:
  """The sources as a study found them, to check before each step of work."""

  def __init__(self, root: str = _PACKAGE):
    self.root = root
    self._start = fingerprint(root)

  def check(self, before: str) -> None:
    """Raises if a source file changed, appeared or went since the start.

    Args:
      before: The work about to start, for the message (e.g. 'joint seed 1').

    Raises:
      RuntimeError: naming the changed files.
    """
    now = fingerprint(self.root)
    changed = sorted(path for path in {*now, *self._start}
                     if now.get(path) != self._start.get(path))
    if changed:
      shown = ', '.join(changed[:5]) + (', ...' if len(changed) > 5 else '')
      raise RuntimeError(
          f'Stopped before {before}: {len(changed)} source file(s) under '
          f'{self.root} changed since the study started ({shown}). '
          'Restart the study: it resumes where it stopped, on one version '
          'of the code. Run long studies from a checkout nobody edits (e.g. '
          'a git worktree).')
