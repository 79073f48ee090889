"""The website chat widget in a real browser (Debian's chromium, driven by Playwright).

Nothing is downloaded: Playwright launches /usr/bin/chromium, and every request that is not to
the two loopback servers is answered or aborted by a route (the booking link's page is faked).
Screenshots go to results/screenshots/; WIDGET_DOCS_SCREENSHOTS=1 also refreshes the copies
in docs/ that the README shows.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.needs import missing
from tests.support.ports import wait_until
from tests.support.servers import ROOT, Servers
from triage import clinic

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
SHOTS = ROOT / "results" / "screenshots"
DOCS = ROOT / "docs"
OPENING = (
    "im 31 weeks pregant and the outside of my right hip burns, worse at night lying on that side"
)
# Question text (a fragment) -> how she answers it. Anything else gets "Not sure".
ANSWERS = [
    ("quick safety check", "tap", "None of these"),
    ("run down the outside", "type", "yes down to my knee"),
    ("numbness, tingling", "type", "no"),
    ("below your knee", "key", "No"),
    ("How bad is it", "tap", "Moderate (4-6)"),
    ("wake you up at night", "tap", "Yes"),
    ("How long has it been going on", "type", "2 weeks"),
    ("labral tear", "tap", "No"),
]
# A WebSocket that fails the way one does behind a proxy that refuses the upgrade.
BLOCKED_WEBSOCKET = """window.WebSocket = class {
  constructor() {
    setTimeout(() => { this.onerror && this.onerror(new Event("error"));
                       this.onclose && this.onclose({ code: 1006 }); }, 10);
  }
  send() {}
  close() {}
};"""
SHADOW = "document.querySelector('#hip-triage-widget').shadowRoot"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        missing(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


class Chat:
    """The widget on the demo page, as a patient uses it."""

    def __init__(self, browser: Browser, widget_url: str, servers: Servers) -> None:
        self.servers = servers
        rasa_url = servers.url
        self.booking_url = clinic.settings()["booking_url"]
        self.context = browser.new_context(viewport=PHONE)
        self.outside: list[str] = []
        self.requests: list[str] = []
        self.last_buttons: list[tuple[str, str]] = []
        self.context.route("**/*", self._guard(widget_url, rasa_url))
        self.page: Page = self.context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._on_dialog)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.goto(widget_url)

    def _guard(self, *allowed: str):
        def route(route):
            url = route.request.url
            if url.startswith(allowed):
                self.requests.append(url)
                route.continue_()
            elif url.startswith(self.booking_url):
                route.fulfill(body="<title>Booking</title>Booking page", content_type="text/html")
            else:
                self.outside.append(url)
                route.abort()

        return route

    def _on_dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def js(self, body: str, arg=None):
        return self.page.evaluate(f"(arg) => {{ const root = {SHADOW}; {body} }}", arg)

    def bot_texts(self) -> list[str]:
        return self.page.locator(".hw-bot .hw-text").all_inner_texts()

    def log_texts(self) -> list[str]:
        return self.page.locator(".hw-msg .hw-text").all_inner_texts()

    def replies(self) -> list[str]:
        return self.page.locator(".hw-reply").all_inner_texts()

    def wait_for_reply(self, before: int, said: str | None = None, count: int = 1) -> list[str]:
        """The bot's messages after the first `before`, once all of them are shown.

        With `said`, her message: the tracker says how many messages its turn has;
        else `count` messages are expected (e.g. one sent through the HTTP API).
        """
        if said is not None:
            count = len(self.servers.turn_messages(self.conversation(), said.strip()))
        wait_until(lambda: len(self.bot_texts()) >= before + count, 60, "the bot's messages")
        return self.bot_texts()[before : before + count]

    def session_id(self) -> str:
        return wait_until(lambda: self.storage_state().get("sessionId"), 30, "a session id")

    def conversation(self) -> str:
        """Her conversation's id on the server: the web channel's scope and the issued id."""
        return f"web:{self.session_id()}"

    def type(self, text: str) -> list[str]:
        before = len(self.bot_texts())
        self.page.get_by_label("Your message").fill(text)
        self.page.get_by_label("Your message").press("Enter")
        return self.wait_for_reply(before, said=text)

    def tap(self, title: str, keyboard: bool = False) -> list[str]:
        before = len(self.bot_texts())
        self.last_buttons = [(b["title"], b["payload"]) for b in self.storage_state()["replies"]]
        button = self.page.locator(".hw-reply", has_text=title).first
        if keyboard:
            button.focus()
            self.page.keyboard.press("Enter")
        else:
            button.click()
        payload = next(payload for shown, payload in self.last_buttons if shown == title)
        return self.wait_for_reply(before, said=payload)

    def active_element(self) -> dict:
        return self.js(
            "const el = root.activeElement;"
            " return el ? {cls: el.className, id: el.id, text: el.textContent} : {};"
        )

    def storage_state(self) -> dict:
        return json.loads(self.storage()["session"] or "{}")

    def storage(self) -> dict:
        return self.page.evaluate(
            "() => ({session: sessionStorage.getItem('hipTriageChat'),"
            " local: localStorage.getItem('hipTriageChat')})"
        )

    def screenshot(self, name: str, docs: bool = False) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / name
        self.page.screenshot(path=str(path))
        if docs and os.environ.get("WIDGET_DOCS_SCREENSHOTS") == "1":
            shutil.copyfile(path, DOCS / name)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def chat(browser, widget_url, servers):
    chat = Chat(browser, widget_url, servers)
    yield chat
    chat.close()
    assert not chat.outside, f"requests left the machine: {chat.outside}"


def open_chat(chat: Chat) -> list[str]:
    chat.page.get_by_role("button", name="Chat about hip pain").click()
    assert chat.active_element().get("id") == "hw-input", "focus should move to the input"
    return chat.wait_for_reply(0, said="/greet")


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_patient_reaches_an_outcome_across_a_reload(chat, servers):
    page = chat.page
    greeting = open_chat(chat)
    assert "hip pain helper" in greeting[0] and "can't diagnose" in greeting[0]
    assert page.locator("[aria-live=polite]").inner_text().strip() == greeting[-1].strip()

    # She describes the pain; the typing indicator shows at once, until the answer arrives.
    shown = chat.js(
        "root.querySelector('.hw-input').value = arg;"
        " root.querySelector('.hw-form').requestSubmit();"
        " return !root.querySelector('.hw-typing').hidden;",
        OPENING,
    )
    assert shown, "typing indicator not shown while waiting"
    reply = chat.wait_for_reply(len(greeting), said=OPENING)
    assert page.locator(".hw-typing").is_hidden()
    assert "safety check" in reply[-1]
    assert "None of these" in chat.replies()
    page.get_by_label("Your message").fill("ty")  # typing does not hide or disable the buttons
    assert page.locator(".hw-reply", has_text="None of these").is_enabled()
    page.get_by_label("Your message").fill("")

    reloaded = tapped = typed = keyed = False
    last_answer = None
    outcome = None
    for _ in range(25):
        if page.locator(f'.hw-text a[href="{chat.booking_url}"]').count():
            outcome = chat.bot_texts()
            break
        question = chat.bot_texts()[-1]
        how, answer = next(
            ((how, answer) for key, how, answer in ANSWERS if key in question),
            ("tap", "Not sure") if "Not sure" in chat.replies() else ("type", "not sure"),
        )
        if how == "type":
            chat.type(answer)
            typed, last_answer = True, answer
        else:
            chat.tap(answer, keyboard=how == "key")
            tapped, keyed = True, keyed or how == "key"
            last_answer = next(b for t, b in chat.last_buttons if t == answer)
        if how != "type" and chat.replies():  # the pressed button is gone: focus moves on
            # (after the last message of a burst; the widget waits 300 ms for more)
            wait_until(
                lambda: "hw-reply" in chat.active_element().get("cls", ""),
                10,
                f"focus on the next question's button after a {how} answer",
            )
        if typed and tapped and not reloaded and chat.replies():
            reloaded = True
            before = (chat.log_texts(), chat.replies(), chat.storage())
            chat.screenshot("widget-phone.png", docs=True)
            page.reload()
            page.locator(".hw-msg").nth(len(before[0]) - 1).wait_for()
            assert (chat.log_texts(), chat.replies()) == before[:2], "history lost on reload"
            assert page.locator(".hw-panel").is_visible(), "the open chat should stay open"
            storage = chat.storage()
            assert storage["local"] is None, "nothing may go to localStorage (shared PCs)"
            assert (
                json.loads(storage["session"])["sessionId"]
                == json.loads(before[2]["session"])["sessionId"]
            )
    assert outcome, f"no booking link after {chat.log_texts()}"
    assert reloaded and tapped and typed and keyed, (reloaded, tapped, typed, keyed)

    # The conversation went on in the same Rasa conversation after the reload.
    session_id = chat.conversation()
    tracker = servers.tracker(session_id)
    said = [e["text"] for e in tracker["events"] if e["event"] == "user"]
    assert said[:2] == ["/greet", OPENING] and said[-1] == last_answer, said
    assert tracker["slots"]["triage"]["book_pt"] is True, tracker["slots"]["triage"]

    # On the phone the view lands on the outcome's headline (the pattern and the physio
    # advice), not on its last bubble.
    headline = page.locator(".hw-bot .hw-text", has_text="Book a physio").last
    box = wait_until(
        lambda: chat.js(
            "const log = root.querySelector('.hw-log').getBoundingClientRect();"
            " const heads = [...root.querySelectorAll('.hw-bot .hw-text')]"
            "   .filter(e => e.textContent.includes('Book a physio'));"
            " const head = heads[heads.length - 1].getBoundingClientRect();"
            " return head.top >= log.top - 1 && head.top < log.bottom"
            "   ? {top: head.top - log.top, logHeight: log.height} : null;"
        ),
        10,
        "the outcome's headline in view",
    )
    assert box["top"] < box["logHeight"] / 2, box
    assert "often described as" in headline.inner_text()
    chat.screenshot("widget-phone-outcome.png", docs=True)

    link = page.locator(f'.hw-text a[href="{chat.booking_url}"]').first
    assert link.get_attribute("target") == "_blank"
    assert "noopener" in link.get_attribute("rel")
    assert link.inner_text() == chat.booking_url  # the sentence's full stop stays outside
    with chat.context.expect_page() as popup:
        link.click()
    assert popup.value.url.startswith(chat.booking_url)
    popup.value.close()

    # Readable at 360 px: nothing wider than the screen, big enough text and targets.
    layout = chat.js(
        "const panel = root.querySelector('.hw-panel').getBoundingClientRect();"
        " const widths = [...root.querySelectorAll('.hw-text, .hw-reply')]"
        "   .map(e => e.getBoundingClientRect().right);"
        " const heights = [...root.querySelectorAll('.hw-reply, .hw-send, .hw-restart')]"
        "   .map(e => e.getBoundingClientRect().height);"
        " return {panel: panel.width, page: document.documentElement.scrollWidth,"
        "  right: Math.max(...widths), minTarget: Math.min(...heights),"
        "  font: getComputedStyle(root.querySelector('.hw-text')).fontSize};"
    )
    assert layout["panel"] == 360 and layout["page"] <= 360 and layout["right"] <= 360, layout
    assert layout["minTarget"] >= 44 and layout["font"] == "16px", layout
    chat.screenshot("widget-phone-outcome.png")
    page.set_viewport_size(DESKTOP)
    chat.screenshot("widget-desktop.png", docs=True)
    assert not chat.dialogs and not chat.errors, (chat.dialogs, chat.errors)


def test_start_again_clears_the_chat_and_restarts_the_conversation(chat, servers):
    open_chat(chat)
    chat.type(OPENING)
    session_id = chat.conversation()
    assert servers.tracker(session_id)["slots"]["requested_slot"], "the interview should run"

    chat.page.get_by_role("button", name="Start again").click()
    assert chat.log_texts()[0] == "Start again"
    reply = chat.wait_for_reply(0, said="start again")  # the log was cleared
    assert "start again" in reply[0].lower(), reply
    assert chat.log_texts()[:1] == ["Start again"]
    assert chat.active_element().get("id") == "hw-input"
    assert chat.replies() == [] and chat.storage_state()["history"][0]["text"] == "Start again"
    url = f"{servers.url}/conversations/{session_id}/tracker?token={servers.token}"
    with urllib.request.urlopen(f"{url}&include_events=ALL", timeout=30) as response:
        tracker = json.loads(response.read())
    kinds = [e["event"] for e in tracker["events"]]
    assert "restart" in kinds[kinds.index("user") :], kinds
    assert tracker["slots"]["requested_slot"] is None and tracker["active_loop"] in ({}, None)


def test_markup_from_her_or_the_bot_is_shown_as_text_and_never_runs(chat, servers):
    page = chat.page
    page.add_init_script("window.__xss = 0;")
    page.reload()
    open_chat(chat)
    payloads = ["<img src=x onerror=alert(1)>", '<img src=x onerror="window.__xss=1">']
    for payload in payloads:
        chat.type(payload)
    mine = page.locator(".hw-user .hw-text").all_inner_texts()
    assert mine == payloads

    # Bot text with markup: put it in a slot that a response interpolates, and have Rasa send
    # that response to this conversation through the socketio channel.
    session_id = chat.conversation()
    evil = (
        '<img src=x onerror="window.__xss=2"><script>window.__xss=3</script>'
        " javascript:alert(4) https://example.org/ok?a=1&b=<b>x</b>"
    )
    base = f"{servers.url}/conversations/{session_id}"
    post(f"{base}/tracker/events?token={servers.token}",
         {"event": "slot", "name": "clinic_name", "value": evil})  # fmt: skip
    before = len(chat.bot_texts())
    post(f"{base}/execute?token={servers.token}&output_channel=socketio", {"name": "utter_greet"})
    shown = chat.wait_for_reply(before, count=1)
    assert any(evil in text for text in shown), shown

    assert page.locator("#hip-triage-widget img, #hip-triage-widget script").count() == 0
    assert page.locator(".hw-text b").count() == 0
    hrefs = page.locator(".hw-text a").evaluate_all("links => links.map(a => a.href)")
    web = {href for href in hrefs if not href.startswith("tel:")}
    assert web == {"https://example.org/ok?a=1&b="}, hrefs  # no javascript: link
    # The numbers she is told to call are tap-to-call links (the greeting's emergency one).
    emergency = clinic.settings()["emergency_number"]
    assert f"tel:{emergency.replace(' ', '')}" in hrefs, hrefs
    assert page.evaluate("window.__xss") == 0
    assert chat.dialogs == [] and chat.errors == []


def test_falls_back_to_long_polling_when_websockets_are_blocked(chat, servers):
    # Polling requests are cross-origin XHRs: this needs Rasa's --cors to allow the widget's
    # origin (WebSocket connections are not subject to CORS).
    chat.page.add_init_script(BLOCKED_WEBSOCKET)
    chat.page.reload()
    greeting = open_chat(chat)
    assert "hip pain helper" in greeting[0]
    reply = chat.type(OPENING)
    assert "safety check" in reply[-1] and "None of these" in chat.replies()
    polls = [url for url in chat.requests if "transport=polling" in url]
    assert polls and all(url.startswith(servers.url) for url in polls)
    assert chat.dialogs == [] and chat.errors == []


def test_the_warning_sign_picker_fits_a_phone(chat, servers):
    """The re-asked safety screen (every sign a button, stage unknown): all 12 buttons
    can be seen and tapped on a 360 x 740 screen, the message above them too."""
    open_chat(chat)
    chat.type("my hip hurts on the outside")
    chat.tap("Yes, one of these")
    titles = chat.replies()
    assert len(titles) == 12, titles
    chat.screenshot("widget-phone-picker.png", docs=True)
    boxes = chat.js(
        "const area = root.querySelector('.hw-replies').getBoundingClientRect();"
        " return [...root.querySelectorAll('.hw-reply')].map(b => {"
        "   const r = b.getBoundingClientRect();"
        "   return {text: b.textContent, inside: r.top >= area.top && r.bottom <= area.bottom"
        "     && r.right <= 360, height: r.height}; });"
    )
    hidden = [box["text"] for box in boxes if not box["inside"]]
    assert not hidden, f"buttons hidden below the fold: {hidden}"
    assert min(box["height"] for box in boxes) >= 44, boxes  # still easy to tap
    question = chat.page.locator(".hw-bot .hw-text").last.bounding_box()
    assert question["height"] > 0
    layout = chat.js(
        "const r = root.querySelector('.hw-replies').getBoundingClientRect();"
        " const log = root.querySelector('.hw-log').getBoundingClientRect();"
        " return {replies: r.height, log: log.height};"
    )
    assert layout["log"] >= 120, layout  # the question above stays readable
