"""report.html in a real browser: headless Chromium over the DevTools protocol (``--remote-debugging-pipe``,
driven with os.pipe: no client package). Loads the file in a 1400 px window and on a 390 px phone: no console
errors, every image decodes, one headline row per model, nothing overflows (the page, and every compact
table: the headline's efficiency and speed tables, published numbers, reproductions, models). At 1400 px the
compact tables are tables that fit their box; on the phone each of their rows is a card that fits the screen."""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from real_run import edit_json, gpu_like, read_jsonl, real_run, write_jsonl
from weights import relabelled

from bench.report import render_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")

CHECKS = """(async () => {
  const imgs = [...document.images];
  const splitWords = [];  // a word (no space, no hyphen inside) whose glyphs lie on more than one line
  for (const cell of document.querySelectorAll('td, th')) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.data.matchAll(/[^\\s-]+/g)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const lines = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
        if (lines.size > 1) splitWords.push(m[0]);
      }
    }
  }
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  const overflow = e => ({scroll: e.scrollWidth, client: e.clientWidth});
  return {
    images: imgs.map(i => ({alt: i.alt, width: i.naturalWidth})),
    splitWords,
    headlineRows: document.querySelectorAll('#headline tbody tr').length,
    headlineModels: [...document.querySelectorAll('#headline tbody tr td:first-child')].map(td => td.textContent),
    pageWidth: document.documentElement.scrollWidth,
    viewportWidth: document.documentElement.clientWidth,
    compact: [...document.querySelectorAll('table.cards')].map(t => ({
      id: t.id || t.querySelector('th').textContent,
      wrap: overflow(t.parentElement), table: overflow(t),
      rows: [...t.querySelectorAll('tbody tr')].map(tr => ({
        display: getComputedStyle(tr).display, ...overflow(tr),
        label: getComputedStyle(tr.querySelector('td'), '::before').content})),
    })),
    details: document.querySelectorAll('details').length,
    external: [...document.querySelectorAll('[src], [href]')]
      .map(e => e.getAttribute('src') || e.getAttribute('href')).filter(u => !/^(data:|#)/.test(u)),
  };
})()"""


class Browser:
    """Chromium with its DevTools protocol on fds 3 (commands in) and 4 (replies out), NUL-separated JSON."""

    def __init__(self, profile: Path, timeout_s: float = 30.0):
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire_fds() -> None:  # in the child: move the pipe ends to 3 and 4 (via high fds: no clobbering)
            a = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--remote-debugging-pipe",
                f"--user-data-dir={profile}", "about:blank"]
        self.proc = subprocess.Popen(args, preexec_fn=wire_fds, close_fds=False, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self.deadline = time.monotonic() + timeout_s
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read_message()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> None:
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._read_message())

    def close(self) -> None:
        try:
            os.write(self._to_child, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self._to_child)
            os.close(self._from_child)


def inspect_page(path: Path, profile: Path, width: int = 390, height: int = 844) -> dict[str, Any]:
    """Load ``path`` in a viewport ``width`` px wide (below 800: a phone); the page's checks plus the console
    errors it raised."""
    browser = Browser(profile)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": width < 800}, session)
        browser.send("Page.navigate", {"url": path.resolve().as_uri()}, session)
        browser.wait_for("Page.loadEventFired")
        result = browser.send("Runtime.evaluate", {"expression": CHECKS, "awaitPromise": True,
                                                   "returnByValue": True}, session)
        checks = result["result"]["value"]
        errors = []
        for e in browser.events:
            p = e.get("params", {})
            if e.get("method") == "Runtime.exceptionThrown":
                errors.append(p["exceptionDetails"].get("text", "exception"))
            elif e.get("method") == "Runtime.consoleAPICalled" and p.get("type") == "error":
                errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif e.get("method") == "Log.entryAdded" and p["entry"].get("level") == "error":
                errors.append(p["entry"].get("text", ""))
        return checks | {"errors": errors}
    finally:
        browser.close()


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    """A merged report with every compact table: trained models on a CPU and a GPU-like device, and a case
    relabelled as a reproduction of the SEW authors' ImageNet number (long source paths in the cells)."""
    root = tmp_path_factory.mktemp("browser")
    trained = relabelled(real_run(tmp_path_factory), root / "trained", "snnbench")
    official = relabelled(trained, root / "official", "sew-official", name="sew_resnet18", kwargs={})
    records = [r for r in read_jsonl(official / "results.jsonl") if r["model"]["label"] == "SEW w/16"]
    for r in records:
        r["model"]["label"] = "SEW-18 (authors' weights)"
        r["data"]["dataset"] = "imagenet"
        r.update(T=4 if r["T"] == 2 else r["T"])
    write_jsonl(official / "results.jsonl", records)
    edit_json(official / "run.json", run_id="official")
    return render_report([trained, gpu_like(trained, root / "gpu"), official], root / "report")[1]


@pytest.fixture(scope="module")
def priced(tmp_path_factory) -> int:
    """1 when the real run's energy records hold hardware profiles (newer plug-in): the report then has the
    "Energy with data movement" tables (one per model) and the energy-vs-rate plot."""
    return int(any(((r.get("metrics") or {}).get("energy") or {}).get("hardware")
                   for r in read_jsonl(real_run(tmp_path_factory) / "results.jsonl")))


def fits(box: dict[str, int]) -> bool:
    return box["scroll"] <= box["client"]


@pytest.mark.slow
def test_report_html_at_1400_px(report_html, priced, tmp_path):
    page = inspect_page(report_html, tmp_path / "profile", width=1400, height=900)
    assert page["errors"] == []
    assert len(page["images"]) == 9 + priced  # accuracy vs T, vs energy, 3 heatmaps, 3 ops charts, throughput
    assert all(img["width"] > 0 for img in page["images"]), page["images"]
    assert page["headlineRows"] == 3
    assert page["headlineModels"] == ["tiny", "SEW w/16", "SEW-18 (authors' weights)"]
    assert page["external"] == [] and page["details"] == 6  # the per-layer tables, folded
    assert page["pageWidth"] <= page["viewportWidth"]
    assert page["splitWords"] == []  # text wraps at spaces (and hyphens) only, never inside a word
    ids = [t["id"] for t in page["compact"]]
    assert [i for i in ids if not i.startswith("energy-hw-")] == ["model", "headline", "speed", "model",
                                                                  "reproduction"], ids  # models, headline, published
    # per model: its profiles table, then its split by layer kind
    assert [i for i in ids if i.startswith("energy-hw-")] == [f"energy-hw-{n}{part}" for n in range(1, 4)
                                                              for part in ("", "-layers")] * priced
    for table in page["compact"]:  # tables, not cards, and no sideways scrolling inside their box either
        assert {r["display"] for r in table["rows"]} == {"table-row"}, table["id"]
        assert fits(table["wrap"]), table


@pytest.mark.slow
def test_report_html_on_a_phone_turns_compact_tables_into_cards(report_html, priced, tmp_path):
    page = inspect_page(report_html, tmp_path / "profile", width=390, height=844)
    assert page["errors"] == [] and len(page["images"]) == 9 + priced
    assert page["pageWidth"] <= page["viewportWidth"]
    for table in page["compact"]:
        assert fits(table["wrap"]) and fits(table["table"]), table
        for row in table["rows"]:
            assert row["display"] == "block" and fits(row), (table["id"], row)
            assert row["label"].strip('"') in ("model", "case", "profile", "layer kind"), row  # cells name columns


@pytest.mark.slow
def test_checker_sees_broken_images_and_console_errors(tmp_path):
    """The harness itself can fail: a broken image and a console error are both reported."""
    page_file = tmp_path / "broken.html"
    page_file.write_text('<!DOCTYPE html><html><body><img src="data:image/png;base64,AAAA" alt="bad">'
                         '<script>console.error("boom")</script></body></html>', encoding="utf-8")
    page = inspect_page(page_file, tmp_path / "profile")
    assert page["images"] == [{"alt": "bad", "width": 0}]
    assert any("boom" in e for e in page["errors"])
    assert page["headlineRows"] == 0
