"""PropertyWorkChain and PropertyCalculation with real jobs: EMT as both the potential and the oracle (every error
about zero), a real GRACE-FS fit's properties, and bad input refused before any job."""

import pathlib
import re

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_mlip_trainer.calculations import PropertyCalculation
from aiida_mlip_trainer.oracles import ase_oracle
from aiida_mlip_trainer.workflows import PropertyWorkChain
from tests.conftest import recorded_grace_potential

HOWTO = pathlib.Path(__file__).resolve().parents[2] / "docs" / "howto" / "properties.md"


def _copper():
    return orm.StructureData(ase=bulk("Cu", "fcc", a=3.65, cubic=True))


def _jobs() -> int:
    return orm.QueryBuilder().append(orm.CalcJobNode, filters={"process_type": {"like": "%properties"}}).count()


def test_emt_against_emt_every_error_is_zero_with_provenance():
    """The how-to's first Python block as written (its assert: every relative error below 1e-9), then the rest."""
    (block, *_) = re.findall(r"^```python\n(.*?)^```", HOWTO.read_text(), re.MULTILINE | re.DOTALL)
    namespace: dict = {}
    exec(compile(block, str(HOWTO), "exec"), namespace)  # noqa: S102 - the page's own code
    results, node = namespace["results"], namespace["node"]
    assert node.is_finished_ok, node.exit_message
    table = results["table"].get_dict()
    assert table["missing"] == []
    names = {row["property"] for row in table["rows"]}
    assert {"a0", "B0", "E0", "C11", "C12", "C44", "vacancy", "surface(111)"} <= names
    assert sum(name.startswith("nu(") for name in names) == 6
    for row in table["rows"]:
        # single points of the same calculator on the same geometries, through JSON and the labelling adapter
        assert abs(row["reference_error"]) < 1e-9, row
        # the oracle's own relaxation is the same computation: the same numbers
        assert abs(row["reference_relaxed_error"]) < 1e-9, row
        assert (row["reference_relative_error"] is None) == (row["property"] == "E0"), row
    potential = table["potential"]
    assert potential["eos"]["a0"] == pytest.approx(3.59, abs=0.01)  # EMT copper's lattice, not the start's 3.65
    assert 0 < potential["vacancy"]["relaxed"] < potential["vacancy"]["unrelaxed"]
    assert table["md"]["stopped"] is None and table["md"]["steps"] == 200
    assert results["plot"].get_content(mode="rb")[:4] == b"\x89PNG"

    # provenance: the table is made by a calcfunction from the property job's outputs and the oracle's labels
    creator = results["table"].base.links.get_incoming(link_type=LinkType.CREATE).one().node
    assert creator.process_label == "property_table"
    incoming = {entry.link_label: entry.node for entry in creator.base.links.get_incoming().all()}
    assert incoming["labelled"].pk == results["labelled"].pk
    assert incoming["geometries"].pk == results["geometries"].pk
    assert incoming["relaxed"].creator.process_type.endswith("mlip_trainer.properties")
    assert results["labelled"].num_structures == results["geometries"].num_structures == 16


def test_a_real_grace_fs_fit_gets_its_properties(properties_code):
    """The recorded gracemaker fit (GRACE-FS on 4-atom EMT copper; its reference energies added back): the same
    properties from a fitted potential, without an oracle (no reference: the table says so)."""
    potential = recorded_grace_potential().store()
    parameters = {"eos": {"points": 5}, "elastic": {"points": 2}, "phonons": {}}
    results, node = run_get_node(
        PropertyWorkChain,
        job={"code": properties_code, "structure": _copper(), "parameters": parameters, "potential": potential},
    )
    assert node.is_finished_ok, node.exit_message
    table = results["table"].get_dict()
    eos = table["potential"]["eos"]
    # a potential fitted to EMT copper near its lattice: copper-like numbers, not EMT's exactly
    assert 3.4 < eos["a0"] < 3.8 and 50 < eos["B0"] < 300
    energy = potential.get_calculator()
    atoms = bulk("Cu", "fcc", a=eos["a0"], cubic=True)
    atoms.calc = energy
    assert eos["E0"] == pytest.approx(atoms.get_potential_energy() / 4, abs=2e-3)  # total energies, E0 added back
    assert all("reference" not in row for row in table["rows"])
    assert np.isfinite([row["potential"] for row in table["rows"]]).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"calculator": None}, "give either a potential or an ASE calculator"),
        ({"calculator": "no_such_calculator"}, "unknown ASE calculator"),
        ({"parameters": {"eos": {"points": 2}}}, "eos.points must be an integer"),
        ({"parameters": {"vacancy": {"supercell": [7, 7, 7]}}}, "more than 1000"),
        ({"structure": "molecule"}, "periodic in all three directions"),
        ({"potential": "argon"}, "give either a potential or an ASE calculator"),
    ],
)
def test_bad_input_is_refused_before_any_job(properties_code, change, message):
    inputs = {"code": properties_code, "structure": _copper(), "parameters": {"eos": {}}, "calculator": "emt"}
    for key, value in change.items():
        if value is None:
            del inputs[key]
        elif key == "structure":
            slab = bulk("Cu", "fcc", a=3.6, cubic=True)
            slab.pbc = (True, True, False)
            inputs[key] = orm.StructureData(ase=slab)
        elif key == "potential":
            inputs[key] = recorded_grace_potential().store()
        else:
            inputs[key] = value
    before = _jobs()
    with pytest.raises(ValueError, match=message):
        run_get_node(PropertyCalculation, **inputs)
    assert _jobs() == before


def test_a_potential_without_the_crystal_s_element_and_a_dft_oracle_relaxation_are_refused(
    properties_code, ase_oracle_code
):
    argon = orm.StructureData(ase=bulk("Ar", "fcc", a=5.3, cubic=True))
    with pytest.raises(ValueError, match=r"contains \['Ar'\], which the potential"):
        run_get_node(
            PropertyCalculation,
            code=properties_code,
            structure=argon,
            parameters={"eos": {}},
            potential=recorded_grace_potential().store(),
        )
    oracle = ase_oracle(ase_oracle_code, "emt")
    oracle["process"] = "aiida.calculations:cp2k"
    with pytest.raises(ValueError, match="labeling:|oracle_relaxation"):
        run_get_node(
            PropertyWorkChain,
            job={"code": properties_code, "structure": _copper(), "parameters": {"eos": {}}, "calculator": "emt"},
            labeling={"oracle": oracle},
            oracle_relaxation=True,
        )
