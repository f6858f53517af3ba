"""benchmarks/qe_loop.py without pw.x: its arguments are refused where the first fit would be (fewer distinct
environments than basis functions: the active set is singular, found only after every initial pw.x run; a 2-atom cell
holds one), and its cells are the 2-atom silicon it says."""

import pytest

from tests.active_learning.conftest import load_benchmark


@pytest.fixture(scope="module")
def qe_loop():
    return load_benchmark("qe_loop.py")


def test_too_few_cells_for_the_basis_are_refused_before_any_run(qe_loop, capsys):
    args = qe_loop.parse_arguments([])
    assert (args.cells, args.functions, args.rounds) == (14, 8, 2)  # 4 held out, 10 fitted cells
    assert qe_loop.parse_arguments(["--cells", "11"]).cells == 11  # 3 held out, 8 fitted
    assert qe_loop.parse_arguments(["--cells", "10"]).cells == 10  # 2.5 rounds to 2 held out, 8 fitted
    assert qe_loop.parse_arguments(["--cells", "9", "--functions", "7"]).cells == 9
    with pytest.raises(SystemExit):
        qe_loop.parse_arguments(["--cells", "9"])  # 2 held out, 7 fitted
    assert "fewer fitted cells than the 8 functions" in capsys.readouterr().err


def test_the_cells_are_strained_and_rattled_two_atom_silicon(qe_loop):
    cells = qe_loop.silicon_cells(5)
    assert [len(atoms) for atoms in cells] == [2] * 5
    assert {atoms.get_chemical_formula() for atoms in cells} == {"Si2"}
    volumes = [atoms.get_volume() for atoms in cells]
    assert len(set(volumes)) == 5 and all(abs(v / (5.43**3 / 4) - 1) < 0.07 for v in volumes)
