"""Korean: the catalog is complete, the compiled .mo matches it, and pages and scripts get Korean strings."""

import gettext
import json
import re
from pathlib import Path

import pytest
from django.conf import settings

LOCALE_DIR = Path(settings.BASE_DIR) / "locale" / "ko" / "LC_MESSAGES"


def po_entries(path: Path) -> list[tuple[str, list[str]]]:
    """(msgid, [msgstr...]) pairs; multi-line strings joined. Enough of the .po format for our file."""
    entries, msgid, field = [], None, None
    msgstrs: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        match = re.match(r'^(msgid|msgid_plural|msgstr(?:\[\d\])?) (".*")$', line)
        if match:
            field, value = match.group(1), json.loads(match.group(2))
            if field == "msgid":
                if msgid is not None:
                    entries.append((msgid, msgstrs))
                msgid, msgstrs = value, []
            elif field.startswith("msgstr"):
                msgstrs.append(value)
        elif line.startswith('"') and field:
            if field == "msgid":
                msgid += json.loads(line)
            elif field.startswith("msgstr"):
                msgstrs[-1] += json.loads(line)
        else:
            field = None
    if msgid is not None:
        entries.append((msgid, msgstrs))
    return [(msgid, strs) for msgid, strs in entries if msgid]


def test_every_korean_string_is_translated_and_not_fuzzy():
    po = LOCALE_DIR / "django.po"
    entries = po_entries(po)
    assert len(entries) > 100
    untranslated = [msgid for msgid, msgstrs in entries if not all(msgstrs)]
    assert untranslated == []
    assert "#, fuzzy" not in po.read_text(encoding="utf-8")


def test_the_compiled_catalog_matches_the_po_file():
    with (LOCALE_DIR / "django.mo").open("rb") as mo:
        catalog = gettext.GNUTranslations(mo)
    for msgid, msgstrs in po_entries(LOCALE_DIR / "django.po"):
        assert catalog.gettext(msgid) == msgstrs[0] or catalog.ngettext(msgid, msgid, 1) == msgstrs[0], msgid


@pytest.mark.django_db
def test_chat_page_and_its_script_strings_are_korean(authenticated_client):
    authenticated_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ko"
    html = authenticated_client.get("/").content.decode()
    assert '<html lang="ko">' in html
    for korean in ["새 채팅", "채팅 검색", "보관됨", "무엇을 도와드릴까요?", "메시지를 입력하세요", "로그아웃"]:
        assert korean in html
    strings = json.loads(re.search(r'<script id="js-strings" type="application/json">(.*?)</script>', html).group(1))
    assert strings["retry"] == "다시 시도"
    assert strings["delete_confirm"] == "이 채팅을 삭제할까요? 되돌릴 수 없습니다."
