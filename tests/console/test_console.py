"""The console in a browser, as a user would drive it (SPEC §11). Elements are found by
their accessible names, the labels §11 names."""

import re
import time

from playwright.sync_api import expect

from conftest import ADMIN

XSS_NAME = '<img src=x onerror="window.__xss = 1">'


def sign_in(page, stack, project, key=ADMIN):
    page.goto(f"{stack.url}/console")
    page.get_by_label("API key", exact=True).fill(key)
    if project is not None:
        page.get_by_label("Project", exact=True).fill(project)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("table", name="Webhooks")).to_be_visible()


def row(page, name):
    return page.get_by_role("row").filter(has=page.get_by_role("button", name=name, exact=True))


def expect_error(page, control, text):
    """The control's error message (the first element its aria-describedby names) says
    `text` (a string or a pattern), and the control is marked invalid."""
    message = control.get_attribute("aria-describedby").split()[0]
    expect(page.locator(f"#{message}")).to_contain_text(text)
    expect(control).to_have_attribute("aria-invalid", "true")


def test_sign_in_keeps_the_key_in_session_storage_only(page, stack, project, context):
    page.goto(f"{stack.url}/console")
    # A wrong key is told at its field; the admin key needs a project.
    page.get_by_label("API key", exact=True).fill("hlk_nope")
    page.get_by_label("Project", exact=True).fill(project)
    page.get_by_role("button", name="Sign in").click()
    expect_error(page, page.get_by_label("API key", exact=True), "not valid")
    page.get_by_label("API key", exact=True).fill(ADMIN)
    page.get_by_label("Project", exact=True).fill("")
    page.get_by_role("button", name="Sign in").click()
    expect_error(page, page.get_by_label("Project", exact=True), "name one")
    page.get_by_label("Project", exact=True).fill(project)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("table", name="Webhooks")).to_be_visible()
    expect(page.get_by_label("Project", exact=True)).to_have_text(project)
    assert page.evaluate("sessionStorage.getItem('hookline.credential')") == ADMIN
    assert ADMIN not in page.evaluate("JSON.stringify(localStorage)")
    assert project in page.evaluate("localStorage.getItem('hookline.projects')")
    assert context.cookies() == []
    assert ADMIN not in page.url
    # A project key implies its project.
    status, key = stack.api("POST", f"/v1/projects/{project}-k/keys")
    assert status == 201
    page.get_by_role("button", name="Sign out").click()
    assert page.evaluate("sessionStorage.getItem('hookline.credential')") is None
    page.get_by_label("API key", exact=True).fill(key["key"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_label("Project", exact=True)).to_have_text(f"{project}-k")
    # No Keys page for a project key; its own portal links instead.
    expect(page.get_by_role("button", name="Keys")).to_have_count(0)
    expect(page.get_by_role("button", name="Portal links")).to_be_visible()


def test_the_table_shows_webhooks_with_switches_and_pages(page, stack, project, receiver, screenshots):
    for i in range(21):
        stack.webhook(project, name=f"hook-{i:02}", url=f"{receiver.url}/t/{i}", events=["order.placed", "order.paid"])
    stack.webhook(project, name="stores", url=f"{receiver.url}/t/s", events=["review.created"], channels=["store-1"])
    sign_in(page, stack, project)
    table = page.get_by_role("table", name="Webhooks")
    for header in ["On/Off", "Name", "URL", "Event Trigger", "Created", "Health"]:
        expect(table.get_by_role("columnheader", name=header, exact=True)).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(20)
    first = row(page, "hook-00")
    expect(first).to_contain_text(f"{receiver.url}/t/0")
    expect(first).to_contain_text("order.placed, order.paid")
    expect(first).to_contain_text("No attempts in 24 h")
    # The switch toggles `enabled` at once.
    switch = first.get_by_role("switch")
    expect(switch).to_have_attribute("aria-checked", "true")
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "false")
    webhook_id = next(w["id"] for w in stack.api("GET", f"/v1/projects/{project}/webhooks?limit=100")[1]["data"] if w["name"] == "hook-00")
    assert stack.api("GET", f"/v1/projects/{project}/webhooks/{webhook_id}")[1]["enabled"] is False
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "true")
    assert stack.api("GET", f"/v1/projects/{project}/webhooks/{webhook_id}")[1]["enabled"] is True
    page.screenshot(path=str(screenshots / "console-webhooks.png"))
    # Pages.
    page.get_by_role("button", name="Next").click()
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(row(page, "stores")).to_contain_text("channels: store-1")
    page.get_by_role("button", name="Previous").click()
    expect(table.locator("tbody tr")).to_have_count(20)


def test_register_with_a_generated_token_then_an_event_arrives_with_it(page, stack, project, receiver):
    sign_in(page, stack, project)
    page.get_by_role("button", name="Register Webhook").click()
    dialog = page.get_by_role("dialog", name="Register Webhook")
    dialog.get_by_label("Name", exact=True).fill("orders")
    dialog.get_by_label("URL", exact=True).fill(f"{receiver.url}/token/{project}")
    dialog.get_by_label("Event types", exact=True).fill("order.placed")
    dialog.get_by_role("button", name="Generate").click()
    token = dialog.get_by_label("Token", exact=True).input_value()
    assert len(token) >= 32
    expect(dialog.get_by_label("Auth", exact=True)).to_have_value("bearer")
    dialog.get_by_role("button", name="OK").click()
    shown = page.get_by_role("dialog", name="Webhook registered")
    assert shown.get_by_label("Signing secret", exact=True).input_value().startswith("whsec_")
    expect(shown.get_by_role("button", name="Copy signing secret")).to_be_visible()
    shown.get_by_role("button", name="Done").click()
    expect(row(page, "orders")).to_be_visible()
    stack.event(project, {"type": "order.placed", "data": {"total": 120}})
    got = receiver.wait_for(f"/token/{project}")
    assert got[0]["headers"]["authorization"] == f"Bearer {token}"
    assert got[0]["headers"]["webhook-signature"].startswith("v1,")


def test_a_template_error_is_shown_at_its_field_and_nothing_is_stored(page, stack, project):
    sign_in(page, stack, project)
    page.get_by_role("button", name="Register Webhook").click()
    dialog = page.get_by_role("dialog", name="Register Webhook")
    dialog.get_by_label("Name", exact=True).fill("broken")
    url = dialog.get_by_label("URL", exact=True)
    url.fill("https://example.com/{{ user.id")
    dialog.get_by_label("Event types", exact=True).fill("*")
    dialog.get_by_role("button", name="OK").click()
    expect_error(page, url, re.compile(r"line 1, column \d+"))
    expect(url).to_be_focused()
    # A body field's template error lands at the JSON fields.
    url.fill("https://example.com/ok")
    dialog.get_by_label("Body", exact=True).select_option("json")
    dialog.get_by_role("button", name="Add field").click()
    dialog.get_by_label("Field name 1", exact=True).fill("email")
    dialog.get_by_label("Field value 1", exact=True).fill("{% if %}")
    dialog.get_by_role("button", name="OK").click()
    expect(dialog.get_by_label("Field value 1", exact=True)).to_be_focused()
    expect_error(page, dialog.get_by_label("Field value 1", exact=True), re.compile(r"line 1, column \d+"))
    assert stack.api("GET", f"/v1/projects/{project}/webhooks")[1]["data"] == []
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)


def test_details_preview_test_send_attempts_and_resend(page, stack, project, receiver, screenshots):
    hook = stack.webhook(project, name="crm", url=f"{receiver.url}/crm/{project}/{{{{ event.type }}}}", events=["*"],
                         headers={"X-Campaign": "{{ data.campaign | default: 'none' }}"},
                         body={"type": "json", "fields": {"total": "{{ data.total }}"}})
    stack.event(project, {"type": "order.placed", "data": {"total": 5, "campaign": "spring"}})
    receiver.wait_for(f"/crm/{project}/order.placed")
    sign_in(page, stack, project)
    page.get_by_role("button", name="crm", exact=True).click()
    dialog = page.get_by_role("dialog", name="Webhook Details")
    preview = dialog.get_by_role("region", name="Preview")
    expect(preview).to_contain_text(f"POST {receiver.url}/crm/{project}/")
    # The live preview follows unsaved edits.
    dialog.get_by_label("URL", exact=True).fill(f"{receiver.url}/crm/{project}/draft")
    expect(preview).to_contain_text(f"{receiver.url}/crm/{project}/draft")
    dialog.get_by_label("Preview event (JSON)", exact=True).fill('{"type": "order.paid", "data": {"total": 77}}')
    expect(preview).to_contain_text('"total":"77"')
    assert stack.api("GET", f"/v1/projects/{project}/webhooks/{hook['id']}")[1]["url"] == hook["url"]
    # Test: the receiver's status, headers, body and latency.
    dialog.get_by_role("button", name="Test").click()
    result = dialog.get_by_role("region", name="Test result")
    expect(result).to_contain_text("Delivered — HTTP 200")
    expect(result).to_contain_text(re.compile(r"in \d+ ms"))
    expect(result.get_by_label("Response body", exact=True)).to_have_text("ok")
    assert receiver.to(f"/crm/{project}/draft")
    # The attempt log: the delivery of the event.
    attempts = dialog.get_by_role("table", name="Attempts")
    expect(attempts.locator("tbody tr")).to_have_count(1)
    expect(attempts).to_contain_text("delivered")
    dialog.get_by_label("Status", exact=True).select_option("failed")
    expect(attempts.locator("tbody tr")).to_have_count(0)
    page.screenshot(path=str(screenshots / "console-details.png"))
    # Deliveries, and Resend: the same delivery again, same webhook-id.
    dialog.get_by_role("tab", name="Deliveries").click()
    deliveries = dialog.get_by_role("table", name="Deliveries")
    expect(deliveries.locator("tbody tr")).to_have_count(1)
    first = receiver.to(f"/crm/{project}/order.placed")[0]
    deliveries.get_by_role("button", name=re.compile("^Resend ")).click()
    again = receiver.wait_for(f"/crm/{project}/order.placed", count=2)
    assert again[1]["headers"]["webhook-id"] == first["headers"]["webhook-id"]
    # Recover since a time: nothing failed, nothing sent again.
    dialog.get_by_label("Recover since", exact=True).fill("2026-01-01T00:00:00")
    dialog.get_by_role("button", name="Recover").click()
    expect(dialog).to_contain_text("0 deliveries sent again.")
    # Cancel leaves the draft unsaved.
    dialog.get_by_role("button", name="Cancel").click()
    assert stack.api("GET", f"/v1/projects/{project}/webhooks/{hook['id']}")[1]["url"] == hook["url"]


def test_edits_save_conflicts_offer_a_reload_and_rotate_and_delete_work(page, stack, project, receiver):
    hook = stack.webhook(project, name="edit-me", url=f"{receiver.url}/e", events=["a.b"], headers={"X-Old": "1"})
    sign_in(page, stack, project)
    page.get_by_role("button", name="edit-me").click()
    dialog = page.get_by_role("dialog", name="Webhook Details")
    dialog.get_by_label("Name", exact=True).fill("edited")
    dialog.get_by_label("Channels", exact=True).fill("web, app")
    dialog.get_by_label("Filter", exact=True).fill("data.total > 100")
    dialog.get_by_role("button", name="Remove header 1").click()
    dialog.get_by_role("button", name="OK").click()
    expect(row(page, "edited")).to_be_visible()
    saved = stack.api("GET", f"/v1/projects/{project}/webhooks/{hook['id']}")[1]
    assert (saved["name"], saved["channels"], saved["filter"], saved["headers"]) == ("edited", ["web", "app"], "data.total > 100", {})
    # Changed elsewhere meanwhile: a 409, with a Reload.
    page.get_by_role("button", name="edited").click()
    dialog = page.get_by_role("dialog", name="Webhook Details")
    status, _ = stack.api("PATCH", f"/v1/projects/{project}/webhooks/{hook['id']}", {"name": "from-elsewhere"})
    assert status == 200
    dialog.get_by_label("Timeout (seconds)", exact=True).fill("12")
    dialog.get_by_role("button", name="OK").click()
    expect(dialog.get_by_role("alert")).to_contain_text("changed elsewhere")
    dialog.get_by_role("button", name="Reload").click()
    dialog = page.get_by_role("dialog", name="Webhook Details")
    expect(dialog.get_by_label("Name", exact=True)).to_have_value("from-elsewhere")
    # Rotate: the new secret once, with a copy button.
    dialog.get_by_role("button", name="Rotate").click()
    secret = dialog.get_by_label("New signing secret", exact=True)
    assert secret.input_value().startswith("whsec_") and "*" not in secret.input_value()
    dialog.get_by_role("button", name="Copy new signing secret").click()
    # Delete asks, then deletes.
    dialog.get_by_role("button", name="Delete", exact=True).click()
    dialog.get_by_role("button", name="Delete webhook").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_role("button", name="from-elsewhere")).to_have_count(0)
    assert stack.api("GET", f"/v1/projects/{project}/webhooks/{hook['id']}")[0] == 404


def test_a_hostile_name_and_receiver_body_stay_text(page, stack, project, receiver):
    stack.webhook(project, name=XSS_NAME, url=f"{receiver.url}/xss/{project}", events=["*"])
    sign_in(page, stack, project)
    name = page.get_by_role("button", name=XSS_NAME)
    expect(name).to_have_text(XSS_NAME)
    name.click()
    dialog = page.get_by_role("dialog", name="Webhook Details")
    dialog.get_by_role("button", name="Test").click()
    body = dialog.get_by_label("Response body", exact=True)
    expect(body).to_contain_text("<script>window.__xss = 1</script>")
    page.wait_for_timeout(500)
    assert page.evaluate("window.__xss") is None
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("script:not([src])").count() == 0
    # The policy the page was served with.
    response = page.request.get(f"{stack.url}/console")
    policy = response.headers["content-security-policy"]
    for directive in ["default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"]:
        assert directive in policy


def test_portal_links_full_read_only_and_expired(page, stack, project, receiver, context):
    stack.webhook(project, name="theirs", url=f"{receiver.url}/p", events=["*"])
    stack.event(project, {"type": "a.b"})
    receiver.wait_for("/p")
    status, link = stack.api("POST", f"/v1/projects/{project}/portal", {})
    assert status == 201 and link["url"].startswith(f"{stack.url}/console#token=hlp_")
    page.goto(link["url"])
    expect(page.get_by_role("table", name="Webhooks")).to_be_visible()
    assert "#token" not in page.url and "hlp_" not in page.url
    assert page.evaluate("sessionStorage.getItem('hookline.credential')") == link["token"]
    expect(page.get_by_label("Project", exact=True)).to_have_text(project)
    expect(page.get_by_text("Portal link until")).to_be_visible()
    expect(page.get_by_role("button", name="Register Webhook")).to_be_visible()
    expect(page.get_by_role("button", name="Keys")).to_have_count(0)
    expect(page.get_by_role("button", name="Portal links")).to_have_count(0)
    # The same token reloaded from the session, not the URL.
    page.reload()
    expect(page.get_by_role("table", name="Webhooks")).to_be_visible()

    # Read-only: switches disabled; no Register, OK, Delete, Rotate, Test or Resend.
    status, read = stack.api("POST", f"/v1/projects/{project}/portal", {"read_only": True})
    assert status == 201
    page.goto(read["url"])
    expect(page.get_by_text("Read-only", exact=True)).to_be_visible()
    expect(row(page, "theirs").get_by_role("switch")).to_be_disabled()
    expect(page.get_by_role("button", name="Register Webhook")).to_have_count(0)
    page.get_by_role("button", name="theirs").click()
    dialog = page.get_by_role("dialog", name="Webhook Details")
    expect(dialog.get_by_role("region", name="Preview")).to_contain_text(f"POST {receiver.url}/p")
    for absent in ["OK", "Delete", "Rotate", "Test"]:
        expect(dialog.get_by_role("button", name=absent, exact=True)).to_have_count(0)
    expect(dialog.get_by_label("Name", exact=True)).to_be_disabled()
    expect(dialog.get_by_role("table", name="Attempts").locator("tbody tr")).to_have_count(1)
    dialog.get_by_role("tab", name="Deliveries").click()
    expect(dialog.get_by_role("table", name="Deliveries").locator("tbody tr")).to_have_count(1)
    expect(dialog.get_by_role("button", name=re.compile("^Resend"))).to_have_count(0)
    expect(dialog.get_by_role("button", name="Recover")).to_have_count(0)
    dialog.get_by_role("button", name="Close").click()

    # Expired, and unknown: "This link has expired" and the sign-in form.
    status, short = stack.api("POST", f"/v1/projects/{project}/portal", {"ttl_seconds": 1})
    assert status == 201
    time.sleep(2.1)
    for url in [short["url"], f"{stack.url}/console#token=hlp_01m8zzzzzzzzzzzzzzzzzzzzzz_{'x' * 43}"]:
        page.goto(url)
        expect(page.get_by_role("alert")).to_have_text("This link has expired")
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        assert "#token" not in page.url
        assert page.evaluate("sessionStorage.getItem('hookline.credential')") is None


def test_links_and_keys_from_the_console(page, stack, project):
    sign_in(page, stack, project)
    page.get_by_role("button", name="Keys").click()
    # A name the API refuses is told at its field, and makes no key.
    page.get_by_label("Key name", exact=True).fill("x" * 99 + "é")
    page.get_by_role("button", name="Create project key").click()
    expect_error(page, page.get_by_label("Key name", exact=True), "at most 100 bytes")
    page.get_by_label("Key name", exact=True).fill("ci runner")
    page.get_by_role("button", name="Create project key").click()
    key = page.get_by_label("Project API key", exact=True).input_value()
    assert key.startswith("hlk_")
    keys = page.get_by_role("table", name="API keys and portal links")
    expect(keys.locator("tbody tr")).to_have_count(1)
    expect(keys.locator("tbody tr")).to_contain_text("ci runner")
    expect(page.get_by_label("Key name", exact=True)).to_have_value("")
    page.get_by_label("Read-only link", exact=True).check()
    page.get_by_role("button", name="Create portal link").click()
    url = page.get_by_label("Portal link", exact=True).input_value()
    assert "/console#token=hlp_" in url
    expect(keys.locator("tbody tr")).to_have_count(2)
    expect(keys).to_contain_text("Portal link")
    assert stack.api("GET", "/v1/portal/session", key=url.split("token=")[1])[1]["read_only"] is True
    # Revoke the key: it stops working.
    assert stack.api("GET", f"/v1/projects/{project}/webhooks", key=key)[0] == 200
    keys.locator("tbody tr").filter(has_text="Project key").get_by_role("button", name=re.compile("^Revoke")).click()
    expect(keys.locator("tbody tr")).to_have_count(1)
    assert stack.api("GET", f"/v1/projects/{project}/webhooks", key=key)[0] == 401


def test_the_events_page_lists_events_and_an_events_deliveries(page, stack, project, receiver):
    stack.webhook(project, name="ev", url=f"{receiver.url}/ev", events=["*"])
    stack.event(project, {"id": "ev-first", "type": "order.placed", "channel": "web"})
    stack.event(project, {"id": "ev-second", "type": "order.paid"})
    sign_in(page, stack, project)
    page.get_by_role("button", name="Events").click()
    events = page.get_by_role("table", name="Events")
    expect(events.locator("tbody tr")).to_have_count(2)
    expect(events).to_contain_text("web")
    page.get_by_label("Event type", exact=True).fill("order.paid")
    page.get_by_role("button", name="Filter").click()
    expect(events.locator("tbody tr")).to_have_count(1)
    page.get_by_role("button", name="ev-second").click()
    expect(page.get_by_role("table", name="Deliveries of the event").locator("tbody tr")).to_have_count(1)
    page.get_by_label("Event ID", exact=True).fill("no-such-event")
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_role("alert")).to_contain_text("No event no-such-event")


def test_a_filter_reads_on_past_a_stretch_with_nothing_of_its_type(page, stack, project):
    """A filtered listing reads a bounded stretch of the table a request (20 pages: 420
    events at the console's 20 a page) and may answer an empty page with a cursor; the
    pager reads on by itself rather than show "nothing" while the event is further on."""
    stack.event(project, {"id": "rare-1", "type": "rare.kind"})
    for i in range(430):
        stack.event(project, {"id": f"common-{i}", "type": "common.kind"})
    # The API's first answer is empty with a cursor: the case the pager must carry on.
    status, first = stack.api("GET", f"/v1/projects/{project}/events?type=rare.kind&limit=20")
    assert status == 200 and first["data"] == [] and first["next_cursor"], first
    sign_in(page, stack, project)
    page.get_by_role("button", name="Events").click()
    page.get_by_label("Event type", exact=True).fill("rare.kind")
    page.get_by_role("button", name="Filter").click()
    events = page.get_by_role("table", name="Events")
    expect(events.locator("tbody tr")).to_have_count(1)
    expect(events).to_contain_text("rare-1")
    expect(page.get_by_text("None in what was read so far")).to_have_count(0)


def test_it_is_usable_by_keyboard(page, stack, project):
    page.goto(f"{stack.url}/console")
    expect(page.get_by_label("API key", exact=True)).to_be_focused()
    page.keyboard.type(ADMIN)
    page.keyboard.press("Tab")
    page.keyboard.press("Tab") if not page.get_by_label("Project", exact=True).evaluate("e => e === document.activeElement") else None
    page.keyboard.type(project)
    page.keyboard.press("Enter")
    expect(page.get_by_role("table", name="Webhooks")).to_be_visible()
    register = page.get_by_role("button", name="Register Webhook")
    for _ in range(20):
        if register.evaluate("e => e === document.activeElement"):
            break
        page.keyboard.press("Tab")
    expect(register).to_be_focused()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Register Webhook")
    expect(dialog.get_by_label("Name", exact=True)).to_be_focused()
    page.keyboard.type("typed")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)


def test_at_390_px_nothing_scrolls_sideways(browser, stack, project, receiver, screenshots):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    stack.webhook(project, name="a-rather-long-webhook-name-for-a-phone", url=f"{receiver.url}/a/very/long/path/that/would/overflow/{{{{ user.id }}}}", events=["order.placed", "order.cancelled", "subscription.renewed"])
    sign_in(page, stack, project)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    target = row(page, "a-rather-long-webhook-name-for-a-phone")
    for element in [target.get_by_role("switch"), target.get_by_role("button", name="a-rather-long-webhook-name-for-a-phone")]:
        expect(element).to_be_in_viewport()
        box = element.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    page.get_by_role("button", name="Register Webhook").click()
    dialog = page.get_by_role("dialog", name="Register Webhook")
    expect(dialog).to_be_visible()
    assert dialog.evaluate("d => d.scrollWidth <= d.clientWidth"), "the dialog scrolls sideways"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    dialog.get_by_role("button", name="Cancel").click()
    page.screenshot(path=str(screenshots / "console-390.png"))
    context.close()
