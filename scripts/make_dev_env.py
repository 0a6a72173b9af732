"""Write a development .env (DEBUG on, generated secret) for `make run`; never overwrites one."""

import secrets
import sys
from pathlib import Path

path = Path(sys.argv[1] if len(sys.argv) > 1 else ".env")
if path.exists():
    sys.exit(0)
path.write_text(
    "# Written by `make run` for local development. See .env.example for every setting.\n"
    "DEBUG=1\n"
    f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
)
print(f"Wrote {path} (development settings: DEBUG=1, generated SECRET_KEY).")
