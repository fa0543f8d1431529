"""Schemathesis drives every documented endpoint, with valid and invalid data, and
checks that no answer is a server error or breaks the document."""

from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from fleet.extensions import db
from fleet.models import ServiceToken
from fleet.timeutil import utcnow
from fleet.tokens import SERVICE_TOKEN_PREFIX, hash_token, new_token
from tests.conftest import ENROLLMENT_KEY

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 15


@pytest.fixture
def credentials(app, enrol):
    """A header for each security scheme: a device token, an all-scopes service token, the key."""
    device_token = enrol("kiosk-schemathesis")["token"]
    service_token = new_token(SERVICE_TOKEN_PREFIX)
    db.session.add(
        ServiceToken(
            name="schemathesis",
            token_hash=hash_token(service_token),
            scopes="ping read operate",
            created_at=utcnow() - timedelta(seconds=1),
        )
    )
    db.session.commit()
    return {
        "deviceToken": {"Authorization": f"Bearer {device_token}"},
        "serviceToken": {"Authorization": f"Bearer {service_token}"},
        "enrollmentKey": {"X-Enrollment-Key": ENROLLMENT_KEY},
    }


def headers_for(document, operation, credentials):
    spec = document["paths"][operation.path][operation.method.lower()]
    headers = {}
    for requirement in spec["security"][:1]:
        for scheme in requirement:
            headers.update(credentials[scheme])
    return headers


def test_it_answers_every_endpoint_within_its_document(app, unlimited_client, credentials):
    document = unlimited_client.get("/api/openapi.json").json
    schema = schemathesis.openapi.from_dict(document)
    schema.app = app  # requests go through the WSGI app, not a network
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations
    for operation in operations:
        headers = headers_for(document, operation, credentials)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            exercise(operation, mode, headers)


def exercise(operation, mode, headers):
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()
