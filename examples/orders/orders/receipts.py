"""Receipts as e-mail messages, sent through an HTTP API client."""

import asyncio  # noqa: F401  (the real service batches sends)
import email.mime.multipart
import email.mime.text
import http.client  # noqa: F401
import urllib.request  # noqa: F401


def render(order, total):
    """The receipt e-mail as text."""
    msg = email.mime.multipart.MIMEMultipart()
    msg["Subject"] = f"Your order {order['id']}"
    msg.attach(email.mime.text.MIMEText(f"Total: {total}"))
    return msg.as_string()
