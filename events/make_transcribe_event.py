"""Write events/transcribe*.json: API Gateway REST proxy events for the transcribe function.

    python events/make_transcribe_event.py        (from the repository root; output is deterministic)

`transcribe.json` carries a real multipart body (base64, as API Gateway delivers a binary media
type) holding a 0.5 s, 16 kHz mono 16-bit WAV of a 440 Hz tone made with the stdlib `wave`
module; `transcribe_translation.json` is the same audio for `/v1/audio/translations`,
`transcribe_bad.json` a multipart body without the audio, `transcribe_upload.json` an upload
announcement, and `transcribe_job_run.json` the job runner's self-invocation event.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import math
import struct
import wave
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BOUNDARY = "----llmgatewayboundary7MA4YWxkTrZu0gW"
SAMPLE_RATE = 16_000


def tone_wav(seconds: float = 0.5, hz: float = 440.0) -> bytes:
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * i / SAMPLE_RATE)))
        for i in range(int(seconds * SAMPLE_RATE))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(frames)
    return out.getvalue()


def multipart(fields: dict[str, str], file: tuple[str, str, bytes] | None) -> bytes:
    out = b""
    for name, value in fields.items():
        out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").encode()
    if file is not None:
        filename, content_type, data = file
        out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
                f"Content-Type: {content_type}\r\n\r\n").encode() + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def rest_event(method: str, path: str, body: bytes | None, content_type: str | None, *,
               binary: bool, request_id: str, resource: str | None = None) -> dict[str, Any]:
    headers = {
        "Accept": "application/json",
        "Authorization": "Bearer local-dev-key",
        "Host": "abcd123456.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "OpenAI/Python 1.54.0",
        "X-Amzn-Trace-Id": "Root=1-6745a1b2-0123456789abcdef01234567",
        "X-Forwarded-For": "203.0.113.10",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    if content_type:
        headers["Content-Type"] = content_type
    resource = resource or path
    encoded = None if body is None else (base64.b64encode(body).decode() if binary else body.decode())
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "a1b2c4",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": "BQGojGqJoAMFrNx=",
            "requestTime": "26/Nov/2026:01:02:03 +0000",
            "path": f"/prod{path}",
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": "prod",
            "domainPrefix": "abcd123456",
            "requestTimeEpoch": 1795654923000,
            "requestId": request_id,
            "identity": {"sourceIp": "203.0.113.10", "userAgent": "OpenAI/Python 1.54.0", "accessKey": None,
                         "accountId": None, "caller": None, "user": None, "userArn": None, "apiKey": None},
            "domainName": "abcd123456.execute-api.us-east-1.amazonaws.com",
            "deploymentId": "d1e2f3",
            "apiId": "abcd123456",
        },
        "body": encoded,
        "isBase64Encoded": binary and body is not None,
    }


def events() -> dict[str, dict[str, Any]]:
    form_type = f"multipart/form-data; boundary={BOUNDARY}"
    audio = ("tone.wav", "audio/wav", tone_wav())
    fields = {"model": "auto", "response_format": "json", "language": "en"}
    transcribe = rest_event("POST", "/v1/audio/transcriptions", multipart(fields, audio), form_type, binary=True,
                            request_id="22222222-2222-4222-8222-222222222222")
    translation = copy.deepcopy(transcribe)
    for key in ("path", "resource"):
        translation[key] = "/v1/audio/translations"
    translation["requestContext"].update(resourcePath="/v1/audio/translations", path="/prod/v1/audio/translations",
                                         requestId="22222222-2222-4222-8222-222222222223")
    bad = rest_event("POST", "/v1/audio/transcriptions", multipart({"model": "auto"}, None), form_type, binary=True,
                     request_id="22222222-2222-4222-8222-222222222224")
    upload = rest_event("POST", "/v1/audio/uploads",
                        json.dumps({"filename": "talk.mp3", "bytes": 31_457_280, "content_type": "audio/mpeg"}).encode(),
                        "application/json", binary=False, request_id="22222222-2222-4222-8222-222222222225")
    return {
        "transcribe.json": transcribe,
        "transcribe_translation.json": translation,
        "transcribe_bad.json": bad,
        "transcribe_upload.json": upload,
        "transcribe_job_run.json": {"llm_gateway_job": "job-" + "A" * 32},
    }


def main() -> None:
    for name, event in events().items():
        (HERE / name).write_text(json.dumps(event, indent=2) + "\n", encoding="utf-8")
        print(f"wrote events/{name}")


if __name__ == "__main__":
    main()
