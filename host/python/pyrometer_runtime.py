"""pyrometer's built-in Lambda runtime: a minimal Runtime API client, stdlib only.

``pyrometer lambda --runtime builtin`` runs ``python3 pyrometer_runtime.py``
in the emulated environment, so measuring a handler needs nothing installed.
It behaves as Lambda's Python runtime does, as far as a handler can tell:

* the handler comes from ``_HANDLER`` -- ``module.function``,
  ``dir/module.function`` or ``path/to/app.py:function`` (relative to
  ``LAMBDA_TASK_ROOT``) -- imported during init, with the task root first on
  ``sys.path``; a failure is posted to ``/runtime/init/error`` as
  ``Runtime.ImportModuleError``, ``Runtime.UserCodeSyntaxError``,
  ``Runtime.HandlerNotFound``, ``Runtime.MalformedHandlerName`` or the
  exception's own type, with the traceback, and the process exits;
* each event is JSON-decoded and passed with a context object
  (``aws_request_id``, ``get_remaining_time_in_millis()``, ...); the result is
  JSON-encoded and posted as the response; an exception is posted as
  ``{"errorMessage", "errorType", "requestId", "stackTrace"}`` and logged as
  ``[ERROR] Type: message`` with its traceback;
* ``_X_AMZN_TRACE_ID`` is set for each invocation.

It resolves whatever ``_HANDLER`` says: pyrometer's probe swaps it for its
own wrapper (keeping the user's in ``PYROMETER_HANDLER``), and this runtime
neither knows nor cares. One keep-alive HTTP connection carries every call.
"""

import http.client
import importlib
import importlib.util
import json
import os
import sys
import time
import traceback

API_VERSION = "2018-06-01"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"


class RuntimeApi:
    """The Runtime API over one keep-alive connection, reconnecting once on failure."""

    def __init__(self, address):
        host, _, port = address.rpartition(":")
        self._host = host.strip("[]") or "127.0.0.1"
        self._port = int(port)
        self._conn = None

    def _request(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            if self._conn is None:
                # No timeout: `next` is a long poll.
                self._conn = http.client.HTTPConnection(self._host, self._port)
            try:
                self._conn.request(method, path, body=body, headers=headers or {})
                response = self._conn.getresponse()
                return response, response.read()
            except (OSError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if attempt:
                    raise
        raise RuntimeError("unreachable")

    def next(self):
        response, body = self._request("GET", f"/{API_VERSION}/runtime/invocation/next")
        if response.status != 200:
            raise RuntimeError(f"invocation/next answered {response.status}: {body[:200]!r}")
        return response.headers, body

    def respond(self, request_id, payload):
        self._request(
            "POST",
            f"/{API_VERSION}/runtime/invocation/{request_id}/response",
            body=payload,
            headers={"Content-Type": "application/json"},
        )

    def error(self, request_id, error):
        self._post_error(f"/{API_VERSION}/runtime/invocation/{request_id}/error", error)

    def init_error(self, error):
        self._post_error(f"/{API_VERSION}/runtime/init/error", error)

    def _post_error(self, path, error):
        body = json.dumps(error).encode()
        self._request(
            "POST",
            path,
            body=body,
            headers={"Content-Type": "application/json", ERROR_TYPE_HEADER: error["errorType"]},
        )


class FaultError(Exception):
    """An init failure with Lambda's error type."""

    def __init__(self, error_type, message, stack_trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack_trace = stack_trace or []


def make_error(error_type, message, stack_trace, request_id=""):
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": stack_trace,
    }


def user_frames(tb):
    """The traceback's frames from the first one outside this file."""
    frames = traceback.extract_tb(tb)
    here = os.path.abspath(__file__)
    for i, frame in enumerate(frames):
        if os.path.abspath(frame.filename) != here:
            return traceback.format_list(frames[i:])
    return []


def split_handler(spec):
    """``dir/module.function`` or ``module:function`` or ``path/app.py:function`` -> (module or path, function)."""
    if ":" in spec:
        target, _, function = spec.rpartition(":")
    else:
        target, _, function = spec.rpartition(".")
    if not target or not function:
        raise FaultError(
            "Runtime.MalformedHandlerName",
            f"Bad handler '{spec}': not enough values to unpack (expected 2, got 1)",
        )
    return target, function


def import_target(target, task_root):
    """Imports ``target``: a dotted (or slashed) module name, or a ``.py`` file path."""
    if target.endswith(".py"):
        path = target if os.path.isabs(target) else os.path.join(task_root, target)
        name = os.path.splitext(os.path.basename(path))[0]
        if not os.path.isfile(path):
            raise FaultError("Runtime.ImportModuleError", f"Unable to import module '{name}': No such file {path}")
        directory = os.path.dirname(os.path.abspath(path))
        if directory not in sys.path:
            sys.path.insert(0, directory)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return name, module
    name = target.replace("/", ".")
    if name.split(".")[0] in sys.builtin_module_names:
        raise FaultError(
            "Runtime.BuiltInModuleConflict",
            f"Cannot use built-in module {name} as a handler module",
        )
    return name, importlib.import_module(name)


def load_handler(spec, task_root):
    target, function = split_handler(spec)
    try:
        name, module = import_target(target, task_root)
    except FaultError:
        raise
    except ImportError as e:
        raise FaultError("Runtime.ImportModuleError", f"Unable to import module '{target}': {e}") from e
    except SyntaxError as e:
        trace = [f'  File "{e.filename}" Line {e.lineno}\n    {e.text}']
        raise FaultError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{target}': {e}", trace) from e
    handler = getattr(module, function, None)
    if handler is None:
        raise FaultError("Runtime.HandlerNotFound", f"Handler '{function}' missing on module '{name}'")
    return handler


class LambdaContext:
    """The ``context`` argument, with the attributes Lambda's Python runtime gives it."""

    def __init__(self, request_id, deadline_ms, function_arn, client_context, identity):
        self.aws_request_id = request_id
        self.invoked_function_arn = function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.client_context = client_context
        self.identity = identity
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def __repr__(self):
        return f"LambdaContext([aws_request_id={self.aws_request_id},function_name={self.function_name}])"


def log_error(error):
    lines = [f"[ERROR] {error['errorType']}: {error['errorMessage']}"]
    if error["stackTrace"]:
        lines.append("Traceback (most recent call last):")
        lines.extend(frame.rstrip("\n") for frame in error["stackTrace"])
    print("\n".join(lines), file=sys.stderr, flush=True)


def decode_optional_json(value):
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def handle(api, handler, headers, body):
    request_id = headers.get("Lambda-Runtime-Aws-Request-Id", "")
    trace = headers.get("Lambda-Runtime-Trace-Id")
    if trace:
        os.environ["_X_AMZN_TRACE_ID"] = trace
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    context = LambdaContext(
        request_id,
        int(headers.get("Lambda-Runtime-Deadline-Ms") or 0),
        headers.get("Lambda-Runtime-Invoked-Function-Arn"),
        decode_optional_json(headers.get("Lambda-Runtime-Client-Context")),
        decode_optional_json(headers.get("Lambda-Runtime-Cognito-Identity")),
    )
    try:
        event = json.loads(body) if body else None
    except ValueError as e:
        error = make_error("Runtime.UnmarshalError", f"Unable to unmarshal input: {e}", [], request_id)
        log_error(error)
        api.error(request_id, error)
        return
    try:
        result = handler(event, context)
    except Exception as e:
        error = make_error(type(e).__name__, str(e), user_frames(e.__traceback__), request_id)
        log_error(error)
        api.error(request_id, error)
        return
    try:
        payload = json.dumps(result).encode()
    except (TypeError, ValueError) as e:
        error = make_error("Runtime.MarshalError", f"Unable to marshal response: {e}", [], request_id)
        log_error(error)
        api.error(request_id, error)
        return
    api.respond(request_id, payload)


def main():
    api = RuntimeApi(os.environ["AWS_LAMBDA_RUNTIME_API"])
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    if task_root not in sys.path:
        sys.path.insert(0, task_root)
    # Output is read line by line as `function` telemetry: do not hold it back.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass
    try:
        handler = load_handler(os.environ.get("_HANDLER", ""), task_root)
    except FaultError as e:
        error = make_error(e.error_type, e.message, e.stack_trace)
        log_error(error)
        api.init_error(error)
        sys.exit(1)
    except Exception as e:
        error = make_error(type(e).__name__, str(e), user_frames(e.__traceback__))
        log_error(error)
        api.init_error(error)
        sys.exit(1)
    while True:
        headers, body = api.next()
        handle(api, handler, headers, body)


if __name__ == "__main__":
    main()
