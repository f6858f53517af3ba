"""Submit a two-round EMT active-learning loop (as in tests/active_learning/test_loop_real.py) to the daemon and print
its pk: the loop that `benchmarks/daemon_restart.sh` stops and restarts the daemon under."""

from aiida import orm
from aiida.engine import submit

from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.launch import TRAINING_TOOLS, get_or_create_code, get_or_create_codes
from aiida_mlip_trainer.oracles import ase_oracle
from aiida_mlip_trainer.physics.reference_data import copper_emt
from aiida_mlip_trainer.workflows.active_learning import ActiveLearningWorkChain

codes = get_or_create_codes([*TRAINING_TOOLS, "explore"])
oracle_code = get_or_create_code("mlip-trainer-ase-oracle", "mlip_trainer.ase_oracle")
initial = TrainingSetData(copper_emt(10, seed=21, rattle=0.05)).store()
test = TrainingSetData(copper_emt(6, seed=22, rattle=0.1)).store()
exploration = {
    "temperatures": [300, 1200],
    "steps": 60,
    "timestep": 2.0,
    "sample_interval": 5,
    "gamma_collect": 1.5,
    "gamma_halt": 25.0,
    "max_frames": 6,
}
builder = ActiveLearningWorkChain.get_builder_from_protocol(
    codes,
    initial,
    exploration,
    "fast",
    {
        "training": {"training": {"pace": {"parameters": {"fit": {"maxiter": 40}}}, "max_iterations": 1}},
        "selection": {"max_structures": 3},
    },
    oracle=ase_oracle(oracle_code, "emt"),
    test_set=test,
    explore_count=orm.Int(1),
    max_rounds=orm.Int(2),
)
builder.training.short_range_check = orm.Str("warning")
node = submit(builder)
print(node.pk)
