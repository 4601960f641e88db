"""Shared machinery of the vendor API simulators.

Each simulator is a WSGI app (a subclass of `SimulatorApp`) written from its vendor's doc. This module gives
every one of them the same serving, per-company sliding-window rate limit, request log and fault injection,
so a simulator file only holds what its vendor's doc says: routes, auth, data and response shapes.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

# Query parameters and headers whose values the request log never keeps.
SECRET_PARAMS = frozenset({"access_token", "api_key", "user_token", "token"})


@dataclass(frozen=True)
class LoggedRequest:
    """One request the simulator answered (admin calls excluded)."""

    time: float  # wall clock, seconds since the epoch, when the request arrived
    method: str
    path: str
    query: dict[str, str]
    status: int
    company: str | None
    duration: float


def busiest_window(times: list[float], seconds: float = 60.0) -> int:
    """The most requests that arrived within any `seconds`-long window (half-open), from arrival times."""
    ordered = sorted(times)
    busiest, start = 0, 0
    for end, arrived in enumerate(ordered):
        while ordered[start] <= arrived - seconds:
            start += 1
        busiest = max(busiest, end - start + 1)
    return busiest


@dataclass
class Fault:
    """A failure to inject: the next `times` requests matching `method`/`path_prefix` get this answer instead."""

    path_prefix: str
    status: int = 500
    body: bytes | str = b'{"error": "injected failure"}'
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    method: str | None = None
    delay: float = 0.0  # seconds to stall before answering (a timeout test)
    content_type: str = "application/json"

    def matches(self, request: Request) -> bool:
        return request.path.startswith(self.path_prefix) and (self.method is None or request.method == self.method)


class SlidingWindowLimit:
    """At most `limit` admitted requests per key in any `window` seconds; refused ones do not count."""

    def __init__(self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def admit(self, key: str) -> float | None:
        """None when admitted, else the seconds until a slot frees up."""
        with self._lock:
            now = self._clock()
            hits = self._hits[key]
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return hits[0] + self.window - now
            hits.append(now)
            return None


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None, content_type: str = "application/json"
) -> Response:
    return Response(
        json.dumps(payload, separators=(",", ":")), status=status, headers=headers, content_type=content_type
    )


class Reject(Exception):
    """Raised inside a handler to answer with an error response right away."""

    def __init__(self, response: Response):
        super().__init__(response.status)
        self.response = response


class SimulatorApp:
    """Base WSGI app: routing, auth hook, rate limit, request log, fault injection, admin endpoints.

    Subclasses set `system`, return werkzeug `Rule`s from `rules()` whose endpoints name methods
    `on_<endpoint>(request, company, **url_args)`, and implement `authenticate()`.
    """

    system: str = "simulator"
    # Endpoints reachable without credentials (health checks, the token endpoint that checks Basic auth itself).
    public_endpoints: frozenset[str] = frozenset()

    def __init__(self, rate_limit_per_minute: int, rate_window_seconds: float = 60.0):
        self.url_map = Map(
            self.rules()
            + [
                Rule("/_simulator/requests", endpoint="admin_requests", methods=["GET"]),
                Rule("/_simulator/faults", endpoint="admin_faults", methods=["POST", "DELETE"]),
            ]
        )
        self.limit = SlidingWindowLimit(rate_limit_per_minute, rate_window_seconds)
        # Held by every handler and every mutation: live changes never interleave with a page being served.
        self.data_lock = threading.RLock()
        self._log: list[LoggedRequest] = []
        self._faults: list[Fault] = []
        self._before: list[tuple[str, Callable[[], None]]] = []  # (path prefix, change made first, once)
        self._lock = threading.Lock()

    # --- what subclasses provide -------------------------------------------------------------------------
    def rules(self) -> list[Rule]:
        raise NotImplementedError

    def authenticate(self, request: Request, endpoint: str) -> str:
        """Return the company the request belongs to, or raise `Reject` (401/403)."""
        raise NotImplementedError

    def rate_limited_response(self, retry_after: int) -> Response:
        return json_response({"message": "Too Many Requests"}, status=429, headers={"Retry-After": str(retry_after)})

    def not_found_response(self, request: Request) -> Response:
        return json_response({"message": f"No route for {request.method} {request.path}"}, status=404)

    # --- test and benchmark hooks ------------------------------------------------------------------------
    def inject_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def before_next(self, path_prefix: str, change: Callable[[], None]) -> None:
        """Make `change` to the data just before answering the next request under `path_prefix` (which is then
        answered from the changed data): e.g. a record deleted between a list and a request about it."""
        with self._lock:
            self._before.append((path_prefix, change))

    def requests(self, path_prefix: str = "") -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self._log if r.path.startswith(path_prefix)]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    # --- WSGI --------------------------------------------------------------------------------------------
    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        arrived = time.time()
        adapter = self.url_map.bind_to_environ(environ)
        company: str | None = None
        try:
            endpoint, args = adapter.match()
        except NotFound:
            endpoint, args = None, {}
        except HTTPException as exc:  # e.g. method not allowed
            response: Response = json_response({"message": exc.description}, status=exc.code or 400)
            endpoint, args = "", {}
        if endpoint and endpoint.startswith("admin_"):
            return getattr(self, "on_" + endpoint)(request)(environ, start_response)
        if endpoint is None:
            response = self.not_found_response(request)
        elif endpoint:
            response, company = self._answer(request, endpoint, args)
        with self._lock:
            self._log.append(
                LoggedRequest(
                    time=arrived,
                    method=request.method,
                    path=request.path,
                    query={k: ("***" if k in SECRET_PARAMS else v) for k, v in request.args.items()},
                    status=response.status_code,
                    company=company,
                    duration=time.time() - arrived,
                )
            )
        return response(environ, start_response)

    def _answer(self, request: Request, endpoint: str, args: Mapping[str, Any]) -> tuple[Response, str | None]:
        fault = self._take_fault(request)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            body = fault.body.encode() if isinstance(fault.body, str) else fault.body
            return Response(body, status=fault.status, headers=fault.headers, content_type=fault.content_type), None
        for change in self._take_before(request):
            with self.data_lock:
                change()
        company = None
        try:
            if endpoint not in self.public_endpoints:
                company = self.authenticate(request, endpoint)
                wait = self.limit.admit(company)
                if wait is not None:
                    return self.rate_limited_response(max(1, math.ceil(wait))), company
            with self.data_lock:
                return getattr(self, "on_" + endpoint)(request, company=company, **args), company
        except Reject as reject:
            return reject.response, company

    def _take_before(self, request: Request) -> list[Callable[[], None]]:
        with self._lock:
            due = [(prefix, change) for prefix, change in self._before if request.path.startswith(prefix)]
            for entry in due:
                self._before.remove(entry)
        return [change for _, change in due]

    def _take_fault(self, request: Request) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(request):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # --- admin endpoints, for a simulator served in another process ----------------------------------------
    def on_admin_requests(self, request: Request) -> Response:
        return json_response([asdict(r) for r in self.requests(request.args.get("path_prefix", ""))])

    def on_admin_faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.clear_faults()
        else:
            self.inject_fault(Fault(**request.get_json()))
        return json_response({"ok": True})


class _QuietHandler(WSGIRequestHandler):
    """The request log lives in the app; keep werkzeug from printing a line per request."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def make_environ(self) -> dict:
        # werkzeug drops headers with underscores (header-spoofing guard), but vendors document some
        # (Lagerkoll's `api_key`, `user_id`, `user_token`): pass them through like any other header.
        environ = super().make_environ()
        for key, value in self.headers.items():
            if "_" in key:
                environ.setdefault("HTTP_" + key.upper().replace("-", "_"), value)
        return environ


class SimulatorServer:
    """Serves a simulator app on localhost in a background thread (threaded server, HTTP/1.1 keep-alive)."""

    def __init__(self, app: SimulatorApp, host: str = "127.0.0.1", port: int = 0):
        self.app = app
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    def start(self) -> SimulatorServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"{self.app.system}-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
