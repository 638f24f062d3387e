"""Persistence in an in-memory SQLite database."""

import csv
import io
import sqlite3
import zipfile  # noqa: F401  (exports are zipped in the real service)

DB = sqlite3.connect(":memory:")
DB.execute("create table orders (id text primary key, total text)")


def save(order_id, total):
    """Stores one order."""
    DB.execute("insert or replace into orders values (?, ?)", (order_id, str(total)))


def export_csv():
    """All orders as CSV."""
    out = io.StringIO()
    csv.writer(out).writerows(DB.execute("select * from orders"))
    return out.getvalue()
