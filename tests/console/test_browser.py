"""The console in a real headless Chromium (Selenium) against a real `cerver serve`.

Each test leaves a screenshot of the page it checked in ``tests/artifacts/console/``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cerver.testing.mock_upstream import MockUpstream, Reply
from tests.conftest import ADMIN_KEY
from tests.console.conftest import ARTIFACTS

pytestmark = pytest.mark.e2e

WAIT_S = 30


def wait(browser: Any, condition: Any, timeout: float = WAIT_S) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(condition)


def find(browser: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, css)


def find_all(browser: Any, css: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return browser.find_elements(By.CSS_SELECTOR, css)


def shoot(browser: Any, name: str) -> None:
    """Save the whole page: the viewport is stretched to the page's height for the shot."""
    browser.execute_script("window.scrollTo(0, 0)")
    width = browser.execute_script("return window.innerWidth")
    height = browser.execute_script("return document.documentElement.scrollHeight")
    metrics = {"width": width, "height": min(height, 4000), "deviceScaleFactor": 1, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def sign_in(browser: Any, url: str, key: str = ADMIN_KEY) -> None:
    browser.get(f"{url}/console/login")
    find(browser, "#api_key").send_keys(key)
    find(browser, "form[action='/console/login'] button").click()


@pytest.fixture(scope="module")
def signed_in(browser: Any, console_url: str) -> Any:
    """The browser, signed in as the admin (each test may also run alone)."""
    sign_in(browser, console_url)
    wait(browser, lambda b: find_all(b, "table#sessions"))
    return browser


def new_session(api: httpx.Client, **body: Any) -> str:
    response = api.post("/v2/sessions", json={"compute": None, **body})
    assert response.status_code == 201, response.text
    return response.json()["session_id"]


def test_sign_in(browser: Any, console_url: str) -> None:
    sign_in(browser, console_url, "ck_not_a_key")
    error = wait(browser, lambda b: find_all(b, "#login-error"))[0]
    assert "Invalid or revoked API key" in error.text
    shoot(browser, "sign-in-refused")
    sign_in(browser, console_url)
    wait(browser, lambda b: find_all(b, "table#sessions"))
    assert find(browser, "h1").text == "Sessions"
    cookie = browser.get_cookie("cerver_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert browser.execute_script("return document.cookie") == ""  # scripts cannot read it


def test_sessions_table_filters_by_user(
    signed_in: Any, console_url: str, api: httpx.Client
) -> None:
    browser = signed_in
    alice = [new_session(api, user="alice", session_name=f"alice-{i}") for i in range(2)]
    bob = new_session(api, user="bob", session_name="bob-0")
    browser.get(f"{console_url}/console")
    wait(browser, lambda b: bob in b.page_source)
    field = find(browser, "#filters input[name='user']")
    field.clear()
    field.send_keys("alice")
    find(browser, "#filters button[type='submit']").click()
    wait(browser, lambda b: "user=alice" in b.current_url)
    rows = find_all(browser, "#sessions tbody tr[data-session-id]")
    shown = {row.get_attribute("data-session-id") for row in rows}
    assert set(alice) <= shown and bob not in shown
    assert {row.find_elements("css selector", "td")[0].text for row in rows} == {"alice"}
    shoot(browser, "sessions-filtered-by-user")


def test_a_turn_sent_from_the_session_page_streams_into_the_transcript(
    signed_in: Any, console_url: str, api: httpx.Client, mock_upstream: MockUpstream
) -> None:
    browser = signed_in
    sid = new_session(api, user="alice", session_name="streaming", compute={"provider": "local"})
    # A first turn with a tool call, so the page shows a folded call and its result.
    first = api.post(f"/v2/sessions/{sid}/run-llm", json={"input": "run `echo from-the-sandbox`"})
    assert first.json()["status"] == "completed"
    browser.get(f"{console_url}/console/sessions/{sid}")
    wait(browser, lambda b: find_all(b, "details[data-kind='tool_call']"))

    answer = "The console streams this answer into the transcript, half by half."
    mock_upstream.script(Reply(text=answer, chunk_delay_ms=600))
    find(browser, "#turn-input").send_keys("Say something slowly")
    find(browser, "#send-turn").click()
    streaming = wait(browser, lambda b: find_all(b, "#streaming"))[0]
    assert answer.startswith(streaming.find_element("css selector", ".text").text)
    shoot(browser, "session-streaming")

    def answered(b: Any) -> bool:
        bubbles = find_all(b, ".bubble.role-assistant[data-kind='text']")
        return any(answer in bubble.text for bubble in bubbles) and not find_all(b, "#streaming")

    wait(browser, answered)
    user_bubbles = [b.text for b in find_all(browser, ".bubble.role-user")]
    assert any("Say something slowly" in text for text in user_bubbles)
    entries = api.get(f"/v2/sessions/{sid}/messages").json()["messages"]
    assert entries[-1]["content"] == answer
    browser.refresh()  # the server-rendered transcript holds the same entries
    wait(browser, lambda b: answer in b.page_source)
    shoot(browser, "session")


def test_a_fanout_pick_records_a_human_verdict(
    signed_in: Any, console_url: str, api: httpx.Client
) -> None:
    browser = signed_in
    created = api.post(
        "/v2/fanouts",
        json={
            "input": "Name a colour.",
            "user": "alice",
            "variants": [
                {"harness": "anthropic"},
                {"harness": "openai", "model": "gpt-5"},
            ],
            "judge": {"type": "cheapest"},
        },
    )
    assert created.status_code == 201, created.text
    fanout = created.json()
    judged = fanout["verdict"]["winner_variant_id"]
    # The person overrules the judge: they pick the variant it did not.
    second = next(v["variant_id"] for v in fanout["variants"] if v["variant_id"] != judged)
    browser.get(f"{console_url}/console/fanouts/{fanout['fanout_id']}")
    wait(browser, lambda b: len(find_all(b, "article.variant")) == 2)
    assert len(find_all(browser, "article.variant .score")) == 2  # the judge's scores
    shoot(browser, "fanout-judged")
    find(browser, f"button[data-pick='{second}']").click()
    wait(browser, lambda b: find_all(b, f"article.variant.winner[data-variant-id='{second}']"))
    assert "Picked" in find(browser, f"button[data-pick='{second}']").text
    shoot(browser, "fanout-picked")
    record = api.get(f"/v2/fanouts/{fanout['fanout_id']}").json()
    assert record["winner_variant_id"] == second
    assert record["picked_by"] == "human"
    browser.get(f"{console_url}/console/sessions/{fanout['parent_session_id']}")
    kinds = [e.get_attribute("data-kind") for e in find_all(browser, "#transcript .entry")]
    assert "fanout" in kinds and kinds.count("verdict") == 2  # the judge's, then the person's
    shoot(browser, "session-with-fanout")


def test_another_accounts_session_shows_not_found(
    signed_in: Any, console_url: str, api: httpx.Client
) -> None:
    browser = signed_in
    other = api.post("/v2/accounts", json={"name": "someone else"}).json()
    theirs = httpx.post(
        f"{console_url}/v2/sessions",
        json={"compute": None, "user": "their-user"},
        headers={"Authorization": f"Bearer {other['api_key']}"},
    ).json()["session_id"]
    browser.get(f"{console_url}/console/sessions/{theirs}")
    box = wait(browser, lambda b: find_all(b, "#not-found"))[0]
    assert "Session not found" in box.text
    assert "their-user" not in browser.page_source
    shoot(browser, "not-found")


def test_an_action_that_fails_shows_the_api_message(
    signed_in: Any, console_url: str, api: httpx.Client
) -> None:
    browser = signed_in
    sid = new_session(api, user="bob", session_name="transcript-only")
    browser.get(f"{console_url}/console/sessions/{sid}")
    find(browser, "form[data-api$='/compute'] button").click()
    flash = wait(browser, lambda b: [f for f in find_all(b, "#flash") if f.is_displayed()])[0]
    assert flash.text  # the API's own detail and code
    assert api.get(f"/v2/sessions/{sid}").json()["provider"] is None  # nothing changed
    shoot(browser, "action-error")


def test_usage_and_providers_pages(signed_in: Any, console_url: str, api: httpx.Client) -> None:
    browser = signed_in
    sid = new_session(api, user="alice", session_name="usage")
    assert api.post(f"/v2/sessions/{sid}/run-llm", json={"input": "hi"}).status_code == 200
    spent = next(r for r in api.get("/v2/usage").json()["rows"] if r["key"] == "alice")
    budgets = {"users": {"alice": round(spent["cost_usd"] * 1.1, 6)}}
    assert api.put("/v2/account/budgets", json=budgets).status_code == 200
    browser.get(f"{console_url}/console/usage")
    wait(browser, lambda b: find_all(b, "table#usage"))
    assert "alice" in find(browser, "table#usage").text
    assert find_all(browser, "#usage .budget.near")  # alice is at 91% of her budget
    shoot(browser, "usage")
    browser.get(f"{console_url}/console/providers")
    wait(browser, lambda b: find_all(b, "table#providers"))
    assert "local" in find(browser, "table#providers").text
    find(browser, "#stress button[type='submit']").click()
    wait(browser, lambda b: find_all(b, "#stress-table"))
    shoot(browser, "providers")
