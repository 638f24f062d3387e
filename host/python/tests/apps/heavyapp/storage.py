"""Storage: sqlite3, json, csv, pickle, shelve, decimal, zip/tar/gzip/bz2/lzma."""

import bz2
import csv
import decimal
import fractions
import gzip
import hashlib
import hmac
import io
import json
import lzma
import pickle
import shelve
import sqlite3
import statistics
import tarfile
import tempfile
import uuid
import zipfile
import zlib

from heavyapp.config import SETTINGS

_DB = sqlite3.connect(":memory:")
_DB.execute(f"create table {SETTINGS.table} (id text primary key, body text, price text)")


def put(item: dict) -> str:
    key = str(uuid.uuid4())
    price = decimal.Decimal(str(item.get("price", "0"))).quantize(decimal.Decimal("0.01"))
    _DB.execute(f"insert into {SETTINGS.table} values (?, ?, ?)", (key, json.dumps(item), str(price)))
    return key


def count() -> int:
    return _DB.execute(f"select count(*) from {SETTINGS.table}").fetchone()[0]


def digest(data: bytes) -> str:
    return hmac.new(b"k", zlib.compress(data), hashlib.sha256).hexdigest()


def archive(rows) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        text = io.StringIO()
        csv.writer(text).writerows(rows)
        zf.writestr("rows.csv", text.getvalue())
    return gzip.compress(buf.getvalue())
