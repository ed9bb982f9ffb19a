"""The browser client in Debian's Chromium (Playwright), fake devices fed from fixture WAVs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from pydantic import SecretStr

from pipeline.audio import Audio, read_file, write_wav
from pipeline.models import Models
from pipeline.settings import Settings
from server.access import mint
from testkit.fixtures import Clip, clip_named
from testkit.harness import serving
from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
BASE_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]
Launch = Callable[..., Awaitable[Browser]]


def microphone_wav(path: Path, speech: np.ndarray | None, lead_s: float = 4.0) -> Path:  # type: ignore[type-arg]
    """What a fake microphone plays, looping: silence, then (optionally) speech, at 48 kHz."""
    silence = np.zeros(int(lead_s * 48000), dtype=np.float32)
    samples = silence if speech is None else np.concatenate([silence, speech, silence])
    write_wav(path, Audio(samples, 48000))
    return path


@pytest.fixture
async def launch() -> AsyncIterator[Launch]:
    """Start Chromium with fake devices (or none, or without permission) as a test needs."""
    async with async_playwright() as playwright, contextlib.AsyncExitStack() as stack:

        async def start(
            audio: Path | None = None, devices: bool = True, grant: bool = True
        ) -> Browser:
            flags = list(BASE_FLAGS)
            if devices:
                flags.append("--use-fake-device-for-media-stream")
            if grant:
                flags.append("--use-fake-ui-for-media-stream")
            if audio is not None:
                flags.append(f"--use-file-for-fake-audio-capture={audio}")
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=flags)
            stack.push_async_callback(browser.close)
            return browser

        yield start


async def open_page(browser: Browser, url: str, refused: list[str] | None = None) -> Page:
    """A page of the client; what its Content-Security-Policy refused goes to `refused`."""
    page = await browser.new_page(viewport={"width": 1200, "height": 820})
    if refused is not None:
        page.on(
            "console",
            lambda message: (
                refused.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
    await page.goto(url)
    return page


async def until_true(page: Page, expression: str, timeout_s: float) -> None:
    """Poll a page expression (wait_for_function would eval in the page: the CSP forbids it)."""
    for _ in range(round(timeout_s / 0.1)):
        if await page.evaluate(expression):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{expression} still false after {timeout_s} s")


# Installed in a page before it joins: every state each caption line (by element) goes through,
# and every text the aria-live region announces, as the listener's browser drew them.
CAPTION_LOG = """() => {
  const log = { lines: [], announced: [] };
  window.captionLog = log;
  const list = document.getElementById("caption-list");
  const live = document.getElementById("caption-live");
  const ids = new WeakMap();
  let next = 0;
  const state = (item) => {
    const text = item.querySelector(".text");
    const unstable = item.querySelector(".text .unstable");
    return {
      element: ids.get(item), key: item.dataset.key, position: [...list.children].indexOf(item),
      partial: item.classList.contains("partial"), final: item.classList.contains("final"),
      italic: getComputedStyle(text).fontStyle === "italic", text: text.textContent,
      unstable: unstable ? unstable.textContent.trim() : "",
      lighter: !!unstable && getComputedStyle(unstable).color !== getComputedStyle(text).color,
    };
  };
  const last = new Map();
  const record = () => {
    for (const item of list.querySelectorAll("li[data-key]")) {
      if (!ids.has(item)) ids.set(item, next++);
      const now = state(item);
      const seen = JSON.stringify(now);
      if (last.get(item) !== seen) { last.set(item, seen); log.lines.push(now); }
    }
    const said = live.textContent;
    if (said && said !== log.announced[log.announced.length - 1]) log.announced.push(said);
  };
  const watch = { childList: true, subtree: true, characterData: true, attributes: true };
  new MutationObserver(record).observe(list, watch);
  new MutationObserver(record).observe(live, watch);
}"""


def line_history(log: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The states one caption line went through, checked to be one <li> in one list position."""
    states = [line for line in log["lines"] if line["key"] == key]
    assert states, f"no line for {key}"
    assert {s["element"] for s in states} == {states[0]["element"]}, "the line was redrawn anew"
    assert {s["position"] for s in states} == {states[0]["position"]}, "the line moved"
    return states


def assert_live_then_final(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Italic live revisions first, then the final in their place (never live again)."""
    first_final = next(i for i, s in enumerate(states) if s["final"])
    live, after = states[:first_final], states[first_final:]
    assert live, "the final came with no live line before it"
    assert all(s["partial"] and not s["final"] and s["italic"] for s in live), live
    assert all(s["final"] and not s["partial"] and not s["italic"] for s in after), after
    return live


async def join(page: Page, name: str, language: str) -> None:
    await page.fill("#name", name)
    await page.select_option("#language", language)
    await page.click("#join")
    await expect(page.locator("#call-screen")).to_be_visible(timeout=20_000)
    await expect(page.locator("#connection")).to_have_text("connected", timeout=20_000)


async def ana_speaks_to_bruno(
    gateway: str,
    launch: Launch,
    clips: list[Clip],
    tmp_path: Path,
    room: str,
    before_join: str | None = None,
) -> tuple[Page, Page, list[str]]:
    """Bruno (pt) joins `room`, then Ana (en), whose microphone says a fixture clip; with the
    Content-Security-Policy refusals of both pages. `before_join` runs in both pages first."""
    speech = read_file(clip_named(clips, "en_commonvoice_platforms").path, 48000).samples
    speaker = await launch(audio=microphone_wav(tmp_path / "speech.wav", speech))
    listener = await launch(audio=microphone_wav(tmp_path / "silence.wav", None))
    refused: list[str] = []
    ana = await open_page(speaker, f"{gateway}/?room={room}", refused)
    bruno = await open_page(listener, f"{gateway}/?room={room}", refused)
    if before_join is not None:
        for page in (ana, bruno):
            await page.evaluate(before_join)
    await join(bruno, "Bruno", "pt")
    await join(ana, "Ana", "en")
    return ana, bruno, refused


async def test_english_speaker_and_portuguese_listener(
    gateway: str, launch: Launch, clips: list[Clip], tmp_path: Path
) -> None:
    ana, bruno, refused = await ana_speaks_to_bruno(gateway, launch, clips, tmp_path, "browsers")
    for page in (ana, bruno):
        await expect(page.locator("#tiles .tile")).to_have_count(2)
        await expect(page.locator("#tiles")).to_contain_text("Ana")
        await expect(page.locator("#tiles")).to_contain_text("Bruno")
    caption = bruno.locator('#caption-list li.final[lang="pt"]').first
    await expect(caption).to_contain_text("plataformas", timeout=45_000)
    await expect(caption.locator(".source")).to_contain_text("platforms")
    await expect(bruno.locator("#caption-live")).to_contain_text("Ana")
    await until_true(bruno, "window.dragoman.maxTranslatedLevel > 0.05", 15)
    await expect(ana.locator('#caption-list li.final[lang="en"]').first).to_contain_text(
        "platforms"
    )
    async with bruno.expect_download() as download:
        await bruno.click("#download-vtt")
    vtt = Path(await (await download.value).path()).read_text()
    assert vtt.startswith("WEBVTT") and "plataformas" in vtt and "<v Ana>" in vtt
    async with bruno.expect_download() as download:
        await bruno.click("#download-json")
    assert "platforms" in Path(await (await download.value).path()).read_text()
    await bruno.click("#toggle-stats")
    await expect(bruno.locator("#stats")).to_contain_text("end of speech → caption")
    ARTIFACTS.mkdir(exist_ok=True)
    await bruno.screenshot(path=str(ARTIFACTS / "call-listener.png"))
    await ana.screenshot(path=str(ARTIFACTS / "call-speaker.png"))
    await bruno.set_viewport_size({"width": 390, "height": 844})
    await bruno.screenshot(path=str(ARTIFACTS / "call-phone.png"), full_page=True)
    assert not refused  # the client runs under its Content-Security-Policy as it is


async def test_live_captions_are_replaced_in_place_by_the_final(
    gateway: str, launch: Launch, clips: list[Clip], tmp_path: Path
) -> None:
    """While Ana (en) holds the floor, Bruno (pt) reads her words as an italic live line
    (li.partial), which her caption.final then turns into li.final: the same <li>, in the same
    place. Ana sees her own live transcript, its unstable tail lighter. Finals alone are
    announced."""
    ana, bruno, refused = await ana_speaks_to_bruno(
        gateway, launch, clips, tmp_path, "live", before_join=CAPTION_LOG
    )
    caption = bruno.locator('#caption-list li.final[lang="pt"]', has_text="plataformas").first
    await expect(caption).to_be_visible(timeout=45_000)
    key = await caption.get_attribute("data-key")
    assert key is not None
    own = ana.locator(f'#caption-list li.final[data-key="{key.replace("|pt", "|en")}"]')
    await expect(own).to_contain_text("platforms", timeout=15_000)
    heard = await bruno.evaluate("window.captionLog")
    live = assert_live_then_final(line_history(heard, key))
    assert all(not s["unstable"] for s in live), live  # a listener reads the settled words only
    assert heard["announced"], "no final was announced"
    finals = {f"Ana: {s['text']}" for s in heard["lines"] if s["final"]}
    assert set(heard["announced"]) <= finals, heard["announced"]  # no live revision announced
    said = await ana.evaluate("window.captionLog")
    own_live = assert_live_then_final(line_history(said, key.replace("|pt", "|en")))
    tails = [s for s in own_live if s["unstable"]]
    assert tails and all(s["lighter"] for s in tails), own_live
    assert not refused


async def test_floor_mute_leave_and_rejoin_from_the_ui(
    gateway: str, launch: Launch, tmp_path: Path
) -> None:
    browser = await launch(audio=microphone_wav(tmp_path / "silence.wav", None))
    page = await open_page(browser, f"{gateway}/?room=controls")
    await join(page, "Carla", "es")
    await page.click("#floor")
    await expect(page.locator("#holder-label")).to_have_text("Carla has the floor")
    await expect(page.locator("#floor")).to_contain_text("Release floor")
    await page.keyboard.press("f")  # the keyboard shortcut releases it again
    await expect(page.locator("#holder-label")).to_have_text("Nobody has the floor")
    await page.keyboard.press("m")
    await expect(page.locator("#mute")).to_have_attribute("aria-pressed", "true")
    await expect(page.locator("#tiles")).to_contain_text("muted")
    await page.keyboard.press("v")
    await expect(page.locator("#camera-toggle")).to_have_attribute("aria-pressed", "true")
    await page.keyboard.press("v")  # the camera comes back on the same connection
    await expect(page.locator("#camera-toggle")).to_have_attribute("aria-pressed", "false")
    await expect(page.locator("#connection")).to_have_text("connected")
    await page.click("#leave")
    await expect(page.locator("#join-screen")).to_be_visible()
    await page.click("#join")  # rejoin with the same name and room
    await expect(page.locator("#connection")).to_have_text("connected", timeout=20_000)
    await expect(page.locator("#tiles .tile")).to_have_count(1)


async def test_join_screen_errors(gateway: str, launch: Launch) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    unsupported = await open_page(await launch(), f"{gateway}/?room=errors&lang=klingon")
    await expect(unsupported.locator("#join-error")).to_contain_text('"klingon" is not supported')
    await unsupported.screenshot(path=str(ARTIFACTS / "join-screen.png"))
    await unsupported.fill("#name", "Dan")
    await unsupported.click("#join")
    await expect(unsupported.locator("#join-error")).to_contain_text("Choose a language")
    no_microphone = await open_page(await launch(devices=False), f"{gateway}/?room=errors")
    await expect(no_microphone.locator("#join-error")).to_contain_text("No microphone was found")
    denied = await open_page(await launch(grant=False), f"{gateway}/?room=errors")
    await expect(denied.locator("#join-error")).to_contain_text("denied")
    await denied.screenshot(path=str(ARTIFACTS / "join-denied.png"))


async def test_a_moderators_mute_and_removal_as_the_participant_sees_them(
    settings: Settings, models: Models, launch: Launch, tmp_path: Path
) -> None:
    secret = "browser-test-secret-0123456789abcdef"
    guarded = settings.model_copy(update={"open_rooms": False, "jwt_secret": SecretStr(secret)})
    invitation = mint(secret, "moderated", "dora", "speaker", 600, name="Dora")
    moderator = {"Authorization": f"Bearer {mint(secret, 'moderated', 'mo', 'moderator', 600)}"}
    async with serving(guarded, models) as url, httpx.AsyncClient(timeout=30) as http:
        browser = await launch(audio=microphone_wav(tmp_path / "silence.wav", None))
        page = await open_page(browser, f"{url}/?room=moderated&token={invitation}")
        await join(page, "Someone else", "es")
        await expect(page.locator("#tiles")).to_contain_text("Dora (you)")  # the token's name
        state = (await http.get(f"{url}/api/rooms/moderated", headers=moderator)).json()
        dora = state["participants"][0]["id"]
        moderate = f"{url}/api/rooms/moderated/participants/{dora}/moderate"
        await http.post(moderate, json={"action": "mute"}, headers=moderator)
        await expect(page.locator("#mute")).to_have_text("Muted by moderator")
        await expect(page.locator("#mute")).to_be_disabled()
        await http.post(moderate, json={"action": "unmute"}, headers=moderator)
        await expect(page.locator("#mute")).to_be_enabled()
        await http.post(moderate, json={"action": "remove"}, headers=moderator)
        await expect(page.locator("#join-screen")).to_be_visible(timeout=10_000)
        await expect(page.locator("#join-error")).to_contain_text("A moderator removed you")
        await asyncio.sleep(4)  # longer than the client's reconnect delay: it stays out
        state = await http.get(f"{url}/api/rooms/moderated", headers=moderator)
        assert state.status_code == 404  # nobody came back; the room closed
