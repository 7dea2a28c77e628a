"""The HTTP application: health, documentation, problem details."""

from __future__ import annotations

from fastapi.testclient import TestClient

from rempart.app import create_app
from rempart.platform import Platform


def test_health_and_documentation_are_served(platform: Platform) -> None:
    with TestClient(create_app(platform.settings, platform)) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/docs").status_code == 200
        spec = client.get("/openapi.json").json()
        assert spec["info"]["title"] == "Rempart"


def test_unknown_routes_answer_problem_details_without_echoing_the_path(platform: Platform) -> None:
    with TestClient(create_app(platform.settings, platform)) as client:
        response = client.get("/api/v1/beneficiaries/253072B07300470")
        assert response.status_code == 404
        assert "253072B07300470" not in response.text
