"""Answer markdown: rendered by markdown-it-py, highlighted by Pygments, sanitized by an nh3 allow-list."""

import pytest

from conversations.markdown import is_safe_image_src, render_markdown


def test_common_markdown_renders():
    html = render_markdown("# Title\n\n- one\n- **two**\n\n1. first\n\n> quote\n\n~~gone~~ `code`")
    assert "<h1>Title</h1>" in html
    assert "<li><strong>two</strong></li>" in html
    assert "<ol>" in html and "<blockquote>" in html
    assert "<del>gone</del>" in html or "<s>gone</s>" in html
    assert "<code>code</code>" in html


def test_tables_use_classes_for_alignment_not_inline_styles():
    html = render_markdown("| a | b | c |\n|:--|:-:|--:|\n| 1 | 2 | 3 |")
    assert "<table>" in html
    assert '<th class="align-left">a</th>' in html
    assert '<td class="align-center">2</td>' in html
    assert '<td class="align-right">3</td>' in html
    assert "style=" not in html


def test_fenced_code_is_highlighted_with_css_classes():
    html = render_markdown("```python\ndef f():\n    return '<b>'\n```")
    assert html.startswith('<pre class="highlight"><code class="language-python">')
    assert '<span class="k">def</span>' in html
    assert "&lt;b&gt;" in html and "<b>" not in html


def test_code_in_an_unknown_language_is_escaped_plain_text():
    html = render_markdown("```nosuchlang\n<script>alert(1)</script>\n```")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize(
    "source, forbidden",
    [
        ("<script>window.__xss()</script>", "<script"),
        ('<img src=x onerror="window.__xss()">', "<img"),
        ('<svg onload="window.__xss()"></svg>', "<svg"),
        ('<iframe srcdoc="<script>window.__xss()</script>"></iframe>', "<iframe"),
        ("<div onclick=x>raw <b>html</b></div>", "<div"),
        ("[x](javascript:window.__xss())", "href"),
        ("[x](JaVaScRiPt:window.__xss())", "href"),
        ("[x](data:text/html,<script>x</script>)", "href"),
        ("[x](vbscript:msgbox)", "href"),
        ("![pic](https://evil.example/track.png)", "evil.example"),
        ("![pic](//evil.example/track.png)", "evil.example"),
        ("<a href='https://evil.example'>x</a>", "<a"),
    ],
)
def test_dangerous_input_is_made_inert(source, forbidden):
    html = render_markdown(source)
    assert forbidden not in html.lower()


def test_raw_html_is_shown_as_text():
    assert render_markdown("<b>bold?</b>") == "<p>&lt;b&gt;bold?&lt;/b&gt;</p>\n"


def test_links_keep_safe_schemes_and_get_a_strict_rel():
    html = render_markdown("[site](https://example.com) [mail](mailto:a@example.com)")
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">site</a>' in html
    assert '<a href="mailto:a@example.com" rel="noopener noreferrer nofollow">mail</a>' in html


def test_off_site_images_become_their_alt_text_and_local_ones_stay():
    assert render_markdown("![a chart](https://evil.example/x.png)") == "<p>[a chart]</p>\n"
    assert '<img src="/static/img/logo.svg" alt="logo">' in render_markdown("![logo](/static/img/logo.svg)")
    assert '<img src="data:image/png;base64,AAAA" alt="dot">' in render_markdown("![dot](data:image/png;base64,AAAA)")


@pytest.mark.parametrize(
    "src, safe",
    [("/static/a.png", True), ("a.png", True), ("data:image/gif;base64,R0", True),
     ("https://x.example/a.png", False), ("//x.example/a.png", False), ("\\\\x.example\\a.png", False),
     ("javascript:alert(1)", False), ("data:text/html,x", False)],
)
def test_image_source_check(src, safe):
    assert is_safe_image_src(src) is safe


@pytest.mark.parametrize(
    "source, expected",
    [
        ("$E=mc^2$", '<p><span class="math-inline">E=mc^2</span></p>'),
        ("a \\(x+1\\) b", '<p>a <span class="math-inline">x+1</span> b</p>'),
        ("a $$x$$ b \\[y\\]", '<p>a <span class="math-display">x</span> b <span class="math-display">y</span></p>'),
        ("$$\n\\frac{1}{2}\n$$", '<p><span class="math-display">\n\\frac{1}{2}\n</span></p>'),
        ("\\[\na\\\\\nb\n\\]", '<p><span class="math-display">\na\\\\\nb\n</span></p>'),
        ("text\n$$x$$\nmore", '<p>text</p>\n<p><span class="math-display">x</span></p>\n<p>more</p>'),
        ("$a<b$", '<p><span class="math-inline">a&lt;b</span></p>'),
        ("$\\$5$", '<p><span class="math-inline">\\$5</span></p>'),
    ],
)
def test_tex_math_is_marked_up_for_the_page_to_typeset(source, expected):
    assert render_markdown(source).strip() == expected


@pytest.mark.parametrize(
    "source",
    [
        "It costs $5 and $10.",
        "From $5 to $10, or US$5/US$10.",
        "Between $ 5 $ and nothing",
        "An escaped \\$x$ is text",
        "$$ never closed",
        "$$\nnever closed",
        "$x ",
    ],
)
def test_dollars_that_are_not_math_stay_text(source):
    assert "math-" not in render_markdown(source)


def test_code_is_never_math():
    html = render_markdown("`$x$` and\n\n```\n$$\ny\n$$\n```\n\n    $z$")
    assert "math-" not in html
    assert "<code>$x$</code>" in html


def test_math_survives_the_sanitizer_with_its_tex_escaped():
    html = render_markdown('$<script>alert(1)</script>$ and $$<img src=x onerror="x">$$')
    assert "<script" not in html and "<img" not in html
    assert '<span class="math-inline">&lt;script&gt;alert(1)&lt;/script&gt;</span>' in html
