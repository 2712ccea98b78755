"""Text from a server, made safe to print on a terminal.

A backend name, a description or an error that a hostile or compromised server (or a config
written by someone else) sends could carry terminal escape sequences: rewrite the title, move
the cursor over earlier lines, or hide text. maglevc passes every string it receives through
`clean_text` before anything prints it; its own colours are added afterwards.
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

# ESC-introduced sequences (CSI ... final byte, OSC ... BEL/ST, two-byte escapes), then any other
# C0/C1 control character or line/paragraph separator.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC, to BEL or ST
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC
    r"|\x1b[@-_]?"  # any other escape
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str, *, keep_newlines: bool = True) -> str:
    """`text` without escape sequences and control characters (tabs become spaces)."""
    if text.isprintable():
        return text
    text = _ESCAPES.sub("", text).replace("\t", " ")
    if not keep_newlines:
        text = text.replace("\n", " ")
    return _CONTROL.sub("", text)


def clean_message(msg: Message) -> Message:
    """Clean every string in a protobuf message, in place (nested and repeated ones too)."""
    for field, value in msg.ListFields():
        if field.type == FieldDescriptor.TYPE_STRING:
            if field.is_repeated:
                value[:] = [clean_text(v, keep_newlines=False) for v in value]
            else:
                setattr(msg, field.name, clean_text(value, keep_newlines=False))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type.GetOptions().map_entry:
                _clean_map(value)
            elif field.is_repeated:
                for item in value:
                    clean_message(item)
            else:
                clean_message(value)
    return msg


def _clean_map(mapping: Any) -> None:
    items = list(mapping.items())
    for key, value in items:
        clean_key = clean_text(key, keep_newlines=False) if isinstance(key, str) else key
        if isinstance(value, Message):
            clean_message(value)
            continue
        clean_value = clean_text(value, keep_newlines=False) if isinstance(value, str) else value
        if clean_key != key or clean_value != value:
            del mapping[key]
            mapping[clean_key] = clean_value
