"""`core.machine`: the CPU named in reports."""
from univision.core import machine


def test_cpu_description_counts_and_names_the_cpus(tmp_path):
  cpuinfo = tmp_path / 'cpuinfo'
  cpuinfo.write_text('processor\t: 0\nmodel name\t: Test CPU @ 2GHz\n\n'
                     'processor\t: 1\nmodel name\t: Test CPU @ 2GHz\n')
  assert machine.cpu_description(str(cpuinfo)) == '2 x Test CPU @ 2GHz'


def test_cpu_description_without_the_file_is_unknown(tmp_path):
  assert machine.cpu_description(str(tmp_path / 'none')) == 'unknown'
  (tmp_path / 'empty').write_text('')
  assert machine.cpu_description(str(tmp_path / 'empty')) == 'unknown'
