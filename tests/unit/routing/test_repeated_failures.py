"""`FailureMemory.repeated`: which failures of one request are its own doing (see
`tests/integration/test_caller_errors_stay_with_the_caller.py` for the gateway-level cases)."""

from __future__ import annotations

from llm_gateway.routing import failures as f
from llm_gateway.routing.failures import REPEAT_MEMORY_S, FailureMemory


def test_a_repeat_is_the_requests_doing_only_after_the_model_answered_since() -> None:
    memory = FailureMemory()
    assert not memory.repeated("groq", "m", "req-a", 100.0)  # a first failure counts
    assert not memory.repeated("groq", "m", "req-a", 101.0)  # the model answered no one since: counts
    memory.answered("groq", "m", 102.0, None)
    assert memory.repeated("groq", "m", "req-a", 103.0)  # answered others since: the request's doing
    assert memory.repeated("groq", "m", "req-a", 150.0)
    assert not memory.repeated("groq", "other-model", "req-a", 150.0)  # per model
    assert not memory.repeated("groq", "m", "req-b", 150.0)  # per request


def test_another_model_of_the_provider_answering_says_nothing_of_this_one() -> None:
    """A model down while its provider's other models answer (a canary's fixed prompt on it): each
    failure counts, so its circuit opens (found in review: answers were per provider)."""
    memory = FailureMemory()
    assert not memory.repeated("groq", "dead", "canary", 100.0)
    memory.answered("groq", "healthy", 101.0, None)
    memory.succeeded("groq", 101.0)
    assert not memory.repeated("groq", "dead", "canary", 102.0)


def test_a_repeat_long_after_counts_again() -> None:
    memory = FailureMemory()
    memory.repeated("groq", "m", "req-a", 100.0)
    memory.answered("groq", "m", 101.0, None)
    assert not memory.repeated("groq", "m", "req-a", 100.0 + REPEAT_MEMORY_S)


def test_a_request_answered_after_its_failure_is_not_held_to_it() -> None:
    """Its retry was answered: the failure was the model's after all, so a later failure of the
    same request (with others answered in between) counts again."""
    memory = FailureMemory()
    asked: list[int] = []

    def fingerprint() -> str:
        asked.append(1)
        return "req-a"

    memory.answered("groq", "m", 99.0, fingerprint)
    assert asked == []  # nothing on record for the model: the fingerprint is not even computed
    memory.repeated("groq", "m", "req-a", 100.0)
    memory.answered("groq", "m", 100.5, fingerprint)
    assert asked == [1]
    assert not memory.repeated("groq", "m", "req-a", 101.0)


def test_a_failure_long_forgotten_does_not_make_later_answers_fingerprint_their_requests() -> None:
    """Found in review: one failure of a request never sent again kept every later answer of the
    model fingerprinting its request (for a transcription, a hash of up to 25 MB of audio)."""
    memory = FailureMemory()
    memory.repeated("groq", "m", "once", 100.0)
    asked: list[int] = []
    for i in range(3):
        memory.answered("groq", "m", 100.0 + REPEAT_MEMORY_S + i, lambda: asked.append(1) or "other")
    assert asked == []


def test_the_memory_stays_bounded_under_a_flood_of_distinct_failing_requests(monkeypatch) -> None:
    monkeypatch.setattr(f, "_REPEATS_KEPT", 50)
    memory = FailureMemory()
    for i in range(500):
        memory.repeated("groq", "m", f"req-{i}", 100.0 + i * 0.001)
        assert sum(len(r) for _, r in memory._failed_requests.values()) <= 51

    memory = FailureMemory()  # entries older than the memory go first; recent ones stay
    memory.repeated("groq", "m", "old", 0.0)
    for i in range(49):
        memory.repeated("groq", "m", f"recent-{i}", REPEAT_MEMORY_S + 10 + i * 0.01)
    memory.repeated("groq", "m", "newest", REPEAT_MEMORY_S + 11)  # the 51st: a prune
    kept = memory._failed_requests[("groq", "m")][1]
    assert "old" not in kept and "newest" in kept and len(kept) == 50


def test_once_every_failed_request_was_answered_answers_stop_fingerprinting() -> None:
    """Found in review: an emptied record kept every answer of the model fingerprinting its
    request for ten minutes."""
    memory = FailureMemory()
    memory.repeated("groq", "m", "req-a", 100.0)
    memory.answered("groq", "m", 101.0, lambda: "req-a")
    asked: list[int] = []
    memory.answered("groq", "m", 102.0, lambda: asked.append(1) or "other")
    assert asked == []
