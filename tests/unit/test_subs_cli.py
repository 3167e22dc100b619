"""`hub syncs show` finds the program in a SyncId; the exit code says what the API answered."""

from __future__ import annotations

import pytest

from hub_stream.subs_cli import INVALID, REFUSED, UNAVAILABLE, CliError, _check, program_of_sync


def test_the_program_of_a_sync_id_may_hold_hyphens() -> None:
    assert program_of_sync("S:ACME-1b4e28ba-2fa1-11d2-883f-0016d3cca427") == "ACME"
    assert program_of_sync("S:my-prog.2-1b4e28ba-2fa1-11d2-883f-0016d3cca427") == "my-prog.2"
    with pytest.raises(CliError) as bad:
        program_of_sync("ACME-123")
    assert bad.value.code == INVALID


@pytest.mark.parametrize(("status", "code"), [(400, INVALID), (403, INVALID), (404, REFUSED), (422, REFUSED), (503, UNAVAILABLE)])
def test_a_problem_answer_becomes_its_exit_code(status: int, code: int) -> None:
    with pytest.raises(CliError) as refused:
        _check(status, {"error": "some_code", "message": "Why."})
    assert refused.value.code == code and "some_code: Why." in str(refused.value)
    assert _check(200, [1]) == [1]
