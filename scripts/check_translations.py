"""Fail if a Korean message is untranslated or fuzzy, or if the committed .mo is not the compiled .po.

Runs `makemessages -l ko` (the flags the catalogue is made with) on a temporary copy of the tree, the files git
tracks plus new ones it does not ignore, as they are in the working tree, so nothing here is modified. Then lists
every message of locale/ko whose msgstr is empty (the page shows English) or marked fuzzy (its msgid changed
since it was translated: Django skips it, so the page shows English too). Needs gettext (msgattrib, msgfmt, msgunfmt).

Usage: .venv/bin/python scripts/check_translations.py
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LANGUAGE = "ko"
CATALOGUE = Path("locale") / LANGUAGE / "LC_MESSAGES" / "django.po"
COMPILED = CATALOGUE.with_suffix(".mo")
ESCAPES = {"n": "\\n", "t": "\\t"}
MAKEMESSAGES = ["makemessages", "-l", LANGUAGE, "--ignore=.venv", "--ignore=node_modules", "--ignore=tests/clients"]


def run(command: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """One of the programs this check uses (git, gettext's tools, this interpreter), found on PATH, its output kept."""
    executable = shutil.which(command[0])
    if executable is None:
        sys.exit(f"{command[0]} not found: install it (gettext's tools: make test-deps installs them).")
    return subprocess.run(  # noqa: S603 (our own programs and arguments)
        [executable, *command[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )


def tree_files() -> list[str]:
    """The working tree's files that git tracks or would add (deleted ones left out)."""
    listing = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"])
    listing.check_returncode()
    return [name for name in listing.stdout.split("\0") if name and (ROOT / name).is_file()]


def copy_tree(files: list[str], into: Path) -> None:
    for name in files:
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)


def run_makemessages(tree: Path) -> None:
    env = {
        **os.environ,
        "SECRET_KEY": "check-translations",
        "CHATSITE_ENV_FILE": "/nonexistent",
        "DEBUG": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    result = run([sys.executable, "manage.py", *MAKEMESSAGES], cwd=tree, env=env)
    if result.returncode != 0:
        sys.exit(f"makemessages failed:\n{result.stdout}{result.stderr}")


def unquote(line: str) -> str:
    """The text of one quoted PO string ("..."), its escapes decoded but \\n and \\t kept (one message, one line)."""
    quoted = line.strip()[1:-1]
    return re.sub(r"\\(.)", lambda match: ESCAPES.get(match.group(1), match.group(1)), quoted)


def messages(po_text: str) -> list[tuple[str, str]]:
    """(first location, msgid) of each entry but the header in msgattrib's output."""
    found: list[tuple[str, str]] = []
    location, msgid, reading = "", None, False
    for line in po_text.splitlines():
        if line.startswith("#: ") and not location:
            location = line[3:].split()[0]
        elif line.startswith("msgid "):
            msgid, reading = unquote(line[6:]), True
        elif line.startswith('"') and reading and msgid is not None:
            msgid += unquote(line)
        elif line.startswith("msgid_plural") or line.startswith("msgstr"):
            if reading and msgid:
                found.append((location, msgid))
            location, msgid, reading = "", None, False
    return found


def filtered(po: Path, *flags: str) -> list[tuple[str, str]]:
    output = run(["msgattrib", "--no-obsolete", "--no-wrap", *flags, str(po)])
    output.check_returncode()
    return messages(output.stdout)


def compiled_catalogue(mo: Path) -> str:
    """The messages of a .mo as sorted PO text (msgunfmt), to compare two compilations of a catalogue."""
    output = run(["msgunfmt", "--no-wrap", str(mo)])
    output.check_returncode()
    return output.stdout


def main() -> int:
    started = time.monotonic()
    for tool in ("msgattrib", "msgfmt", "msgunfmt", "xgettext", "msgmerge"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: install gettext (make test-deps does).")
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="chatsite-i18n-") as directory:
        tree = Path(directory)
        copy_tree(tree_files(), tree)
        run_makemessages(tree)
        po = tree / CATALOGUE
        for kind, flags in (("untranslated", ["--untranslated"]), ("fuzzy", ["--only-fuzzy"])):
            problems += [f"  {kind}: {location}: {msgid}" for location, msgid in filtered(po, *flags)]
        # The pages read the .mo: the committed .po, compiled, must give the same translations.
        fresh = tree / "fresh.mo"
        run(["msgfmt", "-o", str(fresh), str(ROOT / CATALOGUE)]).check_returncode()
        if not (ROOT / COMPILED).is_file() or compiled_catalogue(fresh) != compiled_catalogue(ROOT / COMPILED):
            problems.append(f"  {COMPILED} is not {CATALOGUE} compiled: run manage.py compilemessages -l {LANGUAGE}")
    seconds = time.monotonic() - started
    if problems:
        print(f"Korean catalogue ({CATALOGUE}) is incomplete: {len(problems)} problem(s) ({seconds:.1f} s).")
        print("\n".join(problems))
        print(
            f"Fix: SECRET_KEY=x .venv/bin/python manage.py {' '.join(MAKEMESSAGES)}, translate the entries above "
            f"(drop each fuzzy flag once its msgstr fits the new msgid), then compilemessages -l {LANGUAGE}.",
        )
        return 1
    print(f"Korean catalogue complete ({seconds:.1f} s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
