"""`upgrade report`: the HTML page and Markdown of a run made by the real driver (fake hosts, simulated clock),
checked by content, and opened in headless Chromium (Debian's package, installed by scripts/setup.sh)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from orchestrator.adapters.journal import Journal
from orchestrator.planner import Plan
from orchestrator.report.build import build_report
from orchestrator.report.render import html_page, markdown
from tests.support.sim_run import FAILURE, simulated_run

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Plan]:
    return simulated_run(tmp_path_factory.mktemp("run"))


class Page(HTMLParser):
    """What the page holds, as a browser would parse it: tags, the steps' bars, the text of each table row."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.bars: list[dict[str, str | None]] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "rect" and dict(attrs).get("data-step"):
            self.bars.append(dict(attrs))
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def page_of(state: Path, run_id: str, plan: Plan | None) -> tuple[str, Page]:
    with Journal(state / "journal.db") as journal:
        text = html_page(build_report(journal, run_id, plan))
    page = Page()
    page.feed(text)
    return text, page


def test_the_page_shows_timeline_gates_failures_and_changes(made: tuple[Path, str, Plan]) -> None:
    state, run_id, plan = made
    text, page = page_of(state, run_id, plan)
    with Journal(state / "journal.db") as journal:
        ended = [e for e in journal.events(run_id) if e.kind == "step_end"]
    # one bar per step that ran, each titled with its host, step and duration
    assert len(page.bars) == len(ended)
    assert {str(b["data-step"]) for b in page.bars} == {str(e.step) for e in ended}
    assert re.search(r"<title>h2 03-driver \(upgrade\): failed, \d+:\d\d - E: Sub-process", text)
    rows = {tuple(r) for r in page.rows}
    # gates against baselines: h1 had one from an earlier run; h3 had none, so its figure became it
    assert ("h1", "H100", "51.00", "52.00", "-", "98%", "") in rows
    assert ("h3", "H100", "49.50", "- (this figure is now its baseline)", "-", "-", "") in rows
    h4 = next(r for r in page.rows if r[:2] == ["h4", "H100"])
    assert h4[2:6] == ["21.00", "50.00", "35.50", "42%"] and "42% of this host's baseline 50" in h4[6]
    # failures with their reasons; host text stays text (the page has no script element at all)
    failed = {r[0]: r for r in page.rows if len(r) == 5 and r[2] == "rolled_back"}
    assert set(failed) == {"h2", "h4"} and FAILURE in failed["h2"][3] and "straggler" in failed["h4"][3]
    assert "script" not in page.tags and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    # what changed: the stacks the hosts reported (precheck against the last verify)
    assert ("h1", "train", "H100", "done", "driver", "535.183.01", "580.95.05", "reported") in rows
    assert ("h2", "train", "H100", "rolled_back", "nothing changed") in rows
    # self-contained: nothing is fetched
    assert not ({"script", "link", "img", "iframe"} & set(page.tags))
    assert re.findall(r"https?://[^\s\"']+", text) == ["http://www.w3.org/2000/svg"]


def test_without_its_plan_the_page_says_what_is_missing(made: tuple[Path, str, Plan]) -> None:
    state, run_id, _plan = made
    text, page = page_of(state, run_id, None)
    assert "could not be read: pools, GPU models and budgets are missing" in text
    assert len(page.bars) > 0 and any(r[:1] == ["h2"] for r in page.rows)


def test_markdown_summary_keeps_host_text_as_data(made: tuple[Path, str, Plan]) -> None:
    state, run_id, plan = made
    with Journal(state / "journal.db") as journal:
        text = markdown(build_report(journal, run_id, plan))
    assert f"## Run {run_id}: rolled\\_back" in text
    assert "| wave-2 | passed | 2 | 2 / 2 | h2: 50.00 / -, h4: 21.00 / 50.00 |" in text
    row = next(line for line in text.splitlines() if line.startswith("| h2 | wave-2 | rolled\\_back |"))
    assert "&lt;script&gt;" in row and "\\| \\*bold\\*" in row and "<" not in row
    assert row.count(" | ") == 3  # the pipe in the message does not open a column


def test_cli_writes_both_files_and_refuses_a_missing_journal(made: tuple[Path, str, Plan], tmp_path: Path) -> None:
    state, run_id, _plan = made
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "orchestrator", "report", "--state-dir", str(state), "-o", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert (out / f"{run_id}.html").read_text().startswith("<!DOCTYPE html>")
    assert (out / f"{run_id}.md").read_text().startswith(f"## Run {run_id}")
    missing = subprocess.run([sys.executable, "-m", "orchestrator", "report", "--state-dir", str(tmp_path / "none")],
                             capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert missing.returncode == 2 and "no journal yet" in missing.stderr and "Traceback" not in missing.stderr


def test_chromium_renders_the_page(made: tuple[Path, str, Plan], tmp_path: Path) -> None:
    """The browser parses the inline SVG into as many bars as the run had steps, and draws a non-empty page."""
    state, run_id, plan = made
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: run scripts/setup.sh (it installs Debian's chromium package)"
    text, page = page_of(state, run_id, plan)
    html_file = tmp_path / "report.html"
    html_file.write_text(text)
    with tempfile.TemporaryDirectory() as profile:
        flags = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
        dom = subprocess.run([*flags, "--dump-dom", html_file.as_uri()], capture_output=True, text=True, timeout=120,
                             check=False)
        shot = tmp_path / "report.png"
        subprocess.run([*flags, "--window-size=1280,1600", f"--screenshot={shot}", html_file.as_uri()],
                       capture_output=True, text=True, timeout=120, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("data-step=") == len(page.bars) > 0
    assert f"Run {run_id}" in dom.stdout
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a blank 1280x1600 PNG is a few KB
