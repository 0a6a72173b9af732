"""schemathesis against /api/schema/ (every operation, /v1 included): generated requests, schema-valid and
schema-violating alike (bounded: a few of each per operation), get no 5xx and match the schema.

All of schemathesis's default checks run (server errors, status codes, content types, response
schemas, headers, invalid input rejected) except "valid input accepted": some rules can't be written
in OpenAPI (a key's expiry must be in the future, the last message must be the user's, a message
can't be only whitespace, the model must exist), so schema-valid requests may rightly get a 400/404.
"""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

pytestmark = pytest.mark.django_db(transaction=True)

# The schema view needs no database, so it can be read at collection time.
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
# Negative data too: a request the schema forbids must be refused (a 4xx), as the schema says.
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@schema.parametrize()
# Four examples an operation: 83 operations (both modes) keep the run to a few minutes of CI.
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_matches_its_schema(case, api_key, fake_upstream):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {api_key}"}, excluded_checks=[positive_data_acceptance]
    )
