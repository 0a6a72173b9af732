"""Template helpers for the chat pages: sanitized markdown for answers, translated strings for scripts."""

from django import template
from django.utils.html import json_script
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from conversations.markdown import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, LINK_REL, LINK_SCHEMES, render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> str:
    """Answer text -> sanitized HTML (markdown-it-py, then the nh3 allow-list)."""
    return mark_safe(render_markdown(text))  # noqa: S308 (sanitized by nh3 just above)


# Strings the page scripts show, translated on the server and handed over as JSON (no inline script).
JS_STRINGS = {
    "new_chat": _("New chat"),
    "file_uploading": _("%(name)s (uploading…)"),
    "file_remove": _("Remove %(name)s"),
    "file_failed": _("The file could not be attached."),
    "file_truncated": _("%(name)s is long: only its first part will be read."),
    "file_wait": _("Wait for the files to finish uploading."),
    "pasted_file": _("pasted file"),
    "file_limit": _("At most %(limit)s files per message: %(names)s not attached."),
    "file_too_large": _("%(name)s is too large: the limit is %(limit)s per file."),
    "attached_files": _("Attached files"),
    "send_failed": _("The message could not be sent."),
    "network_lost": _("The connection was lost. The partial answer is shown."),
    "answer_failed": _("The answer failed."),
    "retry": _("Retry"),
    "stopped": _("Stopped"),
    "copied": _("Copied"),
    "copy": _("Copy"),
    "copy_code": _("Copy code"),
    "wrap_lines": _("Wrap lines"),
    "download": _("Download"),
    "show_source": _("Show source"),
    "diagram_alt": _("Diagram drawn from the Mermaid source (Show source shows it)"),
    "preview": _("Preview"),
    "preview_note": _("Sandboxed: no network, no access to this page"),
    "close_preview": _("Close preview"),
    "share_current": _("A snapshot taken %(when)s. Create a link to share the chat as it is now."),
    "dictation_failed": _("Dictation stopped: the browser's speech recognition is not available."),
    "rename_prompt": _("Rename chat"),
    "delete_confirm": _("Delete this chat? This cannot be undone."),
    "delete": _("Delete"),
    "save": _("Save"),
    "cancel": _("Cancel"),
    "saved": _("Saved"),
    "memory_removed": _("Memory removed."),
    "approval_asked": _("The model wants to call %(tool)s with:"),
    "approval_allow": _("Allow"),
    "approval_refuse": _("Refuse"),
    "approval_allowed": _("Allowed: the tool runs."),
    "approval_refused": _("Refused: the model is told."),
    "approval_timeout": _("Refused after %(seconds)s seconds if you do not answer."),
    "prompts_found": _("%(count)s prompts: arrows to choose, Enter to insert, Escape to close."),
    "assistants_found": _("%(count)s assistants: arrows to choose, Enter to start a chat, Escape to close."),
    "save_and_send": _("Save and send"),
    "no_results": _("No chats found."),
    "thinking": _("Thinking…"),
    "load_failed": _("Could not load. Check your connection and try again."),
    "switch_failed": _("Could not show that version. Try again."),
    "wait_for_answer": _("An answer is still being written: wait for it, or stop it, then send."),
    "throttled": _("You are sending messages faster than this site allows. Wait a moment, then send again."),
    "throttled_wait": _("You are sending messages faster than this site allows. Try again in %(seconds)s seconds."),
    "too_long": _("%(count)s of %(limit)s characters: %(over)s too many. Shorten the message or split it to send it."),
    "char_count": _("%(count)s of %(limit)s characters"),
    "today": _("Today"),
    "edit_message": _("Edit your message"),
    "pin": _("Pin"),
    "unpin": _("Unpin"),
    "no_folder": _("No project"),
    "folder_name_prompt": _("Name of the new project"),
    "create": _("Create"),
    "delete_folder_confirm": _("Delete this project? Its chats stay, back in your chat list."),
    "delete_folder": _("Delete project"),
    "delete_folder_named": _("Delete project %(name)s"),
    "chat_expired": _("This chat has expired and was deleted."),
    "delete_project_chats": _("Delete the chats in this project too? Cancel keeps them, back in your chat list."),
    "delete_project_chats_ok": _("Delete its chats"),
    "feedback_comment_saved": _("Thanks, your comment is saved."),
    "document_one_passage": _("1 passage"),
    "document_passages": _("%(count)s passages"),
    "document_failed": _("Failed: %(error)s"),
    "document_indexing": _("Indexing %(done)s/%(total)s"),
    "document_queued": _("Queued for indexing"),
    "document_uploading": _("Uploading %(name)s: %(percent)s"),
    "document_uploaded": _("Uploaded: it is being indexed."),
    "upload_failed": _("Upload failed (%(status)s)."),
    "upload_unreachable": _("Upload failed: the server could not be reached."),
    "project_settings": _("Open project %(name)s"),
    "project_chip_title": _("Project: instructions, model and files"),
    "project_chip_label": _("Project:"),
    "project_settings_title": _("Instructions, model and files"),
}


@register.simple_tag
def markdown_rules():
    """The sanitizer's allow-list for the page's own render of a streaming answer (static/js/markdown.js)."""
    rules = {
        "tags": sorted(ALLOWED_TAGS),
        "attributes": {tag: sorted(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        "link_schemes": sorted(LINK_SCHEMES),
        "link_rel": LINK_REL,
    }
    return json_script(rules, "markdown-rules")


@register.simple_tag
def js_strings():
    return json_script({key: str(value) for key, value in JS_STRINGS.items()}, "js-strings")


# Icons as inline SVG (no icon font, no emoji font needed; CSP allows inline SVG markup).
_ICON_PATHS = {
    "arrow-down": '<path d="M12 5v14M5 12l7 7 7-7"/>',
    "mic": '<rect x="9" y="3" width="6" height="11" rx="3"/><path d="M5 11a7 7 0 0 0 14 0M12 18v3"/>',
    "speaker": '<path d="M4 9v6h4l5 4V5L8 9z"/><path d="M16.5 8.5a5 5 0 0 1 0 7M19 6a8.5 8.5 0 0 1 0 12"/>',
    "plus": '<path d="M12 5v14M5 12h14"/>',
    "copy": '<rect x="9" y="9" width="11" height="11" rx="2"/><path d="M5 15V6a2 2 0 0 1 2-2h9"/>',
    "edit": '<path d="M4 20h4L19 9a2.8 2.8 0 0 0-4-4L4 16z"/><path d="M13.5 6.5l4 4"/>',
    "thumb-up": '<path d="M7 10v11H4V10zm0 0l4-8a3 3 0 0 1 3 3v4h5.5a2 2 0 0 1 2 2.3l-1.4 8a2 2 0 0 1-2 1.7H7"/>',
    "thumb-down": '<g transform="rotate(180 12 12)"><path d="M7 10v11H4V10zm0 0l4-8a3 3 0 0 1 3 3v4h5.5a2 2 0 0 1 '
                  '2 2.3l-1.4 8a2 2 0 0 1-2 1.7H7"/></g>',
    "regenerate": '<path d="M20 11a8 8 0 1 0-2.3 5.7"/><path d="M20 4v7h-7"/>',
    "send": '<path d="M12 19V5M5 12l7-7 7 7"/>',
    "stop": '<rect x="7" y="7" width="10" height="10" rx="1.5" fill="currentColor"/>',
    "menu": '<path d="M4 6h16M4 12h16M4 18h16"/>',
    "chevron-left": '<path d="M15 6l-6 6 6 6"/>',
    "chevron-right": '<path d="M9 6l6 6-6 6"/>',
    "close": '<path d="M6 6l12 12M18 6L6 18"/>',
    "sun": '<circle cx="12" cy="12" r="4"/><path d="M12 2v2M12 20v2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M2 12h2M20 '
           '12h2M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4"/>',
    "moon": '<path d="M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8z"/>',
    "dots": '<circle cx="5" cy="12" r="1.3"/><circle cx="12" cy="12" r="1.3"/><circle cx="19" cy="12" r="1.3"/>',
    "settings": '<path d="M4 6h10M18 6h2M4 12h4M12 12h8M4 18h12M20 18h0"/><circle cx="16" cy="6" r="2"/>'
                '<circle cx="10" cy="12" r="2"/><circle cx="18" cy="18" r="2"/>',
    "download": '<path d="M12 4v11M7 10l5 5 5-5M5 20h14"/>',
    "paperclip": '<path d="M20 11.5l-8.1 8.1a5 5 0 0 1-7.1-7.1l8.5-8.5a3.3 3.3 0 0 1 4.7 4.7l-8.5 8.5a1.7 1.7 0 0 1'
                 '-2.4-2.4l7.8-7.8"/>',
    "pin": '<path d="M9 4h6l-1 6 4 4H6l4-4zM12 14v7"/>',
    "folder": '<path d="M3 7a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z"/>',
    "clock": '<circle cx="12" cy="12" r="8.5"/><path d="M12 7.5V12l3 2"/>',
    "keyboard": '<rect x="3" y="6" width="18" height="12" rx="2"/><path d="M7 10h.01M11 10h.01M15 10h.01M7 14h10"/>',
    "share": '<circle cx="18" cy="5" r="2.5"/><circle cx="6" cy="12" r="2.5"/><circle cx="18" cy="19" r="2.5"/>'
             '<path d="M8.2 10.8l7.6-4.4M8.2 13.2l7.6 4.4"/>',
}


@register.simple_tag
def icon(name: str, css_class: str = ""):
    classes = f"icon {css_class}".strip()
    return mark_safe(  # noqa: S308 (fixed markup from the table above)
        f'<svg class="{classes}" viewBox="0 0 24 24" width="18" height="18" fill="none" stroke="currentColor" '
        f'stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">{_ICON_PATHS[name]}</svg>'
    )
