"""Redraw README's screenshots from run folders, in headless Chromium (selenium, part of genlab[dev]).

    python docs/img/screenshots.py --report RUN_A RUN_B --explore RUN [--out docs/img]
    python docs/img/screenshots.py --report RUN_A RUN_B RUN_C RUN_D --report-name report_anime.png

writes report_comparison.png (or --report-name; the comparison section of `genlab report RUN_A RUN_B` at a
1400 px window, its table and the first figures side by side)
and explorer.png (the explorer's first screen on RUN at 1280 x 900, after its scores of the loaded
checkpoint have arrived), and prints each file's size. Chromium is found as the tests find it
($GENLAB_CHROMIUM, /usr/bin/chromium, or on PATH).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image


def browser(profile: Path):
    from selenium import webdriver

    chromium = os.environ.get("GENLAB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not Path(chromium).is_file() or not Path(driver).is_file():
        sys.exit(f"no Chromium and chromedriver here (looked for {chromium} and {driver}); "
                 "apt-get install chromium chromium-driver, or set GENLAB_CHROMIUM")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))


def report_shot(runs: list[Path], out: Path, work: Path, name: str = "report_comparison.png") -> Path:
    from genlab.reporting import write_report

    page = write_report(runs, work / "report.html")
    print(f"report of {', '.join(map(str, runs))}: {page.stat().st_size / 1e6:.2f} MB")
    b = browser(work / "profile-report")
    try:
        b.set_window_size(1400, 1000)
        b.get(page.as_uri())
        height = b.execute_script("return document.documentElement.scrollHeight")
        b.set_window_size(1400, min(height + 100, 16000))
        time.sleep(0.5)
        # the section from its table down to the first figure type side by side (the samples)
        box = b.execute_script("const r = document.getElementById('comparison').getBoundingClientRect();"
                               "const f = document.querySelector('#comparison .side').getBoundingClientRect();"
                               "return [r.left, r.top + window.scrollY, r.right, f.bottom + 16 + window.scrollY];")
        full = work / "report_full.png"
        b.save_screenshot(str(full))
    finally:
        b.quit()
    shot = out / name
    Image.open(full).crop(tuple(round(v) for v in box)).save(shot, optimize=True)
    return shot


def explorer_shot(run: Path, out: Path, work: Path) -> Path:
    import logging

    from genlab.explore.app import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(run, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    b = browser(work / "profile-explore")
    try:
        b.set_window_size(1280, 900)
        b.get(f"http://127.0.0.1:{server.server_port}/")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not b.execute_script(
                "return !!document.getElementById('interpolation').getAttribute('src') && "
                "!document.getElementById('scoring')"):
            time.sleep(0.5)
        time.sleep(0.5)
        shot = out / "explorer.png"
        b.save_screenshot(str(shot))
    finally:
        b.quit()
        server.shutdown()
    Image.open(shot).save(shot, optimize=True)
    return shot


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--report", type=Path, nargs="+", metavar="RUN")
    p.add_argument("--report-name", default="report_comparison.png", help="file name of the report's screenshot")
    p.add_argument("--explore", type=Path, metavar="RUN")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = p.parse_args()
    if not args.report and not args.explore:
        p.error("give --report RUN [RUN ...], --explore RUN, or both")
    with tempfile.TemporaryDirectory() as tmp:
        shots = ([report_shot(args.report, args.out, Path(tmp), args.report_name)] if args.report else []) + \
                ([explorer_shot(args.explore, args.out, Path(tmp))] if args.explore else [])
        for shot in shots:
            size = Image.open(shot).size
            print(f"{shot}: {size[0]}x{size[1]} px, {shot.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
