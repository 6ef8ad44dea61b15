"""The HTML report in a real browser (headless Chromium): it renders, logs nothing, runs nothing.

Skipped, with the reason, only when no Chromium binary exists (`make browser-deps` installs the
Debian packages chromium and chromium-driver). Chromium logs every console message of the page
(errors, CSP violations, uncaught exceptions) to stderr as `INFO:CONSOLE` lines; a report has no
scripts at all, so any such line is a failure.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_report import XSS, build_study

from probe.report import write_report

pytestmark = pytest.mark.browser

CHROMIUM = next(
    (p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p),
    None,
)
REFUSAL_RED = (178, 24, 43)  # figures.COLOURS["refusal"]: the fill of a 100% refusal cell


def chromium(url: str, profile: Path, *extra: str) -> tuple[str, str]:
    """Run headless Chromium on `url` with no network side traffic; return (stdout, stderr)."""
    if CHROMIUM is None:
        pytest.skip("no chromium binary: install Debian's chromium (make browser-deps)")
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *extra,
        url,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    return done.stdout, done.stderr


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if CHROMIUM is None:
        pytest.skip("no chromium binary: install Debian's chromium (make browser-deps)")
    root = tmp_path_factory.mktemp("browser")
    study = build_study(root / "study.db")
    return write_report(study, root / "report").html


def test_harness_sees_console_errors_and_scripts(tmp_path: Path) -> None:
    """The checks below are only worth something if they would catch a failure."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><title>before</title><body><script>"
        "console.error('boom'); document.title = 'after';</script></body>"
    )
    dom, stderr = chromium(page.as_uri(), tmp_path / "profile", "--dump-dom")
    assert any("boom" in line for line in console_lines(stderr)), stderr[-2000:]
    assert "<title>after</title>" in dom


def test_report_renders_without_console_errors(report: Path, tmp_path: Path) -> None:
    dom, stderr = chromium(report.as_uri(), tmp_path / "profile", "--dump-dom")
    assert console_lines(stderr) == []
    assert re.search(r'<svg class="heatmap"[^>]*>', dom)
    assert dom.count('class="heatmap"') >= 5 and "<rect" in dom
    assert "Benign controls (all topics)" in dom and "Methodology" in dom


def test_payload_in_a_reply_does_not_execute(report: Path, tmp_path: Path) -> None:
    """A reply carrying <script> and <img onerror> stays text. Checked twice: as shipped, and
    with the page's Content-Security-Policy removed, so escaping alone is shown to hold."""
    html = report.read_text(encoding="utf-8")
    no_csp = tmp_path / "no-csp.html"
    no_csp.write_text(
        re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html), encoding="utf-8"
    )
    assert "Content-Security-Policy" not in no_csp.read_text(encoding="utf-8")
    for i, page in enumerate((report, no_csp)):
        dom, stderr = chromium(page.as_uri(), tmp_path / f"profile{i}", "--dump-dom")
        title = re.search(r"<title>([^<]*)</title>", dom)
        assert title and title.group(1).startswith("probe report"), title
        assert "PWNED" not in (title.group(1) if title else "")
        assert not re.search(r"<body[^>]*data-pwned", dom)
        assert not re.search(r'<img[^>]*src="x"', dom)
        assert "&lt;script&gt;document.title='PWNED'&lt;/script&gt;" in dom  # shown as text
        assert console_lines(stderr) == [], stderr[-2000:]
    assert XSS not in html


def test_screenshot_shows_the_heatmaps(report: Path, tmp_path: Path) -> None:
    image = pytest.importorskip("PIL.Image")
    shot = tmp_path / "report.png"
    chromium(
        report.as_uri(),
        tmp_path / "profile",
        "--hide-scrollbars",
        "--window-size=1280,5000",
        f"--screenshot={shot}",
    )
    assert shot.exists(), "chromium wrote no screenshot"
    with image.open(shot) as img:
        rgb = img.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50, "blank screenshot"
    near = sum(
        n for n, c in colours if all(abs(a - b) <= 6 for a, b in zip(c, REFUSAL_RED, strict=True))
    )
    assert near > 500, "no 100% refusal cell visible"
