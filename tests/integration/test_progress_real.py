"""Progress while a real fit runs: `train status` (from another terminal) shows pacemaker's current iteration and
loss, read from the running job's log.txt, and it moves on while the job runs."""

import re
import time

import pytest
from aiida import orm
from aiida.engine import submit

from aiida_mlip_trainer.calculations import PaceTrainCalculation
from tests.test_cli import invoke

pytestmark = pytest.mark.real_pacemaker

NOW = re.compile(r"now at iteration (\d+)/(\d+), loss (\S+),")
# pacemaker logs every iteration (about 0.1 s each here on an idle core, after some 10 s of start-up): 100 give the
# status, polled every 0.5 s, seconds of iterations to see move; the test waits for the whole fit, so no more.
MAXITER = 100


def _shown(pk) -> tuple[str, list[int]]:
    output = invoke("train", "status", pk).output
    return output, [int(match[0]) for match in NOW.findall(output)]


def test_train_status_follows_a_running_fit(pacemaker_code, argon_sets, small_parameters, started_daemon_client):
    """A small real fit through the daemon (100 BFGS iterations of the small argon basis: seconds of fit):
    the status is polled until it shows an iteration, then until it shows a later one. No fixed sleep count: each
    wait ends when the status changes, or fails after a generous time."""
    small_parameters["fit"]["maxiter"] = MAXITER
    node = submit(
        PaceTrainCalculation,
        code=pacemaker_code,
        training_set=argon_sets["train"],
        test_set=argon_sets["test"],
        parameters=orm.Dict(small_parameters),
    )

    def wait_for(condition, what: str, timeout: float = 600.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            output, iterations = _shown(node.pk)
            if condition(iterations):
                return output, iterations
            assert not orm.load_node(node.pk).is_terminated, f"the fit ended before {what}:\n{output}"
            time.sleep(0.5)
        raise AssertionError(f"no {what} within {timeout} s:\n{output}")

    first_output, first = wait_for(lambda shown: bool(shown), "iteration shown")
    assert f"PaceTrainCalculation<{node.pk}> (running" in first_output or "(waiting" in first_output, first_output
    assert NOW.search(first_output)[2] == str(MAXITER)
    _, later = wait_for(lambda shown: bool(shown) and shown[0] > first[0], "later iteration shown")
    assert later[0] > first[0]

    deadline = time.monotonic() + 900
    while not orm.load_node(node.pk).is_terminated and time.monotonic() < deadline:
        time.sleep(1)
    done = orm.load_node(node.pk)
    assert done.is_finished_ok, f"[{done.exit_status}] {done.exit_message}"
    output = invoke("train", "status", node.pk).output
    assert "ended at iteration" in output and "now at" not in output, output
