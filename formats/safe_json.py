"""The one JSON reader for everything a user hands georecall: meta, safetensors headers, configs, spec files.

Bounded, strict and one error type: at most ``max_bytes``, UTF-8 only, nesting no deeper than
Python's recursion allows (a deeper document is refused, not crashed on), integers of at most 64
digits, no duplicate keys. (NaN and Infinity are read as Python does: a spec's unknown margin is
NaN; readers check finiteness where it matters.) Every refusal is an InputError naming ``what``.
"""

from __future__ import annotations

import json

from georecall.theory.checks import InputError

MAX_INTEGER_DIGITS = 64


def parse_json(document, what: str, max_bytes: int = 16 * 2**20):
    """The value of ``document`` (str or UTF-8 bytes), or InputError naming ``what``."""
    if isinstance(document, (bytes, bytearray)):
        if len(document) > max_bytes:
            raise InputError(f"{what} is {len(document):,} bytes (limit {max_bytes:,})")
        try:
            document = bytes(document).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{what} is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    elif len(document) > max_bytes:
        raise InputError(f"{what} is {len(document):,} characters (limit {max_bytes:,})")
    if "\x00" in document:  # JSON never holds a raw NUL; UTF-16 text is full of them
        raise InputError(f"{what} is not UTF-8 JSON: it holds NUL bytes (UTF-16 text, or binary)")
    try:
        return json.loads(document, parse_int=_integer(what), object_pairs_hook=_unique(what))
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} is not valid JSON ({exc})") from None
    except RecursionError:
        raise InputError(f"{what} is nested too deeply to be a georecall document") from None


def _integer(what: str):
    def parse(text: str) -> int:
        digits = len(text.lstrip("-"))
        if digits > MAX_INTEGER_DIGITS:
            raise InputError(f"{what} holds an integer of {digits:,} digits (limit {MAX_INTEGER_DIGITS})")
        return int(text)

    return parse


def _unique(what: str):
    def build(pairs: list) -> dict:
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            repeated = sorted({key for key in keys if keys.count(key) > 1})
            raise InputError(f"{what} repeats the key(s) {repeated[:3]}")
        return dict(pairs)

    return build
