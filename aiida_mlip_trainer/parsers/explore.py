"""Parser of `ExplorationCalculation`: the candidate pool, γ along each trajectory, and the summary."""

from __future__ import annotations

import io

import numpy as np
from aiida import orm
from aiida.engine import ExitCode

from ..calculations.explore import ExplorationCalculation as Calc
from ..data.training_set import TrainingSetData, TrainingSetError
from ..tools.structures import StructureFileError, read_structures
from .script import ScriptParser

__all__ = ("ExplorationParser",)

_RECORD_KEYS = ("structure", "temperature", "pressure", "ensemble", "seed", "steps", "gamma", "temperature_K")
_ARRAYS = (("gamma", "gamma"), ("temperature", "temperature_K"), ("energy_per_atom", "energy_per_atom"))


class ExplorationParser(ScriptParser):
    """Checks in order: killed or no exit status (ERROR_KILLED); non-zero status (ERROR_SCRIPT_FAILED, with the
    exception line); no ``exploration.json`` (ERROR_OUTPUT_MISSING); output that is not what the script writes, or
    candidates that do not match it (ERROR_OUTPUT_INVALID).
    """

    def parse(self, **kwargs):
        result = self.read_json_output(Calc)
        if isinstance(result, ExitCode):
            return result
        try:
            records = result["trajectories"]
            gamma = _gamma_arrays(records, result["settings"]["sample_interval"])
            candidates = self._frames(Calc.CANDIDATES_FILENAME, result["num_candidates"], records, "kept")
            resume = self._frames(Calc.RESUME_FILENAME, result["num_resume"], records, "resume_step")
        except (ValueError, KeyError, TypeError, IndexError, StructureFileError, TrainingSetError) as exc:
            return self.exit_codes.ERROR_OUTPUT_INVALID.format(detail=f"{type(exc).__name__}: {exc}")

        halted = sum(bool(record["halted"]) for record in records)
        summary = {
            "num_trajectories": len(records),
            "num_halted": halted,
            "fraction_halted": halted / len(records),
            "num_candidates": int(result["num_candidates"]),
            "num_resume": int(result["num_resume"]),
            "max_gamma": float(result["max_gamma"]),
            "settings": result["settings"],
            "trajectories": [
                {key: value for key, value in record.items() if key not in ("steps", *dict(_ARRAYS).values())}
                for record in records
            ],
        }
        self.out("summary", orm.Dict(summary))
        self.out("gamma", gamma)
        if candidates is not None:
            self.out("candidates", candidates)
        if resume is not None:
            self.out("resume", resume)
        if halted:
            self.logger.warning(f"{halted} of {len(records)} trajectories halted at gamma_halt")
        return None

    def _frames(self, filename: str, expected: int, records: list[dict], key: str) -> TrainingSetData | None:
        """The frames of ``filename``: as many as the trajectories' ``kept`` steps, or their ``resume_step``s."""
        if key == "kept":
            count = sum(len(record["kept"]) for record in records)
        else:
            count = sum(record.get(key) is not None for record in records)
        if count != expected:
            raise ValueError(f"the trajectories have {count} frames for {filename}, the output says {expected}")
        if expected == 0:
            return None
        content = self._read(filename, mode="rb")
        if content is None:
            raise ValueError(f"{expected} frames were kept but {filename} is missing")
        frames = read_structures(io.BytesIO(content))
        if len(frames) != expected:
            raise ValueError(f"{filename} holds {len(frames)} frames, expected {expected}")
        return TrainingSetData(frames, labelled=False)


def _gamma_arrays(records: list[dict], interval: int) -> orm.ArrayData:
    """γ, temperature and energy per trajectory on the common grid of sampled steps, NaN where a trajectory stopped."""
    if not records:
        raise ValueError("no trajectory in the output")
    length = max(len(record["steps"]) for record in records)
    steps = np.arange(length) * interval
    arrays = {name: np.full((len(records), length), np.nan) for name, _ in _ARRAYS}
    for row, record in enumerate(records):
        missing = [key for key in _RECORD_KEYS if key not in record]
        if missing:
            raise KeyError(f"trajectory {row} has no {missing}")
        count = len(record["steps"])
        if not np.array_equal(record["steps"], steps[:count]):
            raise ValueError(f"trajectory {row}: sampled steps are not every {interval} steps from 0")
        for name, key in _ARRAYS:
            values = np.asarray(record[key], dtype=float)
            if values.shape != (count,) or not np.isfinite(values).all():
                raise ValueError(f"trajectory {row}: {key} is not {count} finite numbers")
            arrays[name][row, :count] = values
    array = orm.ArrayData()
    for name, values in arrays.items():
        array.set_array(name, values)
    array.set_array("steps", steps)
    array.set_array("max_gamma", np.array([float(record["max_gamma"]) for record in records]))
    halt = [record["halt_step"] if record["halted"] else -1 for record in records]
    array.set_array("halt_step", np.array(halt, dtype=np.int64))
    return array
