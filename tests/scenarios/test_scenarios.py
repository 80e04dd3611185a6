"""Every `tests/scenarios/*.toml` file, run on the simulated world and checked exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexmaker.sim.scenario import Scenario, run, scenario_files

HERE = Path(__file__).parent


def _params() -> list[object]:
    params: list[object] = []
    for path in scenario_files(HERE):
        scenario = Scenario.load(path)
        marks = []
        if scenario.xfail:
            marks.append(pytest.mark.xfail(reason=scenario.xfail, strict=True))
        params.append(pytest.param(scenario, id=path.stem, marks=marks))
    return params


@pytest.mark.parametrize("scenario", _params())
def test_scenario(scenario: Scenario) -> None:
    run(scenario)
