"""Voice in Chromium: dictation into the composer and answers read aloud, with the browser's own speech services.

Headless Chromium has no microphone and no recognition service, so the page gets a stand-in SpeechRecognition that
"hears" a fixed sentence, and speechSynthesis.speak is recorded; what is tested is the page's side: the controls
show only where the services exist, and they put the words in the composer and read the answer's text."""

from tests.browser.helpers import screenshot, send_message, sign_up, wait_until
from tests.browser.test_accessibility import AXE, assert_clean

COMPLETE_ANSWER = ".turn-assistant[data-status=complete]"

FAKE_SPEECH = """
window.__spoken = [];
class FakeRecognition extends EventTarget {
  start() {
    setTimeout(() => {
      const result = [{ transcript: "hello from my voice" }];
      result.isFinal = true;
      const event = new Event("result");
      Object.assign(event, { resultIndex: 0, results: [result] });
      this.dispatchEvent(event);
      this.dispatchEvent(new Event("end"));
    }, 50);
  }
  stop() { this.dispatchEvent(new Event("end")); }
}
window.SpeechRecognition = FakeRecognition;
window.speechSynthesis.speak = (utterance) => { window.__spoken.push(utterance.text); };
"""

NO_SPEECH = "delete window.webkitSpeechRecognition; delete window.SpeechRecognition; delete window.speechSynthesis;"


def test_dictation_fills_the_composer_and_answers_are_read_aloud(make_page, server, upstream):
    upstream.behaviour.reply = "The answer **to read**, with `code`."
    page = make_page()
    page.add_init_script(FAKE_SPEECH)
    page.add_init_script(path=str(AXE))
    sign_up(page)
    dictate = page.get_by_role("button", name="Dictate")
    page.fill("#composer-input", "Please say:")
    dictate.click()
    wait_until(page, "document.getElementById('composer-input').value === 'Please say: hello from my voice'")
    assert dictate.get_attribute("aria-pressed") == "false"  # it stopped when the speech ended
    assert page.is_enabled("#composer-send")

    page.press("#composer-input", "Enter")
    page.wait_for_selector(COMPLETE_ANSWER)
    read = page.locator(COMPLETE_ANSWER).get_by_role("button", name="Read aloud")
    read.click()
    assert page.evaluate("window.__spoken") == ["The answer to read, with code."]  # the text, not the markdown
    assert read.get_attribute("aria-pressed") == "true"
    screenshot(page, "voice")
    assert_clean(page, "voice")
    read.press("Enter")  # pressed again: it stops
    assert read.get_attribute("aria-pressed") == "false"
    assert page.evaluate("window.__spoken") == ["The answer to read, with code."]

    page.reload()  # the server's render gets the button too
    page.locator(COMPLETE_ANSWER).get_by_role("button", name="Read aloud").wait_for()


def test_without_speech_services_there_are_no_voice_controls(make_page, server, upstream):
    page = make_page()
    page.add_init_script(NO_SPEECH)
    sign_up(page)
    send_message(page, "Hello")
    page.wait_for_selector(COMPLETE_ANSWER)
    assert not page.locator("#composer-dictate").is_visible()
    assert page.locator("[data-action=read-aloud]").count() == 0
    assert page.recorder.console_errors == []
