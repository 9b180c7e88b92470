"""structlog set-up: JSON lines in production, readable console output in development.

Every line carries what the request context bound (request id, correlation id, actor, cluster;
see shared/http.py and shared/observability.py). In JSON mode the standard library's loggers
(uvicorn's, SQLAlchemy's warnings) go through the same renderer, so a container's output is one
JSON object per line whoever wrote it.
"""
from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog

from shared.tracing import add_trace_ids

# One list for the whole process, changed in place: loggers cached on first use keep a
# reference to it, so a later configure_logging (or a test's capture_logs) reaches them too.
_processors: list[structlog.types.Processor] = []
_configured: tuple[str, bool, bool] | None = None
_stdlib_handler: logging.Handler | None = None


class _Stderr:
    """Writes each line to whatever sys.stderr is when the line is written (test runners swap it)."""

    def msg(self, message: str) -> None:
        stream = sys.stderr  # one write of the whole line (print writes the newline apart), then out
        stream.write(message + "\n")
        stream.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def _stderr_logger(*_: Any) -> _Stderr:
    return _Stderr()


def _orjson_dumps(value: Any, **kwargs: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, **kwargs).decode()


def _json_renderer() -> structlog.processors.JSONRenderer:
    # orjson: one access line per request goes through this; the standard library's json takes ~6x longer.
    return structlog.processors.JSONRenderer(serializer=_orjson_dumps)


def configure_logging(*, level: str = "INFO", json: bool = False, trace_ids: bool = False) -> None:
    """Configure structlog (and, for JSON, the standard library's logging); the same call twice is a no-op.

    `trace_ids` adds the current OpenTelemetry trace and span ids to every line.
    """
    global _configured
    wanted = (level.upper(), json, trace_ids)
    if wanted == _configured:
        return
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if trace_ids:
        shared.append(add_trace_ids)
    renderer = _json_renderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    _processors[:] = [*shared, structlog.processors.format_exc_info, renderer]
    structlog.configure(
        processors=_processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=True,
    )
    _route_standard_logging(level.upper(), shared if json else None)
    _configured = wanted


def _route_standard_logging(level: str, shared: list[structlog.types.Processor] | None) -> None:
    """With `shared` processors, render standard-library records as JSON lines; with None, undo that."""
    global _stdlib_handler
    root = logging.getLogger()
    if _stdlib_handler is not None:
        root.removeHandler(_stdlib_handler)
        _stdlib_handler = None
    if shared is None:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, _json_renderer()],
    ))
    root.addHandler(handler)
    root.setLevel(level)
    _stdlib_handler = handler
    # uvicorn gives its loggers handlers of their own (plain text): hand their records to the root's.
    # Its access log stays off when `--no-access-log` turned it off (ours is shared/observability.py's).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        if name == "uvicorn.access" and not uvicorn_logger.handlers and not uvicorn_logger.propagate:
            continue
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
