"""OpenAI Chat Completions request and response models: the gateway's one normalized format.

Every adapter translates to and from these, so they double as the gateway's internal types.
Requests are validated strictly at the edge (bad input never reaches a provider); responses are
built by our own code and so are declared loosely enough to carry provider extras.

Request fields are typed as JSON types, as OpenAI checks them: a boolean is a JSON boolean, an
integer a JSON integer (not a string, a boolean or a number written with a decimal point, 7.0
included), a number any JSON number (`temperature: 1` is fine). Pydantic's lax mode would read
`"stream": "yes"` as True and `"max_tokens": true` as 1; the `Strict*` types make those 400s.
Strings need nothing more: pydantic never makes a string of a JSON number or boolean.
"""

# No `from __future__ import annotations` here: pydantic would read every field's annotation
# from its string (one compile each), where the class body evaluates them as plain bytecode.
# For these models and the catalog's about 24 M instructions of a cold start (valgrind).

import time
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from llm_gateway.api.media import check_file_data, check_image_url
from llm_gateway.providers.jsonschema import SchemaInvalid, SchemaTooLarge, check_schema

MAX_MESSAGES = 2048
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_TOOLS = 128
MAX_STOP_SEQUENCES = 4


# defer_build: a model's own validator and serializer are built on its first direct use, not
# at import. Most models here are only ever validated inside their parent (the request, the
# completion), whose validator carries them, so their own are never built at all: a net saving
# at a cold start (import + first request) of about 5 ms, measured; the stream and /v1/models
# models are built only by containers that serve those.
class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=False, defer_build=True)


# --- content parts ------------------------------------------------------------------------------
class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ImageUrl(_Strict):
    url: str
    detail: Literal["auto", "low", "high"] | None = None

    @field_validator("url")
    @classmethod
    def _servable(cls, value: str) -> str:
        return check_image_url(value)


class ImagePart(_Strict):
    type: Literal["image_url"]
    image_url: ImageUrl


class InputAudio(_Strict):
    data: str
    format: Literal["wav", "mp3"]


class AudioPart(_Strict):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FileRef(_Strict):
    """A file sent inline. `file_id` (a file uploaded to one provider) cannot be served by the
    others, so it is refused with a pointer to `file_data` (see `api/media.py`)."""

    file_id: str | None = None
    file_data: str | None = None
    filename: str | None = Field(default=None, max_length=256)

    @field_validator("file_id")
    @classmethod
    def _no_provider_file(cls, value: str | None) -> None:
        if value is not None:
            raise ValueError("file_id is not supported: send the file inline as file_data (a base64 data URL)")
        return None

    @field_validator("file_data")
    @classmethod
    def _inline(cls, value: str | None) -> str | None:
        return None if value is None else check_file_data(value)

    @model_validator(mode="after")
    def _has_data(self) -> "FileRef":
        if self.file_data is None:
            raise ValueError("a file part needs file_data (a base64 data URL)")
        return self


class FilePart(_Strict):
    type: Literal["file"]
    file: FileRef


class RefusalPart(_Strict):
    type: Literal["refusal"]
    refusal: str


UserPart = Annotated[TextPart | ImagePart | AudioPart | FilePart, Field(discriminator="type")]
AssistantPart = Annotated[TextPart | RefusalPart, Field(discriminator="type")]


# --- tool calls ---------------------------------------------------------------------------------
class FunctionCall(_Strict):
    name: str
    arguments: str


class ToolCall(_Strict):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


# --- messages -----------------------------------------------------------------------------------
class SystemMessage(_Strict):
    role: Literal["system", "developer"]
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(_Strict):
    role: Literal["user"]
    content: str | list[UserPart]
    name: str | None = None


class AssistantMessage(_Strict):
    role: Literal["assistant"]
    content: str | list[AssistantPart] | None = None
    tool_calls: list[ToolCall] | None = None
    name: str | None = None
    refusal: str | None = None

    @model_validator(mode="after")
    def _has_content_or_calls(self) -> "AssistantMessage":
        if self.content is None and not self.tool_calls:
            raise ValueError("an assistant message needs content or tool_calls")
        return self


class ToolMessage(_Strict):
    role: Literal["tool"]
    content: str | list[TextPart]
    tool_call_id: str


Message = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")
]


# --- tools and output format ----------------------------------------------------------------------
def _bounded_schema(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """A schema the gateway can translate within its caps and read (`providers/jsonschema.py`), else a 400."""
    if schema is None:
        return None
    try:
        return check_schema(schema)
    except SchemaTooLarge as exc:
        raise PydanticCustomError("schema_too_large", "schema too large: {why}", {"why": str(exc)}) from None
    except SchemaInvalid as exc:
        raise PydanticCustomError("invalid_schema", "invalid JSON Schema: {why}", {"why": str(exc)}) from None


class FunctionDef(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: StrictBool | None = None

    _parameters_bounded = field_validator("parameters")(_bounded_schema)


class Tool(_Strict):
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(_Strict):
    name: str


class NamedToolChoice(_Strict):
    type: Literal["function"]
    function: NamedFunction


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class JsonSchemaFormat(_Strict):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: StrictBool | None = None

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    _schema_bounded = field_validator("schema_")(_bounded_schema)


class ResponseFormatText(_Strict):
    type: Literal["text"]


class ResponseFormatJsonObject(_Strict):
    type: Literal["json_object"]


class ResponseFormatJsonSchema(_Strict):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = Annotated[
    ResponseFormatText | ResponseFormatJsonObject | ResponseFormatJsonSchema, Field(discriminator="type")
]


class StreamOptions(_Strict):
    include_usage: StrictBool | None = None


# --- request parameters no route honours -------------------------------------------------------------
# OpenAI request parameters that no model the gateway routes to can honour (providers.md), each
# with why; README "Request parameters" is the same table. Sending one is a 400 naming it rather
# than a request answered as if it had not been sent. A value that asks for nothing beyond the
# default (null, `modalities: ["text"]`, `store: false`, `service_tier: "auto"`) is accepted.
REFUSED_PARAMETERS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "audio": ("audio output needs OpenAI's audio models, which the gateway does not route to", ()),
    "modalities": ("only text output is served; omit it or send [\"text\"]", (["text"],)),
    "prediction": ("Predicted Outputs exist only on some OpenAI and Mistral models, not confirmed per model", ()),
    "web_search_options": ("web search exists only on OpenAI's search models, which the gateway does not route to", ()),
    "functions": ("deprecated by OpenAI: send `tools`", ()),
    "function_call": ("deprecated by OpenAI: send `tool_choice`", ()),
    "store": ("the gateway stores no completions (and only OpenAI could)", (False,)),
    "metadata": ("it tags stored completions, and nothing is stored", ()),
    "service_tier": ("processing tiers are OpenAI's and Groq's own, with different values; omit it", ("auto",)),
    "verbosity": ("only OpenAI's GPT-5 models have it", ()),
    "safety_identifier": ("only OpenAI has it; send `user`, which the gateway passes where a provider has it", ()),
    "prompt_cache_key": ("only OpenAI has it", ()),
    "prompt_cache_retention": ("only OpenAI has it", ()),
}
TOKEN_ID = Annotated[str, Field(pattern=r"^[0-9]{1,9}$")]
BIAS = Annotated[StrictFloat, Field(ge=-100, le=100)]


# --- the request ---------------------------------------------------------------------------------
class ChatCompletionRequest(_Strict):
    """What a client may send to `POST /v1/chat/completions`.

    Every top-level field is accounted for, so nothing the caller asked for is silently dropped:
    a field the gateway does not know is a 400 naming it (`unknown_parameter`, as OpenAI answers
    an unrecognized argument), a parameter no routed model can honour is a 400 naming it
    (`unsupported_parameter`, `REFUSED_PARAMETERS`), and a parameter only some models honour
    (`logprobs`, `logit_bias`, `reasoning_effort`, `parallel_tool_calls: false`) is a hard need in
    selection (`selection/selector.py`). Nested objects still ignore unknown keys: SDKs echo
    response fields (`annotations`, `audio`) back inside assistant messages.
    """

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=256)
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    tools: list[Tool] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: StrictBool | None = None
    response_format: ResponseFormat | None = None
    temperature: StrictFloat | None = Field(default=None, ge=0, le=2)
    top_p: StrictFloat | None = Field(default=None, ge=0, le=1)
    max_tokens: StrictInt | None = Field(default=None, ge=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: StrictInt | None = None
    user: str | None = Field(default=None, max_length=256)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    n: StrictInt | None = Field(default=None, ge=1, le=1)
    presence_penalty: StrictFloat | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: StrictFloat | None = Field(default=None, ge=-2, le=2)
    # Honoured by some models only: a hard need in selection (see the class docstring).
    logprobs: StrictBool | None = None
    top_logprobs: StrictInt | None = Field(default=None, ge=0, le=20)
    logit_bias: dict[TOKEN_ID, BIAS] | None = Field(default=None, max_length=1024)
    reasoning_effort: Literal["low", "medium", "high"] | None = None  # the values every such model takes
    # Refused unless they ask for nothing (REFUSED_PARAMETERS).
    audio: Any = None
    modalities: Any = None
    prediction: Any = None
    web_search_options: Any = None
    functions: Any = None
    function_call: Any = None
    store: Any = None
    metadata: Any = None
    service_tier: Any = None
    verbosity: Any = None
    safety_identifier: Any = None
    prompt_cache_key: Any = None
    prompt_cache_retention: Any = None

    @field_validator(*REFUSED_PARAMETERS)
    @classmethod
    def _refused(cls, value: Any, info: ValidationInfo) -> None:
        why, neutral = REFUSED_PARAMETERS[str(info.field_name)]
        if value is None or any(value == ok and type(value) is type(ok) for ok in neutral):
            return None
        raise PydanticCustomError("unsupported_parameter", "{why}", {"why": why})

    @field_validator("top_logprobs")
    @classmethod
    def _top_needs_logprobs(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("logprobs") is not True:
            raise ValueError("top_logprobs requires logprobs: true")
        return value

    @field_validator("stream_options")
    @classmethod
    def _stream_options_need_stream(cls, value: StreamOptions | None, info: ValidationInfo) -> StreamOptions | None:
        """As OpenAI: options of a stream on a request that does not stream are a 400, not ignored
        (`include_usage` would otherwise be dropped without a word). An invalid `stream` has its own error."""
        if value is not None and "stream" in info.data and info.data["stream"] is not True:
            raise ValueError("stream_options is only allowed when stream is true")
        return value

    @field_validator("stop")
    @classmethod
    def _few_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences are allowed")
        return value

    @field_validator("tool_choice")
    @classmethod
    def _tool_choice_needs_tools(cls, value: ToolChoice | None, info: ValidationInfo) -> ToolChoice | None:
        """A rule between two fields, checked on `tool_choice` so the error names it (`tools` comes
        first; when it is invalid itself, its own error is the one to report)."""
        if "tools" not in info.data:
            return value
        tools = info.data["tools"]
        if value not in (None, "none", "auto") and not tools:
            raise ValueError("tool_choice requires tools")
        if isinstance(value, NamedToolChoice) and tools and value.function.name not in {t.function.name for t in tools}:
            raise ValueError(f"tool_choice names unknown function {value.function.name!r}")
        return value

    @property
    def output_limit(self) -> int | None:
        """The caller's cap on generated tokens, whichever of the two spellings it used."""
        return self.max_completion_tokens or self.max_tokens

    @property
    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def wants_usage_in_stream(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


# --- responses ---------------------------------------------------------------------------------------
class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)


class _KeepsRequiredNulls(_Loose):
    """A response object with fields OpenAI's schema requires even when null.

    Responses are dumped with `exclude_none` (providers' absent extras must not turn into nulls),
    but strict clients validate against OpenAI's OpenAPI document, which requires e.g.
    `choices[].logprobs`, `message.content` and `message.refusal` to be present as null. The fields
    named in `_required_nulls` are put back after the exclusion, whatever dumps the model.
    """

    _required_nulls: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _keep_required_nulls(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in self._required_nulls:
            if name not in data:
                data[name] = getattr(self, name)
        return data


class CompletionTokensDetails(_Loose):
    reasoning_tokens: int | None = None


class PromptTokensDetails(_Loose):
    cached_tokens: int | None = None


class Usage(_Loose):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None

    @classmethod
    def of(cls, prompt: int, completion: int, *, cached: int | None = None, reasoning: int | None = None) -> "Usage":
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=prompt + completion,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=cached) if cached is not None else None,
            completion_tokens_details=(
                CompletionTokensDetails(reasoning_tokens=reasoning) if reasoning is not None else None
            ),
        )


class ResponseMessage(_KeepsRequiredNulls):
    _required_nulls: ClassVar[tuple[str, ...]] = ("content", "refusal")

    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None


FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]


class Choice(_KeepsRequiredNulls):
    _required_nulls: ClassVar[tuple[str, ...]] = ("logprobs",)

    index: int = 0
    message: ResponseMessage
    finish_reason: FinishReason | None = "stop"
    logprobs: Any = None


class ChatCompletion(_Loose):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class ToolCallDeltaFunction(_Loose):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(_Loose):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: ToolCallDeltaFunction | None = None


class Delta(_Loose):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    refusal: str | None = None


class ChunkChoice(_KeepsRequiredNulls):
    _required_nulls: ClassVar[tuple[str, ...]] = ("finish_reason", "logprobs")  # finish_reason is required (null until the end)

    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None
    logprobs: Any = None


class ChatCompletionChunk(_Loose):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChunkChoice] = Field(default_factory=list)
    usage: Usage | None = None
    system_fingerprint: str | None = None


class ModelCard(_Loose):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str


class ModelList(_Loose):
    object: Literal["list"] = "list"
    data: list[ModelCard]
