"""`llm-gateway loadgen`: fire requests at a running gateway, N at a time, and report.

    llm-gateway loadgen --concurrency 50 --requests 500 [--url http://127.0.0.1:3000]
    llm-gateway loadgen --requests 240 --concurrency 240 --ramp 4 --mix chat=5,stream=2,transcription=1

This is how the README's local-server figures were measured, and what the load tests drive.
It records each request's start and end, so besides throughput and latency percentiles it
reports the largest number of requests that were really open at the same moment (a client
that says "50 concurrent" but waits on a pool of 4 would show 4 here).

`--mix` interleaves three kinds of request in the given proportions: `chat` (an `auto` chat
completion), `stream` (the same with `stream: true`, read to its end: it counts as answered only
if it ends with `[DONE]` and carries no error event) and `transcription` (`POST
/v1/audio/transcriptions`, multipart, with an audio file from `--audio`, by default the
repository's fixtures in `tests/fixtures/audio/`). A request ends when its whole body has arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sandbox.cli_args import gateway_url
from sandbox.request_input import RequestInputError, read_request

DEFAULT_BODY: dict[str, Any] = {"model": "auto", "messages": [{"role": "user", "content": "Say hello"}]}
KINDS = ("chat", "stream", "transcription")
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "audio"
# Formats every free speech-to-text model takes (Gemini's inline audio has no m4a/webm/opus).
DEFAULT_AUDIO = ("tone.mp3", "tone.wav", "tone.flac", "tone.ogg")
AUDIO_TYPES = {".mp3": "audio/mpeg", ".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg",
               ".m4a": "audio/mp4", ".mp4": "audio/mp4", ".webm": "audio/webm", ".opus": "audio/ogg"}


@dataclass(frozen=True)
class Result:
    status: int  # 0 = no HTTP answer (connection error or timeout)
    started: float
    ended: float
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # also set on a 200 whose body was not a whole answer (a cut stream)
    kind: str = "chat"
    detail: str | None = None  # what a broken answer ended with (its last events), to tell why

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None


@dataclass
class Report:
    results: list[Result]
    elapsed_s: float

    @property
    def statuses(self) -> Counter[int]:
        return Counter(r.status for r in self.results)

    @property
    def failures(self) -> list[Result]:
        """What a user would have seen go wrong: any status but 200, no answer, or a broken stream."""
        return [r for r in self.results if not r.ok]

    @property
    def kinds(self) -> Counter[str]:
        return Counter(r.kind for r in self.results)

    @property
    def throughput(self) -> float:
        return len(self.results) / self.elapsed_s if self.elapsed_s else 0.0

    def latency_ms(self, quantile: float, kind: str | None = None) -> float:
        ordered = sorted((r.ended - r.started) * 1000 for r in self.results if kind is None or r.kind == kind)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] if ordered else 0.0

    @property
    def max_in_flight(self) -> int:
        """The most requests open at one instant, from their start and end times."""
        events = sorted([(r.started, 1) for r in self.results] + [(r.ended, -1) for r in self.results],
                        key=lambda e: (e[0], e[1]))  # at a tie an end frees its place first
        peak = current = 0
        for _, step in events:
            current += step
            peak = max(peak, current)
        return peak

    def summary(self) -> str:
        statuses = ", ".join(f"{status or 'no answer'}: {n}" for status, n in sorted(self.statuses.items()))
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(self.kinds.items()))
        errors = Counter(r.error for r in self.results if r.error)
        broken = f"; errors {dict(errors)}" if errors else ""
        return (f"{len(self.results)} requests ({kinds}) in {self.elapsed_s:.1f} s = {self.throughput:.1f} req/s; "
                f"latency p50 {self.latency_ms(0.5):.0f} ms, p95 {self.latency_ms(0.95):.0f} ms, "
                f"p99 {self.latency_ms(0.99):.0f} ms; at most {self.max_in_flight} in flight at once; "
                f"status {statuses}{broken}")

    def as_json(self) -> dict[str, Any]:
        return {"requests": len(self.results), "elapsed_s": round(self.elapsed_s, 3),
                "throughput_rps": round(self.throughput, 1), "p50_ms": round(self.latency_ms(0.5)),
                "p95_ms": round(self.latency_ms(0.95)), "p99_ms": round(self.latency_ms(0.99)),
                "max_in_flight": self.max_in_flight, "kinds": dict(self.kinds),
                "statuses": {str(k): v for k, v in self.statuses.items()},
                "failures": len(self.failures),
                "errors": dict(Counter(r.error for r in self.results if r.error))}


def parse_mix(text: str) -> dict[str, int]:
    """`chat=5,stream=2,transcription=1` → {"chat": 5, ...} (weights, whole numbers)."""
    mix: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, _, weight = part.partition("=")
        if kind not in KINDS:
            raise ValueError(f"unknown request kind {kind!r} (one of {', '.join(KINDS)})")
        mix[kind] = int(weight or 1)
    if not mix or any(w < 0 for w in mix.values()) or not sum(mix.values()):
        raise ValueError(f"a mix needs a positive weight: {text!r}")
    return mix


def plan_kinds(requests: int, mix: dict[str, int] | None) -> list[str]:
    """Request i's kind, interleaved so that every stretch of the run has the mix's proportions
    (request i is the kind whose share is furthest behind after i requests)."""
    if not mix:
        return ["chat"] * requests
    total = sum(mix.values())
    sent: Counter[str] = Counter()
    kinds = []
    for i in range(requests):
        kind = max(mix, key=lambda k: (mix[k] * (i + 1) / total - sent[k], mix[k]))
        sent[kind] += 1
        kinds.append(kind)
    return kinds


def _headers(response: httpx.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items()}


async def _chat(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> Result:
    started = time.monotonic()
    buffered = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    try:
        response = await client.post(f"{url}/v1/chat/completions", json=buffered)
    except httpx.HTTPError as exc:
        return Result(0, started, time.monotonic(), error=type(exc).__name__)
    detail = response.text[:300] if response.status_code != 200 else None
    return Result(response.status_code, started, time.monotonic(), _headers(response), detail=detail)


async def _stream(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> Result:
    """A streamed chat completion read to its end; an answer that does not end in `[DONE]`, or
    carries an error event, is a failure even though its status was 200."""
    started = time.monotonic()
    error = None
    try:
        async with client.stream("POST", f"{url}/v1/chat/completions", json={**body, "stream": True}) as response:
            status, headers = response.status_code, _headers(response)
            events = [line[6:] async for line in response.aiter_lines() if line.startswith("data: ")]
    except httpx.HTTPError as exc:
        return Result(0, started, time.monotonic(), error=type(exc).__name__, kind="stream")
    if status == 200:
        if not events or events[-1] != "[DONE]":
            error = "stream_incomplete"
        elif any('"error"' in e and "error" in json.loads(e) for e in events[:-1]):
            error = "stream_error_event"
        elif not any('"choices"' in e for e in events):
            error = "stream_without_choices"
    detail = (" | ".join(events[-3:])[-600:] or f"no events; headers {headers}") if error else None
    return Result(status, started, time.monotonic(), headers, error, kind="stream", detail=detail)


async def _transcription(client: httpx.AsyncClient, url: str, audio: Path, data: bytes) -> Result:
    started = time.monotonic()
    files = {"file": (audio.name, data, AUDIO_TYPES.get(audio.suffix, "application/octet-stream"))}
    try:
        response = await client.post(f"{url}/v1/audio/transcriptions", files=files, data={"model": "auto"})
    except httpx.HTTPError as exc:
        return Result(0, started, time.monotonic(), error=type(exc).__name__, kind="transcription")
    error = None
    if response.status_code == 200 and "transcript" not in response.text.lower():
        error = "transcription_without_text"
    detail = f"{audio.name}: {response.text[:300]}" if error or response.status_code != 200 else None
    return Result(response.status_code, started, time.monotonic(), _headers(response), error, kind="transcription",
                  detail=detail)


async def run(url: str, key: str, requests: int, concurrency: int,
              body: dict[str, Any] | list[dict[str, Any]] | None = None, timeout_s: float = 60.0,
              ramp_s: float = 0.0, mix: dict[str, int] | None = None,
              audio: list[tuple[Path, bytes]] | None = None) -> Report:
    """Send `requests` requests, at most `concurrency` open at once, each on its own connection.

    With `ramp_s`, request i is not sent before i * ramp_s / requests seconds: arrivals at a steady
    rate, as traffic ramps up, instead of one instant in which every request hits the same state.
    `mix` (kind → weight, see `parse_mix`) interleaves chat, streamed chat and transcriptions;
    without it every request is a chat completion. `body` may be a list of chat bodies, used in
    turn by chat and streamed requests (a streamed one gets `stream: true` added); `audio`, the
    clips (name and bytes) transcriptions send in turn, by default the repository's fixtures."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    base = url.rstrip("/")
    bodies = body if isinstance(body, list) else [body or DEFAULT_BODY]
    next_body = itertools.cycle(bodies)
    kinds = plan_kinds(requests, mix)
    clips = (audio or [(p, p.read_bytes()) for p in (FIXTURES / name for name in DEFAULT_AUDIO)]) \
        if "transcription" in kinds else []
    next_clip = itertools.cycle(clips)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, limits=limits,
                                 timeout=timeout_s, trust_env=False) as client:

        async def gated(i: int, kind: str) -> Result:
            if ramp_s:
                await asyncio.sleep(i * ramp_s / requests)
            async with gate:
                if kind == "transcription":
                    return await _transcription(client, base, *next(next_clip))
                if kind == "stream":
                    return await _stream(client, base, next(next_body))
                return await _chat(client, base, next(next_body))

        began = time.monotonic()
        results = await asyncio.gather(*(gated(i, kind) for i, kind in enumerate(kinds)))
        return Report(list(results), time.monotonic() - began)


def _at_least_one(text: str) -> int:
    """A count of requests: a whole number of at least 1 (a semaphore of 0 waits forever)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {text!r}")
    return value


def _seconds(*, zero: bool) -> Callable[[str], float]:
    """A finite number of seconds, above 0 (or at least 0 when `zero`): nan and inf mean nothing here."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(f"expected a finite number of seconds {'>= 0' if zero else '> 0'}, "
                                             f"got {text!r}")
        return value
    return parse


def _read_bodies(parser: argparse.ArgumentParser, paths: list[str]) -> list[dict[str, Any]]:
    """Each --body file as a chat request (`request_input.read_request`: a body or an API Gateway
    event holding one), or the parser's one-line error naming the file."""
    bodies = []
    for path in paths:
        try:
            bodies.append(read_request(path))
        except RequestInputError as exc:
            parser.error(f"--body {path}: {exc}")
    return bodies


def _read_audio(parser: argparse.ArgumentParser, paths: list[str]) -> list[tuple[Path, bytes]]:
    """Each --audio file with its bytes, or the parser's one-line error naming the file."""
    clips = []
    for path in map(Path, paths):
        if not path.exists():
            parser.error(f"--audio {path}: no such file")
        try:
            clips.append((path, path.read_bytes()))
        except OSError as exc:  # a directory, no permission, a read error
            parser.error(f"--audio {path}: cannot read it ({exc.strerror or exc})")
    return clips


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="llm-gateway loadgen", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000", type=gateway_url,
                        help="gateway base URL (without /v1)")
    parser.add_argument("--key", default="local-dev-key", help="a gateway API key")
    parser.add_argument("--requests", type=_at_least_one, default=500)
    parser.add_argument("--concurrency", type=_at_least_one, default=50)
    parser.add_argument("--ramp", type=_seconds(zero=True), default=0.0, metavar="SECONDS",
                        help="spread the requests' starts over this many seconds (default: all at once)")
    parser.add_argument("--body", nargs="+", metavar="FILE",
                        help="chat request body JSON files, used in turn (default: a short 'auto' chat)")
    parser.add_argument("--mix", metavar="KIND=W,...",
                        help="interleave chat, stream and transcription requests in these proportions "
                             "(e.g. chat=5,stream=2,transcription=1; default: chat only)")
    parser.add_argument("--audio", nargs="+", metavar="FILE",
                        help=f"audio files for transcriptions, used in turn (default: {', '.join(DEFAULT_AUDIO)} "
                             "from tests/fixtures/audio)")
    parser.add_argument("--timeout", type=_seconds(zero=False), default=60.0, metavar="SECONDS", help="per request")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    body = _read_bodies(parser, args.body) if args.body else None
    try:
        mix = parse_mix(args.mix) if args.mix else None
    except ValueError as exc:
        parser.error(str(exc))
    audio = _read_audio(parser, args.audio) if args.audio else None
    report = asyncio.run(run(args.url, args.key, args.requests, args.concurrency, body, timeout_s=args.timeout,
                             ramp_s=args.ramp, mix=mix, audio=audio))
    print(json.dumps(report.as_json()) if args.json else report.summary())
    return 0 if not report.failures else 1
