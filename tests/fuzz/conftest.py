"""Hypothesis profiles for the fuzz suite.

``ci`` (the default): derandomized, so a failure reproduces on every run and machine, with
few enough examples that the whole suite stays under a minute. ``LIVESINGER_FUZZ=long``
explores many more (random) inputs, for a night's run: ``LIVESINGER_FUZZ=long pytest
tests/fuzz``. Each example has a deadline (a hang fails it, not the run), set far above an
example's cost (under 0.5 s quiet) so that a machine busy with other work (measured: 7.5 s
for one UTAU bank example at load average 11 on 2 cores) does not fail it; pytest-timeout
ends any test that still runs away.
"""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

_COMMON = {"deadline": timedelta(seconds=30),
           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture]}
settings.register_profile("ci", max_examples=100, derandomize=True, database=None, **_COMMON)
settings.register_profile("long", max_examples=5000, **_COMMON)
settings.load_profile("long" if os.environ.get("LIVESINGER_FUZZ") == "long" else "ci")
