"""The sandbox's log: one line per request, and its other messages, as text or as JSON lines.

A request line says what the journal says in brief: method, path (its credential query parameters masked, as in the
journal: core/masking.py), status (`-` when a transport fault dropped the connection), duration as the client waited
for it, vendor, operation, world and the fault that decided the answer (`-` when none). Requests through the pipeline
(vendors, the control API) are logged by it, once their answer is known (`pipeline.journal_answered`); every other
request (pages, the proxy, refusals before the app) by `RequestLog`, the outermost WSGI layer. Request lines are at
INFO: `--log-level warning` keeps only the warnings (a Redis outage, a damaged world). No secret reaches a line:
headers and bodies are never logged, and a query's credential parameters are shown as fingerprints.

run.py configures it (`configure`); in-process (tests, `start_sandbox`) nothing is configured and the request lines,
at INFO, go nowhere unless the caller sets up logging.
"""
from __future__ import annotations

import logging
import re
import sys
import time

import orjson

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
log = logging.getLogger("sandbox")
requests = logging.getLogger("sandbox.requests")
PATH_LIMIT = 512  # characters of path and query in a line
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
FIELDS = ("method", "path", "status", "durationMs", "vendor", "operation", "world", "fault")


def configure(level: str = "info", fmt: str = "text", stream=None) -> None:
    """The sandbox's log on stderr (or `stream`): its own handler, so that the process's other logging is left
    alone, at `level`, every line in `fmt`."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    for existing in list(log.handlers):
        log.removeHandler(existing)
    log.addHandler(handler)
    log.setLevel(level.upper())
    log.propagate = False


def request_line(method: str, path: str, status: int | None, duration_ms: float, vendor: str | None = None,
                 operation: str | None = None, world: str | None = None, fault: str | None = None) -> None:
    if not requests.isEnabledFor(logging.INFO):
        return
    fields = {"method": method, "path": _bounded(path), "status": status, "durationMs": round(duration_ms, 1),
              "vendor": vendor, "operation": operation or None, "world": world, "fault": fault}
    # As requests.info(...) does, without its walk up the stack for the caller (a tenth of a line's cost), which
    # no format of ours shows and which would always be this function.
    requests.handle(requests.makeRecord(requests.name, logging.INFO, __file__, 0, "%s %s %s",
                                        (method, fields["path"], "-" if status is None else status), None,
                                        "request_line", {"request": fields}))


class TextFormatter(logging.Formatter):
    """`2026-05-01 10:00:00,123 INFO PATCH /returning-ai/v1/... 200 3.1ms vendor=returning-ai operation=...`"""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(message)s")
        self._second, self._stamp = None, ""

    def formatTime(self, record, datefmt=None) -> str:
        """As logging's, with the date and time made once a second (a request line is written on every request)."""
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", self.converter(record.created))
        return f"{self._stamp},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "request", None)
        if fields is None:
            return super().format(record)
        status = "-" if fields["status"] is None else fields["status"]
        return (f"{self.formatTime(record)} {record.levelname} {fields['method']} {_printable(fields['path'])} {status} "
                f"{fields['durationMs']}ms vendor={_shown(fields['vendor'])} operation={_shown(fields['operation'])} "
                f"world={_shown(fields['world'])} fault={_shown(fields['fault'])}")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message, and a request line's fields."""

    _second, _stamp = None, ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry = {"time": f"{self._stamp}.{int(record.msecs):03d}Z", "level": record.levelname.lower(),
                 "logger": record.name, "message": record.getMessage()}
        entry.update(getattr(record, "request", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class RequestLog:
    """The outermost WSGI layer: the line of a request the pipeline did not log (pages, /docs, the proxy, the
    Host and cross-site refusals), with the status the app answered."""

    def __init__(self, app, secrets):
        self.app = app
        self.secrets = secrets

    def __call__(self, environ, start_response):
        if not requests.isEnabledFor(logging.INFO):
            return self.app(environ, start_response)
        started = time.perf_counter()
        status = []

        def remember(line, headers, exc_info=None):
            status.append(line)
            return start_response(line, headers, exc_info)

        result = self.app(environ, remember)
        if not environ.get(LOGGED):
            query = environ.get("QUERY_STRING", "")
            path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
            code = int(status[-1].split(" ", 1)[0]) if status else None
            request_line(environ.get("REQUEST_METHOD", ""), self.secrets.query_of(path), code,
                         (time.perf_counter() - started) * 1000)
        return result


LOGGED = "sandbox.logged"  # set in a request's environ once its line is written


def _bounded(path: str) -> str:
    return path if len(path) <= PATH_LIMIT else path[:PATH_LIMIT] + "…"


def _shown(value) -> str:
    return _printable(str(value)) if value else "-"


def _printable(text: str) -> str:
    """No control character (a newline in a path) can start a forged line of its own."""
    if text.isascii() and text.isprintable():  # nearly every line, at a tenth of the substitution's cost
        return text
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
