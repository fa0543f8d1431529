"""The availability API (scope `read`): a device's availability, reports, outages; JSON or CSV."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Response, jsonify, stream_with_context

from api.admin import SERVICE_ERRORS, parse_query, require_service
from api.report_schemas import (
    CSV_COLUMNS,
    AvailabilityOut,
    AvailabilityQuery,
    OutageListOut,
    OutageQuery,
    ReportOut,
    ReportQuery,
    availability_out,
    outage_out,
    report_row_out,
)
from api.spec import describe
from fleet.services.availability import reports
from fleet.timeutil import utcnow


def csv_response(lines: Iterator[str], filename: str) -> Response:
    """A CSV streamed line by line: the rows are never all in memory."""
    return Response(
        stream_with_context(lines),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@describe(
    "A device's availability over 24 h, 7, 30 or 90 days: seconds per tier and expected on",
    query=AvailabilityQuery,
    response=AvailabilityOut,
    auth="service:read",
    errors=(*SERVICE_ERRORS, 404, 422),
)
@require_service("read")
def device_availability(uid: str):
    query = parse_query(AvailabilityQuery)
    window, seconds = reports.device_availability(uid, query.window, utcnow())
    return jsonify(availability_out(uid, window, seconds).model_dump(mode="json"))


@describe(
    "Availability per device, site or for the fleet over whole UTC days; CSV with format=csv",
    query=ReportQuery,
    response=ReportOut,
    csv=CSV_COLUMNS["device"],
    auth="service:read",
    errors=(*SERVICE_ERRORS, 422),
)
@require_service("read")
def availability_report():
    query = parse_query(ReportQuery)
    now = utcnow()
    if query.format == "csv":
        lines = reports.availability_csv(query.first, query.last, query.by, now, query.site)
        return csv_response(lines, f"availability-{query.by}-{query.first}-{query.last}.csv")
    report = reports.availability_report(query.first, query.last, query.by, now, query.site)
    body = ReportOut(
        by=report.by,
        start=report.window.start,
        end=report.window.end,
        items=[report_row_out(row, report.by) for row in report.rows],
    )
    return jsonify(body.model_dump(mode="json"))


@describe(
    "Outages (expected on and not connected) overlapping whole UTC days; CSV with format=csv",
    query=OutageQuery,
    response=OutageListOut,
    csv=CSV_COLUMNS["outages"],
    auth="service:read",
    errors=(*SERVICE_ERRORS, 422),
)
@require_service("read")
def outages_report():
    query = parse_query(OutageQuery)
    now = utcnow()
    if query.format == "csv":
        lines = reports.outages_csv(query.first, query.last, now, query.site)
        return csv_response(lines, f"outages-{query.first}-{query.last}.csv")
    found = reports.outages(query.first, query.last, now, query.site, limit=query.limit)
    body = OutageListOut(items=[outage_out(outage, now) for outage in found])
    return jsonify(body.model_dump(mode="json"))
