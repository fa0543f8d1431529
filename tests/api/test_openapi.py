import re

from pydantic import BaseModel, Field

from api.spec import describe
from device_api import device_app_of

SELF_DESCRIBING = {"api.openapi_json", "api.docs_page"}


def test_it_serves_an_openapi_31_document_of_every_api_endpoint(client, app):
    document = client.get("/api/openapi.json").json
    assert document["openapi"].startswith("3.1")
    documented = {
        (path, method) for path, methods in document["paths"].items() for method in methods
    }
    assert ("/api/devices/heartbeat", "post") in documented
    assert ("/api/devices/register", "post") in documented
    # Every API route but the document and its page, read from Flask's own routing
    # tables: the main app's and the device app's.
    rules = [*app.url_map.iter_rules(), *device_app_of(app).url_map.iter_rules()]
    routed = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in rules
        if rule.endpoint.startswith("api.") and rule.endpoint not in SELF_DESCRIBING
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert documented == routed


def test_it_derives_request_bodies_from_the_validating_schemas(client):
    document = client.get("/api/openapi.json").json
    body = document["components"]["schemas"]["HeartbeatRequest"]["properties"]
    assert body["wifi_strength"]["anyOf"][0] == {"maximum": 0, "minimum": -120, "type": "integer"}
    register = document["components"]["schemas"]["RegisterRequest"]
    assert register["required"] == ["uid"]
    assert register["examples"][0]["uid"] == "kiosk-0042"


def test_it_documents_the_error_shape_for_each_listed_error(client):
    heartbeat = client.get("/api/openapi.json").json["paths"]["/api/devices/heartbeat"]["post"]
    for status in ("400", "401", "413", "422", "429", "503"):
        content = heartbeat["responses"][status]["content"]["application/json"]
        assert content["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
        assert set(content["example"]["error"]) == {"code", "message", "details"}
    assert "Retry-After" in heartbeat["responses"]["429"]["headers"]


def test_it_names_the_auth_scheme_of_each_endpoint(client):
    document = client.get("/api/openapi.json").json
    paths = document["paths"]
    assert paths["/api/devices/heartbeat"]["post"]["security"] == [{"deviceToken": []}]
    assert paths["/api/devices/register"]["post"]["security"] == [{"enrollmentKey": []}]
    schemes = document["components"]["securitySchemes"]
    assert schemes["enrollmentKey"] == {**schemes["enrollmentKey"], "in": "header"}
    assert {"deviceToken", "serviceToken"} <= set(schemes)


def test_it_renders_a_readable_docs_page_without_external_assets(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "/api/devices/heartbeat" in page and "battery_level" in page
    assert "device token" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page


class DeviceQuery(BaseModel):
    site: str | None = Field(default=None, description="Only devices at this site.")
    page: int = Field(default=1, ge=1)


def test_it_documents_any_described_view_with_its_path_query_and_scope(make_app):
    app = make_app()

    @app.get("/api/admin/things/<uid>")
    @describe("Read a thing", query=DeviceQuery, auth="service:read", errors=(401, 403, 404))
    def read_thing(uid):
        return {}

    operation = app.test_client().get("/api/openapi.json").json["paths"]["/api/admin/things/{uid}"]
    spec = operation["get"]
    assert spec["security"] == [{"serviceToken": ["read"]}]
    parameters = {(item["name"], item["in"]): item for item in spec["parameters"]}
    assert parameters[("uid", "path")]["required"] is True
    assert parameters[("site", "query")]["description"] == "Only devices at this site."
    assert parameters[("page", "query")]["schema"] == {
        "default": 1,
        "minimum": 1,
        "type": "integer",
    }
    assert set(spec["responses"]) == {"200", "400", "401", "403", "404"}  # 400: NUL in the URL
