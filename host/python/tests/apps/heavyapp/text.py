"""Text processing: re, difflib, textwrap, string, unicodedata, locale, gettext."""

import difflib
import gettext
import locale
import pprint
import re
import shlex
import string
import textwrap
import unicodedata

PATTERNS = [
    re.compile(r"(?P<year>\d{4})-(?P<month>\d\d)-(?P<day>\d\d)T(?P<h>\d\d):(?P<m>\d\d)"),
    re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    re.compile(r"\b(?:GET|POST|PUT|DELETE|PATCH)\s+(/[\w/.-]*)\s+HTTP/1\.[01]"),
    re.compile(r"(?i)\b(error|warn(?:ing)?|fatal|critical)\b"),
    re.compile(r"^\s*(#|//|--).*$", re.MULTILINE),
]
NORMAL = {c: unicodedata.name(c, "?") for c in string.ascii_letters}


def diff(a: str, b: str) -> str:
    return "\n".join(difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm=""))


def wrap(text: str) -> str:
    return textwrap.fill(text, width=60)
