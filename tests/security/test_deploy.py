"""Production settings: Django's deployment checklist passes with the documented production env."""

import subprocess

from tests.support import ROOT


def test_check_deploy_passes_with_the_documented_production_environment():
    result = subprocess.run(["bash", "scripts/check-deploy.sh"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_fails_without_the_tls_settings():
    """The check can fail: the same script with HSTS and the SSL redirect off reports warnings."""
    script = (ROOT / "scripts/check-deploy.sh").read_text()
    weakened = script.replace("SECURE_SSL_REDIRECT=1", "SECURE_SSL_REDIRECT=0").replace(
        "SECURE_HSTS_SECONDS=31536000", "SECURE_HSTS_SECONDS=0")
    assert weakened != script
    # $0 names the real script so it finds the project folder the same way.
    result = subprocess.run(["bash", "-c", weakened, "scripts/check-deploy.sh"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout  # HSTS
    assert "security.W008" in result.stderr + result.stdout  # SSL redirect


def test_check_deploy_fails_without_a_shared_cache():
    """Several workers need Redis: without REDIS_URL the deploy check warns (chatsite.W001)."""
    script = (ROOT / "scripts/check-deploy.sh").read_text()
    without_redis = "\n".join(line for line in script.splitlines() if "REDIS_URL=" not in line)
    assert without_redis != script
    result = subprocess.run(["bash", "-c", without_redis, "scripts/check-deploy.sh"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "chatsite.W001" in result.stderr + result.stdout
