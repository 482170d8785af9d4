"""`GET /metrics` (Prometheus text format, viewer token or session) and the per-request counter behind
`footfall_http_requests_total{route,method,status}`. The metrics themselves are in `server.metrics`."""

from __future__ import annotations

from flask import Flask, Response, request

from footfall.server.metrics import CONTENT_TYPE, WebMetrics
from footfall.server.web.auth import require


def init_app(app: Flask) -> None:
    w = app.extensions["footfall"]
    metrics = WebMetrics(w.site, w.store, w.live)
    app.extensions["footfall_metrics"] = metrics

    @app.after_request
    def _count(response: Response) -> Response:
        # The route pattern, not the path: /api/v1/rooms/<room> is one series however many rooms are asked for.
        rule = request.url_rule.rule if request.url_rule is not None else "(unmatched)"
        metrics.requests.labels(rule, request.method, str(response.status_code)).inc()
        return response

    @app.get("/metrics")
    @require("viewer")
    def prometheus_metrics():
        return Response(metrics.render(), mimetype=None, content_type=CONTENT_TYPE)
