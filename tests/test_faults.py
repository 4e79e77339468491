"""The fault-injection suite at reduced size (``bench/faults.py`` runs it in full): real
``supportlah serve`` + two ``supportlah worker`` processes on Postgres and a Redis server of
the test's own, through worker SIGKILLs, a Redis kill and restart, terminated Postgres
connections, lost Twilio responses, a 429/5xx storm and a flood of malformed requests.
Every scenario must lose nothing, send nothing twice, keep each conversation in order,
never answer 5xx, and drain within 60 s of its last fault."""
from __future__ import annotations

import pytest

from bench.faults import DRAIN_LIMIT_SECONDS, REDUCED, SCENARIOS, run_suite

pytestmark = pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning")


async def test_no_loss_no_duplicate_no_5xx_under_every_fault(tmp_path):
    reports = await run_suite(REDUCED, SCENARIOS, keep_logs=tmp_path / "logs")
    assert [r.scenario for r in reports] == list(SCENARIOS)
    for report in reports:
        where = f"{report.scenario}: {report}"
        assert report.accepted > 0, where
        assert report.lost == 0, where
        assert report.answered >= report.accepted, where
        assert report.duplicated == 0, where
        assert report.out_of_order == 0, where
        assert report.http_5xx == 0, where
        assert report.malformed_stored == 0, where
        assert report.drain_after_last_fault_s is not None, where
        assert report.drain_after_last_fault_s <= DRAIN_LIMIT_SECONDS, where
        assert "workers_exited" not in report.notes, where
        assert "fake_errors" not in report.notes, where
    by_name = {r.scenario: r for r in reports}
    assert by_name["worker_sigkill"].notes["sigkills"] == REDUCED.kills
    assert by_name["lost_responses"].notes["responses_lost"] > 0, "the fault must really have happened"
    assert by_name["send_storm"].notes["sends_refused"] > 0
    assert by_name["postgres_terminate"].notes["connections_terminated"] > 0
    assert by_name["malformed"].malformed_sent >= 13 * REDUCED.malformed_each
