"""`vault push` while the vault does not answer: waits of 1, 2, 4... s between attempts, then one
final line that claims nothing and says how to go on; a push that gets through is returned."""

from __future__ import annotations

from typing import Any

import pytest

from manifest.vault.errors import VaultUnreachable
from manifest.vault.push import push_with_retries


class Flaky:
    """A push that finds the endpoint down `down` times, then stores."""

    def __init__(self, down: int) -> None:
        self.down, self.calls = down, 0

    def __call__(self) -> Any:
        self.calls += 1
        if self.calls <= self.down:
            raise VaultUnreachable("vault endpoint http://203.0.113.20:8333 is unreachable while storing x")
        return "stored"


def test_waits_double_between_attempts_until_the_vault_answers() -> None:
    slept: list[float] = []
    retries: list[tuple[int, float]] = []
    run = Flaky(down=3)
    result = push_with_retries(4, run, lambda n, wait, _exc: retries.append((n, wait)), slept.append)
    assert result == "stored" and run.calls == 4
    assert slept == [1.0, 2.0, 4.0]
    assert retries == [(1, 1.0), (2, 2.0), (3, 4.0)]


def test_gives_up_with_one_line_that_claims_nothing() -> None:
    slept: list[float] = []
    run = Flaky(down=10)
    with pytest.raises(VaultUnreachable) as err:
        push_with_retries(3, run, lambda *_: None, slept.append)
    assert run.calls == 3 and slept == [1.0, 2.0]  # no wait after the last attempt
    message = err.value.message
    assert "\n" not in message
    assert "gave up after 3 attempts" in message and "nothing was claimed as stored" in message
    assert "continues where it stopped" in (err.value.hint or "")
