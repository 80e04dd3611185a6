"""Versioned msgspec codecs for every engine input and command (the event contract).

Wire shape (JSON): ``{"v": 1, "type": "<record name>", "data": {...}}``; a journal entry adds
``"seq"`` and ``"at"``. Decimals travel as strings (every digit kept), times as RFC 3339, an
`InstrumentId` as ``["venue", "pair"]``, enums by value. A record whose `type` or `v` this
build does not know is refused with `InvalidInputError` naming it, never guessed at.

The version is bumped when a record changes incompatibly; decoders of version N read N only
(the durable store migrates old journals when it lands). docs/adapters.md lists the records.
"""

from __future__ import annotations

import typing
from datetime import datetime
from typing import Any, Final

import msgspec

from indexmaker.core.errors import InvalidInputError
from indexmaker.core.events import ClientResponse, Command, EngineInput, SendToClient
from indexmaker.core.ids import ClientKey
from indexmaker.core.journal import JournalEntry

CODEC_VERSION: Final = 1

INPUT_TYPES: Final[tuple[type, ...]] = typing.get_args(EngineInput)
COMMAND_TYPES: Final[tuple[type, ...]] = typing.get_args(Command)
RESPONSE_TYPES: Final[tuple[type, ...]] = typing.get_args(ClientResponse)

_BY_NAME: Final[dict[str, type]] = {
    cls.__name__: cls for cls in (*INPUT_TYPES, *COMMAND_TYPES, *RESPONSE_TYPES)
}


class _Envelope(msgspec.Struct, frozen=True):
    v: int
    type: str
    data: msgspec.Raw
    seq: int | None = None
    at: datetime | None = None


class _SendToClientWire(msgspec.Struct, frozen=True):
    # A union of several dataclasses cannot be typed for msgspec: the message is enveloped.
    client: ClientKey
    message: _Envelope


_ENCODER = msgspec.json.Encoder(decimal_format="string")
_ENVELOPE_DECODER = msgspec.json.Decoder(_Envelope)
_DECODERS: dict[type, msgspec.json.Decoder[Any]] = {}


def _decoder(cls: type) -> msgspec.json.Decoder[Any]:
    decoder = _DECODERS.get(cls)
    if decoder is None:
        decoder = _DECODERS[cls] = msgspec.json.Decoder(cls)
    return decoder


def _data(record: object) -> object:
    if isinstance(record, SendToClient):
        return {"client": record.client, "message": _envelope(record.message)}
    return record


def _envelope(record: object, seq: int | None = None, at: datetime | None = None) -> _Envelope:
    name = type(record).__name__
    if _BY_NAME.get(name) is not type(record):
        raise InvalidInputError("type", f"{name} is not part of the event contract")
    return _Envelope(CODEC_VERSION, name, msgspec.Raw(_ENCODER.encode(_data(record))), seq, at)


def encode(record: EngineInput | Command | ClientResponse) -> bytes:
    """One input, command or client message as versioned JSON bytes."""
    return _ENCODER.encode(_envelope(record))


def encode_entry(entry: JournalEntry) -> bytes:
    """A journal entry: the input with its sequence number and journalled time."""
    return _ENCODER.encode(_envelope(entry.event, entry.seq, entry.at))


def _open(envelope: _Envelope) -> object:
    if envelope.v != CODEC_VERSION:
        raise InvalidInputError(
            "v", f"codec version {envelope.v}, this build reads {CODEC_VERSION}"
        )
    cls = _BY_NAME.get(envelope.type)
    if cls is None:
        raise InvalidInputError("type", f"unknown record {envelope.type!r}")
    try:
        if cls is SendToClient:
            wire = msgspec.json.decode(envelope.data, type=_SendToClientWire)
            message = _open(wire.message)
            if not isinstance(message, RESPONSE_TYPES):
                raise InvalidInputError("message", f"{type(message).__name__} is not a response")
            return SendToClient(wire.client, typing.cast(ClientResponse, message))
        return _decoder(cls).decode(envelope.data)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise InvalidInputError(envelope.type, str(error)) from None


def _read(data: bytes) -> _Envelope:
    try:
        return _ENVELOPE_DECODER.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise InvalidInputError("envelope", str(error)) from None


def decode(data: bytes) -> EngineInput | Command | ClientResponse:
    """Any record `encode` wrote. Raises InvalidInputError for anything else."""
    return typing.cast("EngineInput | Command | ClientResponse", _open(_read(data)))


def decode_input(data: bytes) -> EngineInput:
    record = decode(data)
    if not isinstance(record, INPUT_TYPES):
        raise InvalidInputError("type", f"{type(record).__name__} is not an engine input")
    return typing.cast(EngineInput, record)


def decode_entry(data: bytes) -> JournalEntry:
    """A journal entry written by `encode_entry`."""
    envelope = _read(data)
    if envelope.seq is None or envelope.at is None:
        raise InvalidInputError("entry", "a journal entry needs seq and at")
    event = _open(envelope)
    if not isinstance(event, INPUT_TYPES):
        raise InvalidInputError("type", f"{envelope.type} is not an engine input")
    return JournalEntry(envelope.seq, envelope.at, typing.cast(EngineInput, event))


__all__ = [
    "CODEC_VERSION",
    "COMMAND_TYPES",
    "INPUT_TYPES",
    "decode",
    "decode_entry",
    "decode_input",
    "encode",
    "encode_entry",
]
