"""Small helpers over OpenAI message content shared by the non-OpenAI adapters (Gemini, Cohere).

OpenAI content is a string or a list of typed parts; providers that want plain text or raw
media bytes all need the same two reductions, so they live here once.
"""

from __future__ import annotations

from typing import Any


def text_of(content: Any) -> str:
    """The text of a message's content: the string itself, or its text/refusal parts joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(getattr(part, "text", None) or getattr(part, "refusal", None) or "" for part in content)


def parse_data_url(url: str) -> tuple[str | None, str] | None:
    """`data:<mime>;base64,<data>` → (mime or None, base64 data); None when `url` is not a data URL."""
    if not url.startswith("data:"):
        return None
    header, _, data = url.partition(",")
    mime = header[5:].split(";", 1)[0]
    return (mime or None), data
