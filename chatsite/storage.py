"""Static files in production: ServeStatic's compressed, hashed files, with the page scripts' imports hashed too."""

from servestatic.storage import CompressedManifestStaticFilesStorage

# The page scripts (static/js/) are ES modules that import each other by relative path. An import statement starts a
# line and ends at its semicolon; the path is relative ("./" or "../") in matching quotes.
_PATH = r"""(?P<quote>["'])(?P<url>\.\.?/[^"'\n]+)(?P=quote);"""
_IMPORT_FROM = r"(?m)^(?P<matched>(?P<head>import\s[^;]*?\bfrom\s*)" + _PATH + ")"
_IMPORT_BARE = r"(?m)^(?P<matched>import\s*" + _PATH + ")"


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Rewrites the page scripts' imports to the hashed names, so that every module a page loads is a hashed,
    immutable file: without it a hashed chat.js would import the unhashed util.js, which browsers keep for a short
    time only, and for that while after a deploy a page could run new and old modules together.

    Django's own option for this (`support_js_module_import_aggregation`) matches "import" and "export" anywhere, in
    comments too ("… the export links.\\n\\nimport { api } from "./api.js";" is rewritten twice, to a file that
    does not exist). These patterns take only statements that start a line, and only in our own scripts (js/), not
    in the vendored or the apps' files. tests/browser/test_production_static.py loads the page as collected."""

    patterns = (
        *CompressedManifestStaticFilesStorage.patterns,
        ("js/*.js", (
            (_IMPORT_FROM, "%(head)s%(quote)s%(url)s%(quote)s;"),
            (_IMPORT_BARE, "import %(quote)s%(url)s%(quote)s;"),
        )),
    )
