"""Web: http, urllib, email, mimetypes, html, xml, base64, ssl, socket."""

import base64
import email.message
import email.mime.multipart
import email.mime.text
import email.parser
import email.policy
import email.utils
import html
import html.parser
import http.client
import http.cookies
import http.server
import mimetypes
import socketserver
import ssl
import urllib.error
import urllib.parse
import urllib.request
import wsgiref.simple_server
import wsgiref.util
import xml.dom.minidom
import xml.etree.ElementTree as ET
import xml.sax.saxutils
import xmlrpc.client

ROUTES = {}


def route(path):
    def register(fn):
        ROUTES[path] = fn
        return fn

    return register


def render(tag: str, text: str) -> str:
    el = ET.Element(tag)
    el.text = html.escape(text)
    return ET.tostring(el, encoding="unicode")


def message(body: str) -> str:
    msg = email.mime.text.MIMEText(body)
    msg["Date"] = email.utils.formatdate()
    return base64.b64encode(msg.as_bytes()).decode()
