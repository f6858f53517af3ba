"""AiiDA caching: an identical training request reuses the finished fit; failed fits never serve as sources."""

import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida.manage.caching import enable_caching

from aiida_mlip_trainer.calculations import PaceTrainCalculation
from aiida_mlip_trainer.workflows import TrainingWorkChain

TRAIN = "aiida.calculations:mlip_trainer.pace_train"


def _original(node):
    """The fit a cached node was copied from, through any chain of copies: a copy (an earlier test's fit cached
    from another) may itself serve as the source. The end of the chain really ran: it has no cache source."""
    seen = {node.uuid}
    while (source := node.base.caching.get_cache_source()) is not None:
        assert source not in seen, "a cycle of cache sources"
        seen.add(source)
        node = orm.load_node(source)
    return node


def run_mock(code, sets, parameters, mode):
    return run_get_node(
        PaceTrainCalculation,
        code=code,
        training_set=sets["train"],
        test_set=sets["test"],
        parameters=parameters,
        metadata={"options": {"environment_variables": {"MOCK_PACEMAKER_MODE": mode}}},
    )


def test_identical_training_is_reused(mock_pacemaker_code, argon_sets, small_parameters):
    with enable_caching(identifier=TRAIN):
        first_results, first = run_mock(mock_pacemaker_code, argon_sets, small_parameters, "success")
        second_results, second = run_mock(mock_pacemaker_code, argon_sets, small_parameters, "success")
        small_parameters["fit"]["maxiter"] = 99
        _, different = run_mock(mock_pacemaker_code, argon_sets, small_parameters, "success")
    assert first.is_finished_ok and second.is_finished_ok
    # the second request was not run but copied from an identical finished fit (the first, or an earlier test's)
    assert second.base.caching.get_cache_source() is not None, (
        "the second fit ran instead of being taken from the cache"
    )
    original = _original(second)
    # the chain of copies ends at a fit that really ran and finished well, with the same hash
    assert original.process_type == TRAIN and original.is_finished_ok
    assert original.base.caching.get_hash() == first.base.caching.get_hash() == second.base.caching.get_hash()
    assert second_results["potential"].content_hash == first_results["potential"].content_hash
    assert different.base.caching.get_cache_source() is None  # other settings: trained anew


@pytest.mark.parametrize("mode", ["nan", "walltime", "crash"])
def test_failed_training_is_never_a_cache_source(mock_pacemaker_code, argon_sets, small_parameters, mode):
    with enable_caching(identifier=TRAIN):
        _, first = run_mock(mock_pacemaker_code, argon_sets, small_parameters, mode)
        _, second = run_mock(mock_pacemaker_code, argon_sets, small_parameters, mode)
    assert first.is_failed and second.is_failed
    assert not first.base.caching.is_valid_cache
    assert second.base.caching.get_cache_source() is None


def test_identical_work_chain_does_not_retrain(mock_pacemaker_code, pace_tool_codes, argon_sets):
    codes = {"pacemaker": mock_pacemaker_code, **pace_tool_codes}
    parameters = {"potential": {"bonds": {"ALL": {"rcut": 7.0}}}}

    def builder():
        result = TrainingWorkChain.get_builder_from_protocol(
            codes, argon_sets["train"], "fast", {"training": {"pace": {"parameters": parameters}}}
        )
        result.test_set = argon_sets["test"]
        result.short_range_check = orm.Str("warning")  # a direct fit, not repulsive below its data: not the point
        return result

    with enable_caching():
        first_results, first = run_get_node(builder())
        second_results, second = run_get_node(builder())
    assert first.is_finished_ok and second.is_finished_ok

    def fits(workchain):
        return [
            n
            for n in workchain.called_descendants
            if isinstance(n, orm.CalcJobNode) and n.process_type == "aiida.calculations:mlip_trainer.pace_train"
        ]

    (first_fit,), (second_fit,) = fits(first), fits(second)
    # the second fit was not run but copied from an identical finished one (this or an earlier test's)
    assert second_fit.base.caching.get_cache_source() is not None, "the second fit ran instead of being cached"
    original = _original(second_fit)
    assert original.process_type == TRAIN and original.is_finished_ok
    assert original.base.caching.get_hash() == first_fit.base.caching.get_hash()
    assert second_results["potential"].content_hash == first_results["potential"].content_hash
