#!/usr/bin/python3
"""Renders a run's report.html in headless Chromium and checks that every
chart drew: coloured series pixels inside its plot area, dark axis and text
pixels in its box. The charts lie where their boxes say (data-page-left,
data-page-top; the page's layout is fixed).

usage: render_report.py REPORT_HTML OUT_PNG
Exit 0: every chart drew; 1: one did not (each chart's counts are printed);
2: no browser, or it failed to render.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

from PIL import Image

BROWSERS = ("chromium-headless-shell", "chromium")
MIN_SERIES_PIXELS = 20   # a polyline across the plot is hundreds
MIN_DARK_PIXELS = 200    # axes, ticks, labels and the title

CHART = re.compile(
    r'data-page-left="(\d+)" data-page-top="(\d+)"><svg [^>]*id="([^"]+)" '
    r'width="(\d+)" height="(\d+)"')
PLOT_FRAME = re.compile(
    r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" fill="none"')


def find_browser():
    for name in BROWSERS:
        found = shutil.which(name) or (os.path.exists("/usr/bin/" + name) and "/usr/bin/" + name)
        if found:
            return found
    return None


def charts_in(html):
    charts = []
    for match in CHART.finditer(html):
        left, top, chart_id, width, height = match.groups()
        frame = PLOT_FRAME.search(html, match.end())
        charts.append({"id": chart_id, "left": int(left), "top": int(top),
                       "width": int(width), "height": int(height),
                       "plot": tuple(float(v) for v in frame.groups())})
    return charts


def render(browser, report, png, width, height):
    with tempfile.TemporaryDirectory(prefix="flare-render-") as profile:
        # --no-sandbox: CI runs as root; a private profile: tests run in parallel.
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                   "--force-device-scale-factor=1", "--user-data-dir=" + profile,
                   "--screenshot=" + png, "--window-size=%d,%d" % (width, height),
                   "file://" + os.path.abspath(report)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=90)
        except subprocess.TimeoutExpired:
            sys.exit("render_report: %s did not finish within 90 s" % browser)
        if done.returncode != 0 or not os.path.exists(png):
            print(done.stdout + done.stderr)
            print("render_report: %s failed (exit %d), no screenshot" % (browser, done.returncode))
            sys.exit(2)


def count_pixels(image, box):
    """(coloured, dark) pixels in box = (left, top, right, bottom)."""
    coloured = dark = 0
    for r, g, b in image.crop(box).getdata():
        if max(r, g, b) - min(r, g, b) > 60:
            coloured += 1
        elif max(r, g, b) < 110:
            dark += 1
    return coloured, dark


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    report, png = sys.argv[1], sys.argv[2]
    with open(report, encoding="utf-8") as f:
        charts = charts_in(f.read())
    if not charts:
        print("render_report: %s holds no chart" % report)
        return 1
    browser = find_browser()
    if not browser:
        print("render_report: no headless browser (%s); scripts/install-deps.sh installs "
              "chromium-headless-shell" % " or ".join(BROWSERS))
        return 2
    width = max(c["left"] + c["width"] for c in charts) + 16
    height = max(c["top"] + c["height"] for c in charts) + 16
    render(browser, report, png, width, height)
    image = Image.open(png).convert("RGB")
    if image.size != (width, height):
        print("render_report: screenshot is %dx%d, expected %dx%d" % (image.size + (width, height)))
        return 1
    failed = 0
    for c in charts:
        x, y, w, h = c["plot"]
        # Inside the frame, off its border: only grid lines (light) and series.
        plot = (c["left"] + int(x) + 2, c["top"] + int(y) + 2,
                c["left"] + int(x + w) - 2, c["top"] + int(y + h) - 2)
        series, _ = count_pixels(image, plot)
        _, dark = count_pixels(image, (c["left"], c["top"], c["left"] + c["width"],
                                       c["top"] + c["height"]))
        ok = series >= MIN_SERIES_PIXELS and dark >= MIN_DARK_PIXELS
        failed += not ok
        print("%-24s %s: %d series pixels in the plot (>= %d), %d axis/text pixels (>= %d)"
              % (c["id"], "drew" if ok else "BLANK", series, MIN_SERIES_PIXELS, dark,
                 MIN_DARK_PIXELS))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
