"""The console's browser tests: a real headless Chromium (Debian's `chromium`, driven by
Playwright for Python with the system browser) against the real `make dev` stack
(infra/local/dev.py: the emulator and hookline-local) and a receiver on 127.0.0.1.

`make test-console` runs them (and `make test-e2e`). Screenshots go to
$HOOKLINE_SCREENSHOTS (default target/console-screenshots); `make console-screenshots`
writes the README's into docs/.
"""

import os
import shutil
import sys
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import ADMIN, ROOT, project, receiver, stack_fixture  # noqa: E402,F401

stack = stack_fixture("console-stack.log")


@pytest.fixture(scope="session")
def browser():
    executable = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        raise RuntimeError("no chromium on PATH: `apt-get install chromium` (make test-console installs it when run as root)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield b
        b.close()


class Problems:
    """What the page should never do: a script error, a CSP refusal, a JavaScript dialog."""

    def __init__(self, page):
        self.items = []
        page.on("pageerror", lambda e: self.items.append(f"page error: {e}"))
        page.on("console", self.console)
        page.on("dialog", lambda d: (self.items.append(f"dialog: {d.message}"), d.dismiss()))

    def console(self, message):
        text = message.text
        if "Content Security Policy" in text or (message.type == "error" and "Failed to load resource" not in text):
            self.items.append(f"console {message.type}: {text}")


@pytest.fixture()
def context(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


@pytest.fixture()
def page(context):
    p = context.new_page()
    p.set_default_timeout(15_000)
    problems = Problems(p)
    yield p
    assert problems.items == [], problems.items


@pytest.fixture(scope="session")
def screenshots():
    where = Path(os.environ.get("HOOKLINE_SCREENSHOTS") or ROOT / "target" / "console-screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where
