"""The API's JSON parser: DRF's, with a bound on nesting checked before anything is decoded.

Python's json module decodes nested arrays and objects recursively: a body of a thousand `[` raises
RecursionError, which is no ValueError, so DRF let it through as a 500 — for anyone, on the
unauthenticated token endpoint too. The depth is measured first, in one pass without recursion.
"""

import codecs
import re
from itertools import accumulate

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils import json

# Far above any body the API takes (the deepest, a list of price rows, is 2), far below the ~1,000 levels
# at which the decoder runs out of stack.
MAX_JSON_DEPTH = 64

# A JSON string (brackets inside it do not nest anything); the unrolled form keeps the regex linear.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth(text: str) -> int:
    """How deeply the arrays and objects of a JSON text nest (0 for a scalar). Malformed text gets a number
    too; the decoder refuses it afterwards."""
    brackets = _NOT_A_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


class DepthLimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        depth = json_depth(text)
        if depth > MAX_JSON_DEPTH:
            raise ParseError(f"JSON parse error - nested {depth} levels deep; the limit is {MAX_JSON_DEPTH}.")
        try:
            return json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
