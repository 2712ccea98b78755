"""Log formatting: readable text by default; one JSON object a line with MAGLEV_LOG_FORMAT=json."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

# LogRecord attributes that are not user-supplied `extra=` fields.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record; `extra=` fields become top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = (
                    value if isinstance(value, (int, float, bool, type(None))) else str(value)
                )
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


MAX_VALUE: int = 1000  # characters of one field; a hostile name must not flood the journal
_PLAIN = re.compile(r"[A-Za-z0-9_.:/@+,()\[\]<>%-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def quote_value(value: object) -> str:
    """A field value as one token: plain words as they are, anything else in double quotes with
    JSON escapes, so a name holding spaces, `=`, quotes or newlines cannot forge a field or a
    line."""
    text = str(value)
    if len(text) > MAX_VALUE:
        text = text[:MAX_VALUE] + "..."
    if _PLAIN.fullmatch(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def escape_message(text: str) -> str:
    """Control characters (newlines, escapes) in a message made visible, not obeyed."""
    return _CONTROL.sub(lambda m: json.dumps(m.group())[1:-1], text)


class TextFormatter(logging.Formatter):
    """`time level logger: msg key=value ...`, with `extra=` fields appended (quoted where
    needed, see quote_value). Tracebacks keep their lines."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_message(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = [
            f"{k}={quote_value(v)}"
            for k, v in record.__dict__.items()
            if k not in _STANDARD and not k.startswith("_")
        ]
        if not extras:
            return base
        head, nl, rest = base.partition("\n")  # fields go on the message line, before a traceback
        return f"{head} {' '.join(extras)}{nl}{rest}"
