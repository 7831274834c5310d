"""Every block of the docs that a results tool writes quotes that tool's committed reference, exactly."""

from __future__ import annotations

import json
from types import ModuleType

import alert_results
import converge_timing
import diagnosis_report
import drill
import failover_results
import pytest
import test_timing
import tls_cost

TOOLS = [failover_results, converge_timing, test_timing, tls_cost, diagnosis_report, alert_results, drill]


@pytest.mark.parametrize("tool", TOOLS, ids=lambda tool: tool.__name__)
def test_the_docs_quote_the_committed_reference(tool: ModuleType) -> None:
    reference = json.loads(tool.REFERENCE.read_text())
    stale = [
        path.relative_to(tool.PROJECT_DIR).as_posix()
        for path, _, _, block in tool.generated(reference)
        if block not in path.read_text()
    ]
    source = tool.REFERENCE.relative_to(tool.PROJECT_DIR).as_posix()
    assert stale == [], f"{stale} differ from {source}: run `python tools/{tool.__name__}.py --adopt` after new runs"
