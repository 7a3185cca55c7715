"""The monitoring notebook in a real browser: JupyterLab headless, Debian's Chromium driven by Playwright.

It opens a copy of docs/notebooks/monitoring.ipynb, runs every cell, and checks what a person would
see: the monitor's panel renders (latency charts, breaker timeline and probe table visible, with a
non-zero size), it updates in place while the chaos cell runs and its breaker timeline shows the
open state, the controls render, no cell shows an error or stderr, the browser logs no error, and the
panel's text is readable (contrast ≥ 4.5) in JupyterLab's light and dark themes. It saves screenshots
of the final panel in both themes to `--shots` (default docs/notebooks/, which the README shows;
scripts/test writes them under target/ instead, to leave the committed ones alone).

    target/venv/bin/python tests/python/run_browser.py [--shots DIR] [--chromium /usr/bin/chromium]
"""

import argparse
import json
import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

import nbformat
from playwright.sync_api import sync_playwright

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "docs" / "notebooks" / "monitoring.ipynb"
SHOT_NAMES = {"light": "monitor.png", "dark": "monitor-dark.png"}
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(workdir: pathlib.Path, port: int, token: str) -> subprocess.Popen:
    with open(workdir / "lab.log", "w") as log:  # the child keeps its own descriptor
        return _start_lab(workdir, port, token, log)


def _start_lab(workdir: pathlib.Path, port: int, token: str, log: Any) -> subprocess.Popen:
    lab = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--ServerApp.port={port}",
         "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={workdir}",
         "--ServerApp.allow_root=True", "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class="
         "jupyterlab.NeverCheckForUpdate", "--ServerApp.open_browser=False"],
        stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
        env={**os.environ, "JUPYTER_CONFIG_DIR": str(workdir / "config"), "JUPYTER_RUNTIME_DIR": str(workdir / "runtime")},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=1)
            return lab
        except OSError:
            if lab.poll() is not None:
                break
            time.sleep(0.2)
    lab.kill()
    lab.wait()
    raise SystemExit(f"JupyterLab did not start:\n{(workdir / 'lab.log').read_text()}")


def luminance(rgb: str) -> float:
    values = [float(v) for v in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]]

    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in values)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--shots", type=pathlib.Path, default=ROOT / "docs" / "notebooks")
    args = parser.parse_args()
    args.shots.mkdir(parents=True, exist_ok=True)
    shots = {theme: (args.shots / name).resolve() for theme, name in SHOT_NAMES.items()}

    workdir = pathlib.Path(tempfile.mkdtemp(prefix="axonal-browser-"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:  # the browser runs it: start from no outputs
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, workdir / "monitoring.ipynb")
    port, token = free_port(), secrets.token_hex(16)
    try:
        lab = start_lab(workdir, port, token)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    console_errors: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: console_errors.append(f"page error: {e}"))
            page.goto(f"http://127.0.0.1:{port}/lab/tree/monitoring.ipynb?token={token}")
            page.wait_for_function("window.jupyterapp && document.querySelector('.jp-NotebookPanel .jp-Cell')", timeout=60_000)
            # Wait for the kernel, then run every cell.
            page.wait_for_function(
                "() => { const w = window.jupyterapp.shell.currentWidget;"
                " return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
                " && w.sessionContext.session.kernel.status === 'idle'; }",
                timeout=60_000,
            )
            # Not awaited: the command's promise settles only when every cell has run.
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

            # While the chaos cell (the third code cell) runs, sample the live panel (the first one on
            # the page); stop at the end of the last cell, or at the first error.
            code_cells = sum(1 for cell in nb.cells if cell.cell_type == "code")
            seen, open_seen, chaos_ran = [], False, False
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                state = page.evaluate(
                    "() => { const m = document.querySelector('.axonal-monitor');"
                    " const prompts = Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputPrompt'),"
                    "   p => p.innerText);"
                    " return { html: m ? m.innerHTML : null, open: !!(m && m.querySelector('rect.state-open')),"
                    " chaos: (prompts[2] || '').includes('*'),"
                    " failed: document.querySelectorAll(\".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']\").length,"
                    " done: document.body.innerText.includes('audit: apply') } }"
                )
                if state["failed"]:
                    text = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").first.inner_text()
                    raise SystemExit(f"error or stderr output while the notebook ran: {text[:500]}")
                if state["chaos"]:
                    chaos_ran = True
                    if state["html"] and (not seen or seen[-1] != state["html"]):
                        seen.append(state["html"])
                    open_seen |= state["open"]
                if state["done"]:
                    break
                time.sleep(0.1)
            else:
                raise SystemExit(f"the notebook did not finish within {args.timeout:.0f} s")
            if not chaos_ran:
                raise SystemExit("never saw the chaos cell running")
            page.wait_for_function(
                "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
                timeout=60_000,
            )
            if len(seen) < 3:
                raise SystemExit(f"the live panel updated in place {len(seen) - 1} time(s) while the chaos cell ran; want at least 2")
            if not open_seen:
                raise SystemExit("the live panel's breaker timeline never showed the open state while the chaos cell ran")

            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            if errors.count():
                raise SystemExit(f"error or stderr output in the notebook: {errors.first.inner_text()[:500]}")
            if page.locator(".jp-OutputArea-output").filter(has_text="Traceback").count():
                raise SystemExit("a traceback in the notebook's outputs")
            prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
            if len(prompts) != code_cells or any("*" in t or t.strip() in ("", "[ ]:") for t in prompts):
                raise SystemExit(f"not every one of the {code_cells} code cells ran: prompts {prompts}")

            # The final panel (the last one on the page) as a person sees it.
            panel = page.locator(".axonal-monitor").last
            panel.scroll_into_view_if_needed()
            for selector, want in (("svg.axonal-chart", 5), ("svg.axonal-breaker", 1), ("table.axonal-probes", 1)):
                items = panel.locator(selector)
                if items.count() != want:
                    raise SystemExit(f"the panel has {items.count()} {selector}, want {want}")
                for i in range(want):
                    box = items.nth(i).bounding_box()
                    if not items.nth(i).is_visible() or not box or box["width"] < 50 or box["height"] < 20:
                        raise SystemExit(f"{selector} #{i} is not visible with a real size: {box}")
            if panel.locator("rect.state-open").count() == 0:
                raise SystemExit("the final breaker timeline lacks the open state")
            controls = page.locator(".widget-toggle-buttons, .jupyter-widgets.widget-toggle-buttons")
            if controls.count() == 0 or not controls.first.is_visible():
                raise SystemExit("the monitor's controls (ipywidgets) did not render")

            contrasts = {}
            for theme in ("light", "dark"):
                page.evaluate(f"window.jupyterapp.commands.execute('apputils:change-theme', {{theme: {json.dumps(THEMES[theme])}}})")
                page.wait_for_function(
                    f"() => document.body.dataset.jpThemeName === {json.dumps(THEMES[theme])}", timeout=30_000
                )
                time.sleep(0.5)
                colours = page.evaluate(
                    "(el) => { let bg = 'rgba(0, 0, 0, 0)', n = el;"
                    " while (n && (bg === 'rgba(0, 0, 0, 0)' || bg === 'transparent')) {"
                    "   bg = getComputedStyle(n).backgroundColor; n = n.parentElement; }"
                    " const tick = el.querySelector('svg.axonal-chart text.tick');"
                    " return { text: getComputedStyle(el).color, tick: getComputedStyle(tick).color, background: bg }; }",
                    panel.element_handle(),
                )
                contrasts[theme] = min(contrast(colours["text"], colours["background"]), contrast(colours["tick"], colours["background"]))
                if contrasts[theme] < 4.5:
                    raise SystemExit(f"{theme} theme: panel text contrast {contrasts[theme]:.1f} < 4.5 ({colours})")
                panel.screenshot(path=str(shots[theme]))
            browser.close()
    finally:
        lab.terminate()
        try:
            lab.wait(timeout=20)
        except subprocess.TimeoutExpired:
            lab.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    if console_errors:
        raise SystemExit("browser console errors:\n  " + "\n  ".join(console_errors[:20]))
    print(
        f"browser: the panel updated in place {len(seen) - 1} times and showed the breaker open; contrast "
        f"{contrasts['light']:.1f} (light), {contrasts['dark']:.1f} (dark); screenshots: "
        f"{shots['light']}, {shots['dark']}"
    )


if __name__ == "__main__":
    main()
