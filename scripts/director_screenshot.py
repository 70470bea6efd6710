"""Draw the director's console for the README: ``python scripts/director_screenshot.py
docs/director.png``.

Starts ``serve`` in this process (headless, no sound card, no OSC), loads a small cue list,
fires its first cue so the song is singing, opens ``/director`` in headless Chromium
(Playwright, as the browser tests do) and saves a screenshot of the page. Rerunnable: the
picture changes only with the page and the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stage.serve import ServeOptions, serve  # noqa: E402

CUES = """cues:
  - id: "1"
    name: Twinkle, soprano
    do:
      - voice: soprano
      - song.load: twinkle
      - song.play: 0
  - id: "2"
    name: Second verse, more vibrato
    do:
      - expr: {name: vibrato_depth, value: 1.6}
  - id: "3"
    name: Jasmine
    do:
      - song.load: jasmine
      - song.play: 0
  - id: "4"
    name: Fade out
    do:
      - expr: {name: volume, value: 0.3}
  - id: "5"
    name: Bow
    do:
      - song.stop: null
"""
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"]


async def shoot(out: Path, width: int, height: int, sing_s: float) -> None:
    """Run a show, drive its console to a typical moment and screenshot it into ``out``."""
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory() as tmp:
        cue_file = Path(tmp) / "show.yaml"
        cue_file.write_text(CUES, encoding="utf-8")
        ports: dict[str, object] = {}
        ready = asyncio.Event()
        opts = ServeOptions(osc_port=None, http_port=0, headless=True, cues=cue_file,
                            lookahead_chunks=8)
        engine = asyncio.ensure_future(serve(opts, lambda p: (ports.update(p), ready.set())))
        try:
            await asyncio.wait_for(ready.wait(), 120)
            async with async_playwright() as pw:
                chromium = shutil.which("chromium") or "/usr/bin/chromium"
                browser = await pw.chromium.launch(executable_path=chromium,
                                                   args=CHROMIUM_ARGS, headless=True)
                page = await browser.new_page(viewport={"width": width, "height": height})
                await page.goto(f"http://127.0.0.1:{ports['http']}/director")
                await page.wait_for_function("window.director.state !== null")
                await page.get_by_role("button", name="GO", exact=True).click()
                await page.wait_for_function(
                    "window.director.replies.some((r) => r && r.cue === '1')", timeout=60_000)
                await page.evaluate("window.director.send('lyric', {text: 'shine bright'})")
                await asyncio.sleep(sing_s)
                out.parent.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(out))
                await browser.close()
        finally:
            engine.cancel()
            await asyncio.gather(engine, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="PNG to write (e.g. docs/director.png)")
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--sing", type=float, default=3.0, help="seconds of song first")
    args = parser.parse_args()
    asyncio.run(shoot(args.out, args.width, args.height, args.sing))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
