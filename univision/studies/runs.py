"""The resumable run log of a long study: one CSV row per finished run.

A study (or search) that trains for hours appends a run's row as soon as the
run finishes, so a killed process loses at most the run in progress, and a
restarted one reads the table and skips every run that already has a row.
`RunProgress` logs a progress line as each run finishes, counting the runs
logged before a restart as done.

  log = runs.RunLog('results/study/runs.csv',
                    {'setting': str, 'seed': int, 'ap': float},
                    key=('setting', 'seed'))
  if ('film', 0) not in log.done():
    log.append({'setting': 'film', 'seed': 0, 'ap': 0.21})
  log.rows()  # [{'setting': 'film', 'seed': 0, 'ap': 0.21}]

Cells are written as `csv` writes them (`str`; None as an empty cell) and
read back by each column's parser; a malformed file is reported with its
path, line and column.
"""
import csv
import dataclasses
import io
import os
from typing import Any, Callable, Mapping, Sequence, get_args

from absl import logging

from univision.core import progress

Parser = Callable[[str], Any]


def optional(parse: Parser) -> Parser:
  """`parse`, except that an empty cell reads as None."""

  def parse_optional(text: str) -> Any:
    return None if text == '' else parse(text)

  return parse_optional


def columns_of(record: type) -> dict[str, Parser]:
  """The columns of a dataclass: its fields in order, parsed by their type.

  Args:
    record: A dataclass whose fields are typed `str`, `int`, `float` or
      `X | None` (read as `optional(X)`).

  Returns:
    Column name -> parser, for `RunLog`.
  """
  columns = {}
  for field in dataclasses.fields(record):
    types = get_args(field.type)
    columns[field.name] = (optional(types[0]) if type(None) in types
                           else field.type)
  return columns


class RunLog:
  """A CSV file of finished runs with a fixed header.

  Attributes:
    path: The CSV file; it need not exist yet.
    columns: Column name -> parser of its cells, in file order.
    key: The columns that name a run (`done` returns their values).
  """

  def __init__(self, path: str, columns: Mapping[str, Parser],
               key: Sequence[str]):
    self.path = path
    self.columns = dict(columns)
    self.key = tuple(key)

  def rows(self) -> list[dict[str, Any]]:
    """Every logged row, parsed, in file order (none if no file yet).

    Raises:
      ValueError: naming the file, line and column of a malformed row, or
        the header if it is not `columns`.
    """
    if not os.path.exists(self.path):
      return []
    with open(self.path, newline='') as f:
      reader = csv.reader(f)
      header = next(reader, None)
      if header is None:
        return []
      if header != list(self.columns):
        raise ValueError(f'{self.path}: columns {header} on line 1 are not '
                         f'the expected {", ".join(self.columns)}.')
      return [self._parse(cells, reader.line_num) for cells in reader]

  def _parse(self, cells: list[str], line: int) -> dict[str, Any]:
    """One row of cells as a dict of parsed values."""
    if len(cells) != len(self.columns):
      raise ValueError(f'{self.path}, line {line}: {len(cells)} cells, '
                       f'expected {len(self.columns)} '
                       f'({", ".join(self.columns)}).')
    row = {}
    for (name, parse), text in zip(self.columns.items(), cells):
      try:
        row[name] = parse(text)
      except ValueError as e:
        raise ValueError(f'{self.path}, line {line}, column {name!r}: '
                         f'{e}') from e
    return row

  def done(self) -> set[tuple[Any, ...]]:
    """The keys (values of the `key` columns) of every logged run."""
    return {tuple(row[name] for name in self.key) for row in self.rows()}

  def append(self, row: Any) -> None:
    """Appends one run's row.

    The header is written first to a new or empty file. The row is written
    in one piece and the file closed before this returns, so a process
    killed afterwards loses nothing.

    Args:
      row: Column name -> value (a dict, or a dataclass whose fields are
        the columns); None is written as an empty cell.

    Raises:
      ValueError: if the row's names are not the columns.
    """
    if dataclasses.is_dataclass(row):
      row = dataclasses.asdict(row)
    if set(row) != set(self.columns):
      raise ValueError(f'{self.path}: a row with {sorted(row)} does not '
                       f'have the columns {", ".join(self.columns)}.')
    with open(self.path, 'a', newline='') as f:
      text = io.StringIO()
      writer = csv.writer(text)
      if f.tell() == 0:
        writer.writerow(self.columns)
      writer.writerow([row[name] for name in self.columns])
      f.write(text.getvalue())


class RunProgress:
  """Logs a progress line (count, rate, ETA) as each run finishes.

  Attributes:
    finished: Runs finished so far, those of earlier sessions included.
  """

  def __init__(self, total: int, finished: int = 0,
               label: str = 'study run'):
    """Counts `total` runs, `finished` of which a previous session did."""
    self.finished = finished
    self._progress = progress.Progress(max(1, total), label, 'runs/min')

  def finish(self, detail: str,
             metrics: Mapping[str, float] | None = None) -> None:
    """Counts one more finished run and logs its line.

    Args:
      detail: The run's name.
      metrics: Its headline results (e.g. {'AP': 0.41}).
    """
    self.finished += 1
    logging.info(self._progress.line(self.finished, detail, metrics))
