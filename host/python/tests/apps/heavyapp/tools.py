"""Developer tooling a service drags in: doctest, pdb, pydoc, profilers, ast, mail clients."""

import array
import ast
import bisect
import cProfile
import ctypes
import dis
import doctest
import filecmp
import fnmatch
import ftplib
import glob
import imaplib
import ipaddress
import mailbox
import mmap
import netrc
import pdb
import plistlib
import poplib
import pstats
import py_compile
import pydoc
import secrets
import smtplib
import struct
import timeit
import tokenize
import trace

NETWORKS = [ipaddress.ip_network(f"10.{i}.0.0/16") for i in range(64)]
TREE = ast.parse("def f(x):\n    return [y * 2 for y in range(x) if y % 3]\n")
