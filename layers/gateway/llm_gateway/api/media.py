"""Which media references a request may carry: inline data, or an https image a provider fetches.

A reference the provider must resolve itself (a Gemini `files/…` name, a `gs://` object, an
OpenAI `file_id`) belongs to one key of one provider: on any other model, or under the
gateway's own key, it fails, and Gemini answers such a reference with 403 PERMISSION_DENIED,
which is what a rejected key looks like. So the edge accepts only what every vision model can
serve: `data:` URLs (images and files) and public `https://` image URLs (OpenAI, Groq, Mistral,
Cohere and Gemini all fetch those). Anything else is the caller's error, found before any
provider is called.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MAX_URL_CHARS = 8192
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)(?:;[\w.+-]+=[\w.+-]+)*;base64,", re.ASCII)


def _data_mime(value: str) -> str | None:
    """The MIME type of a base64 `data:` URL, or None when `value` is not one."""
    match = _DATA_URL.match(value)
    return match.group("mime").lower() if match else None


def check_image_url(url: str) -> str:
    """A base64 `data:image/...` URL or a public `https://` URL; raises ValueError otherwise."""
    if url.startswith("data:"):
        mime = _data_mime(url)
        if mime is None or not mime.startswith("image/"):
            raise ValueError("a data URL must be 'data:image/<type>;base64,<data>'")
        return url
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"an image URL must be at most {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError("not a valid URL") from exc
    if parts.scheme != "https" or not parts.hostname or "@" in parts.netloc:
        raise ValueError("an image must be a 'data:image/...;base64,' URL or a public https:// URL")
    return url


def check_file_data(data: str) -> str:
    """A file sent inline as a base64 `data:<mime>;base64,` URL; raises ValueError otherwise."""
    if _data_mime(data) is None:
        raise ValueError("file_data must be a 'data:<mime type>;base64,<data>' URL")
    return data
