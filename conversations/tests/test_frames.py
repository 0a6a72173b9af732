"""The sandboxed frames (diagrams, previews): their own policy, not the site's, and only this site may frame them."""

import re

import pytest
from django.test import Client


@pytest.mark.parametrize("path", ["/frames/diagram/", "/frames/preview/"])
def test_a_frame_is_sandboxed_offline_and_framed_by_this_site_only(path):
    response = Client().get(path)  # no login: the shared page shows diagrams too, and a frame holds no data
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["sandbox"] == "allow-scripts"  # an opaque origin: no cookies, no storage, no access up
    assert directives["default-src"] == "'none'"  # no fetch, no off-site images, fonts or forms
    assert directives["frame-ancestors"] == "'self'" and directives["form-action"] == "'none'"
    assert "connect-src" not in directives
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def test_the_diagram_frame_runs_only_its_two_scripts_by_a_fresh_nonce():
    first, second = Client().get("/frames/diagram/"), Client().get("/frames/diagram/")
    nonce = re.search(r"script-src 'nonce-([^']+)'", first["Content-Security-Policy"]).group(1)
    assert nonce not in second["Content-Security-Policy"]
    assert first.content.decode().count(f'nonce="{nonce}"') == 2
    assert "'unsafe-inline'" not in first["Content-Security-Policy"].split("script-src", 1)[1].split(";")[0]


def test_frames_answer_get_only():
    assert Client().post("/frames/preview/").status_code == 405
