// Dragoman's browser client: join screen, call screen, captions, controls.
import { api, ApiError, gatewayFor, rtcIceServers, useToken } from "./api.js";
import { Call } from "./call.js";
import { CaptionStore } from "./captions.js";
import { watchLevel } from "./meter.js";
import { LatencyStats } from "./stats.js";
import { toJSON, toWebVTT } from "./transcript.js";

const $ = (id) => document.getElementById(id);
const state = {
  languages: [], stream: null, stopMeter: null, call: null, participants: new Map(),
  holder: null, queue: [], captions: new CaptionStore(), stats: new LatencyStats(),
  lastLevelHigh: false,
};
// Read by the browser tests: the translated audio's level, as an AnalyserNode measures it.
window.dragoman = { translatedLevel: 0, maxTranslatedLevel: 0, state };

// ---- join screen ----------------------------------------------------------------------------

// Problems shown on the join screen, by kind (language, media, join), most recent last.
const problems = new Map();
function setProblem(kind, message) {
  if (message) problems.set(kind, message);
  else problems.delete(kind);
  $("join-error").textContent = [...problems.values()].join(" ");
  $("join-error").hidden = problems.size === 0;
}

function randomRoom() {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(bytes, (b) => b.toString(36).padStart(2, "0")).join("").slice(0, 10);
}

function updateShareLink() {
  const room = $("room").value.trim();
  $("share-link").value = room ? `${location.origin}/?room=${encodeURIComponent(room)}` : "";
}

async function copyShareLink() {
  updateShareLink();
  try {
    await navigator.clipboard.writeText($("share-link").value);
    $("copy-link").textContent = "Copied";
  } catch {
    $("share-link").select();
    $("copy-link").textContent = "Select and copy";
  }
}

async function loadLanguages(wanted) {
  try {
    state.languages = await api.languages();
  } catch (error) {
    setProblem("join", `Cannot reach the server: ${error.message}`);
    return;
  }
  const select = $("language");
  select.replaceChildren(...state.languages.map((l) => new Option(`${l.name} (${l.code})`, l.code)));
  if (!wanted) return;
  const code = wanted.toLowerCase().split(/[-_]/)[0];
  if (state.languages.some((l) => l.code === code)) {
    select.value = code;
  } else {
    select.value = "";
    setProblem("language", `The language "${wanted}" is not supported here. Choose one of: ${state.languages.map((l) => l.name).join(", ")}.`);
  }
}

function mediaProblem(error) {
  if (error.name === "NotAllowedError" || error.name === "SecurityError") {
    return "Permission to use your microphone or camera was denied. Allow it in the browser's site settings and reload — or join to listen only.";
  }
  if (error.name === "NotFoundError" || error.name === "OverconstrainedError") {
    return "No microphone was found. Connect one and reload — or join to listen only.";
  }
  if (error.name === "NotReadableError") {
    return "Your microphone or camera is in use by another application.";
  }
  return `Cannot use your microphone: ${error.message}`;
}

async function openDevices() {
  state.stopMeter?.();
  state.stream?.getTracks().forEach((track) => track.stop());
  state.stream = null;
  const mic = $("microphone").value;
  const cam = $("camera").value;
  const audio = mic ? { deviceId: { exact: mic } } : true;
  const video = cam === "none" ? false : cam ? { deviceId: { exact: cam } } : true;
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ audio, video });
  } catch (first) {
    try {
      state.stream = video ? await navigator.mediaDevices.getUserMedia({ audio }) : null;
      if (!state.stream) throw first;
    } catch (error) {
      setProblem("media", mediaProblem(error));
      await listDevices().catch(() => {});
      return;
    }
  }
  setProblem("media", "");
  $("preview").srcObject = state.stream;
  state.stopMeter = watchLevel(state.stream, (level) => { $("mic-level").value = level; });
  await listDevices();
}

async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  const fill = (select, kind, none) => {
    const current = select.value;
    const options = devices.filter((d) => d.kind === kind)
      .map((d, i) => new Option(d.label || `${kind === "audioinput" ? "Microphone" : "Camera"} ${i + 1}`, d.deviceId));
    if (none) options.push(new Option(none, "none"));
    if (!options.length) options.push(new Option(kind === "audioinput" ? "No microphone available" : "No camera", ""));
    select.replaceChildren(...options);
    if ([...select.options].some((o) => o.value === current)) select.value = current;
  };
  fill($("microphone"), "audioinput", null);
  fill($("camera"), "videoinput", "No camera");
}

async function join(event) {
  event.preventDefault();
  const name = $("name").value.trim();
  const room = $("room").value.trim();
  const language = $("language").value;
  if (!name) return setProblem("join", "Enter your name.");
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(room)) return setProblem("join", "Room names are letters, digits, '-' or '_' (up to 64).");
  if (!language) return setProblem("join", "Choose a language this server supports.");
  setProblem("join", "");
  $("join").disabled = true;
  let entry;
  try {
    entry = await api.entry(room);
  } catch (error) {
    $("join").disabled = false;
    if (error instanceof ApiError && error.status === 401) {
      return setProblem("join", "This room needs an invitation link: ask its organiser for one.");
    }
    return setProblem("join", error instanceof ApiError ? error.message : `Could not reach the server: ${error.message}`);
  }
  const query = { room, name, lang: language };
  const invitation = new URLSearchParams(location.search).get("token");
  if (invitation) query.token = invitation;
  const elsewhere = gatewayFor(entry, location.href, query);
  if (elsewhere) return location.assign(elsewhere); // the room is held by another gateway
  state.stopMeter?.();
  const call = new Call({
    room, name, language, stream: state.stream || new MediaStream(),
    iceServers: rtcIceServers(entry.ice_servers),
    onEvent: onRoomEvent, onState: onConnectionState, onTracks,
  });
  try {
    await call.join();
  } catch (error) {
    $("join").disabled = false;
    setProblem("join", error instanceof ApiError ? error.message : `Could not join: ${error.message}`);
    return;
  }
  state.call = call;
  history.replaceState(null, "", `/?room=${encodeURIComponent(room)}`);
  enterCall(room);
}

// ---- call screen ----------------------------------------------------------------------------

function enterCall(room) {
  $("join-screen").hidden = true;
  $("call-screen").hidden = false;
  $("room-title").textContent = `Room ${room}`;
  $("caption-list").replaceChildren();
  state.captions = new CaptionStore();
  state.participants.clear();
  renderControls();
}

async function leave() {
  const call = state.call;
  state.call = null;
  await call?.leave().catch(() => {});
  $("call-screen").hidden = true;
  $("join-screen").hidden = false;
  $("join").disabled = false;
  await openDevices();
}

function onConnectionState(connection) {
  const label = $("connection");
  label.textContent = connection;
  label.classList.toggle("connected", connection === "connected");
  $("reconnecting").hidden = !["reconnecting", "disconnected", "failed"].includes(connection);
}

function onTracks({ translated, original, video }) {
  const attach = (element, track) => {
    if (track && element.srcObject?.getTracks()[0] !== track) element.srcObject = new MediaStream([track]);
  };
  attach($("translated-audio"), translated);
  attach($("original-audio"), original);
  attach($("holder-video"), video);
  applyBalance();
  if (translated && !state.stopTranslatedMeter) {
    state.stopTranslatedMeter = watchLevel(new MediaStream([translated]), onTranslatedLevel);
  }
}

function onTranslatedLevel(level) {
  window.dragoman.translatedLevel = level;
  window.dragoman.maxTranslatedLevel = Math.max(window.dragoman.maxTranslatedLevel, level);
  const high = level > 0.05;
  if (high && !state.lastLevelHigh) state.stats.onAudio(Date.now());
  state.lastLevelHigh = high;
}

function applyBalance() {
  const translated = Number($("balance").value);
  $("translated-audio").volume = translated;
  $("original-audio").volume = 1 - translated;
}

function onRoomEvent(event) {
  switch (event.type) {
    case "participants.changed":
      state.participants = new Map(event.participants.map((p) => [p.id, { ...p, speaking: state.participants.get(p.id)?.speaking }]));
      renderMute();
      return renderTiles();
    case "floor.changed":
      state.holder = event.holder;
      state.queue = event.queue;
      renderTiles();
      return renderControls();
    case "speaking.changed": {
      const person = state.participants.get(event.participant);
      if (person) person.speaking = event.speaking;
      return renderTiles();
    }
    case "caption.partial":
      return showCaption(state.captions.apply(event));
    case "caption.final":
      state.stats.onCaption(event, Date.now());
      renderStats();
      return showCaption(state.captions.apply(event));
    case "dub.started":
      return markVoiced(`${event.utterance_id}|${event.target_language}`);
    case "translation.status":
      $("translation-paused").hidden = !event.paused;
      return undefined;
    case "server.closing":
      $("server-closing").hidden = false;
      return undefined;
    case "session.ended":
      return sessionEnded(event);
    case "utterance.failed":
      removeCaptions(state.captions.abandon(event.utterance_id, event.target_language));
      return showNotice(`Translation into ${event.target_language} failed (${event.stage}): ${event.reason}`);
    case "utterance.dropped":
      removeCaptions(state.captions.abandon(event.utterance_id));
      if (event.speaker === state.call?.id && event.reason !== "no_speech") {
        return showNotice(`Some of your speech was not translated (${event.reason.replaceAll("_", " ")}).`);
      }
      return undefined;
    default:
      return undefined;
  }
}

function nameOf(id) {
  return state.participants.get(id)?.name || "someone";
}

function renderTiles() {
  const tiles = [...state.participants.values()].map((p) => {
    const tile = document.createElement("div");
    const position = state.queue.indexOf(p.id);
    tile.className = `tile${p.speaking ? " speaking" : ""}${p.id === state.holder ? " holder" : ""}`;
    tile.dataset.participant = p.id;
    const status = [p.language.toUpperCase(), p.muted_by_moderator ? "muted by moderator" : p.muted ? "muted" : "", p.speaking ? "speaking" : "",
      p.id === state.holder ? "has the floor" : "", position >= 0 ? `queued #${position + 1}` : "",
      p.connected ? "" : "reconnecting"].filter(Boolean).join(" · ");
    tile.innerHTML = '<div class="name"></div><div class="meta"></div>';
    tile.querySelector(".name").textContent = p.id === state.call?.id ? `${p.name} (you)` : p.name;
    tile.querySelector(".meta").textContent = status;
    return tile;
  });
  $("tiles").replaceChildren(...tiles);
  $("holder-label").textContent = state.holder ? `${nameOf(state.holder)} has the floor` : "Nobody has the floor";
  $("floor-queue").textContent = state.queue.length ? `Queue: ${state.queue.map(nameOf).join(", ")}` : "";
}

function renderControls() {
  const me = state.call?.id;
  const floor = $("floor");
  if (me && state.holder === me) floor.textContent = "Release floor (F)";
  else if (state.queue.includes(me)) floor.textContent = `Leave queue #${state.queue.indexOf(me) + 1} (F)`;
  else floor.textContent = "Request floor (F)";
}

// A caption's line, live (li.partial: each revision redraws it) until its final (li.final)
// replaces it in place. Finals alone are announced: not every revision of a live line.
function showCaption(entry) {
  if (!entry) return;
  const list = $("caption-list");
  const following = list.scrollTop + list.clientHeight >= list.scrollHeight - 24;
  const item = captionItem(list, entry.key);
  item.classList.toggle("partial", !entry.final);
  item.classList.toggle("final", entry.final);
  item.lang = entry.targetLanguage;
  item.querySelector(".who").textContent = nameOf(entry.speaker);
  showCaptionText(item.querySelector(".text"), entry);
  const source = item.querySelector(".source");
  source.textContent = entry.sourceLanguage !== entry.targetLanguage ? entry.sourceText : "";
  source.lang = entry.sourceLanguage;
  if (following) list.scrollTop = list.scrollHeight; // autoscroll unless the reader scrolled back
  if (entry.final) $("caption-live").textContent = `${nameOf(entry.speaker)}: ${entry.text}`;
}

function captionLine(list, key) {
  return list.querySelector(`li[data-key="${CSS.escape(key)}"]`);
}

function captionItem(list, key) {
  const known = captionLine(list, key);
  if (known) return known;
  const item = document.createElement("li");
  item.dataset.key = key;
  item.innerHTML = '<div class="who"></div><div class="text"></div><div class="source"></div>';
  list.append(item);
  return item;
}

// The settled words, then the words still being revised (span.unstable, styled lighter).
function showCaptionText(element, entry) {
  element.textContent = entry.text;
  if (!entry.unstable) return;
  const unstable = document.createElement("span");
  unstable.className = "unstable";
  unstable.textContent = entry.text ? ` ${entry.unstable}` : entry.unstable;
  element.append(unstable);
}

// Live lines of an utterance that will have no final here.
function removeCaptions(keys) {
  const list = $("caption-list");
  keys.forEach((key) => captionLine(list, key)?.remove());
}

// The caption whose translated speech is playing now.
function markVoiced(key) {
  const list = $("caption-list");
  list.querySelector("li.voiced")?.classList.remove("voiced");
  captionLine(list, key)?.classList.add("voiced");
}

function showNotice(message) {
  const item = document.createElement("li");
  item.className = "notice";
  item.textContent = message;
  $("caption-list").append(item);
}

function renderStats() {
  const s = state.stats.summary();
  const fmt = (v) => (v === null ? "–" : `${v.toFixed(2)} s`);
  $("stats").textContent = `end of speech → caption  p50 ${fmt(s.captionP50)}  p95 ${fmt(s.captionP95)}\n`
    + `end of speech → audio    p50 ${fmt(s.audioP50)}  p95 ${fmt(s.audioP95)}\n`
    + `captions measured        ${s.samples}`;
}

async function toggleFloor() {
  const call = state.call;
  if (!call) return;
  const holdingOrQueued = state.holder === call.id || state.queue.includes(call.id);
  const floor = await call.floor(holdingOrQueued ? "release" : "request");
  onRoomEvent({ ...floor, type: "floor.changed" });
}

async function toggleMute() {
  const button = $("mute");
  const muted = button.getAttribute("aria-pressed") !== "true";
  try {
    await state.call?.setMuted(muted);
  } catch (error) {
    return showNotice(`Microphone: ${error.message}`);
  }
  showMuted(muted);
  return undefined;
}

function showMuted(muted) {
  const button = $("mute");
  button.setAttribute("aria-pressed", String(muted));
  button.textContent = muted ? "Unmute (M)" : "Mute (M)";
}

// A moderator's mute holds until a moderator lifts it: the button says so and stays off.
function renderMute() {
  const me = state.participants.get(state.call?.id);
  if (!me) return;
  const button = $("mute");
  if (me.muted_by_moderator) {
    state.call.mutedByModerator();
    button.disabled = true;
    button.setAttribute("aria-pressed", "true");
    button.textContent = "Muted by moderator";
  } else if (button.disabled) {
    button.disabled = false;
    showMuted(me.muted);
  }
}

const ENDED = {
  replaced: "You joined this room from another window or device; this one has left the call.",
  removed: "A moderator removed you from this room.",
  token_expired: "Your invitation expired. Ask the organiser for a new link to join again.",
};

// The gateway ended this session for good: back to the join screen, saying why.
function sessionEnded(event) {
  state.call?.end();
  state.call = null;
  $("call-screen").hidden = true;
  $("join-screen").hidden = false;
  $("join").disabled = false;
  setProblem("join", ENDED[event.reason] || event.detail || "The call ended.");
}

async function toggleLipsync() {
  const button = $("lipsync-toggle");
  const enabled = button.getAttribute("aria-pressed") !== "true";
  await state.call?.setLipsync(enabled);
  button.setAttribute("aria-pressed", String(enabled));
  button.textContent = enabled ? "Lip-sync on" : "Lip-sync off";
}

async function toggleCamera() {
  const button = $("camera-toggle");
  const stopping = button.getAttribute("aria-pressed") !== "true";
  try {
    await state.call?.setCamera(!stopping, $("camera").value !== "none" ? $("camera").value : undefined);
  } catch (error) {
    return showNotice(`Camera: ${mediaProblem(error)}`);
  }
  button.setAttribute("aria-pressed", String(stopping));
  button.textContent = stopping ? "Start camera (V)" : "Stop camera (V)";
  return undefined;
}

function download(name, type, text) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], { type }));
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

function names() {
  return Object.fromEntries([...state.participants.values()].map((p) => [p.id, p.name]));
}

function onKey(event) {
  if (!state.call || event.target.closest("input, select, textarea") || event.ctrlKey || event.metaKey) return;
  const actions = { f: toggleFloor, m: toggleMute, v: toggleCamera };
  const action = actions[event.key.toLowerCase()];
  if (action) {
    event.preventDefault();
    action();
  }
}

// ---- wiring ---------------------------------------------------------------------------------

async function main() {
  const params = new URLSearchParams(location.search);
  useToken(params.get("token"));
  $("room").value = params.get("room") || randomRoom();
  $("name").value = params.get("name") || localStorage.getItem("dragoman.name") || "";
  updateShareLink();
  $("room").addEventListener("input", updateShareLink);
  $("new-room").addEventListener("click", () => { $("room").value = randomRoom(); updateShareLink(); });
  $("copy-link").addEventListener("click", copyShareLink);
  $("name").addEventListener("change", () => localStorage.setItem("dragoman.name", $("name").value.trim()));
  $("language").addEventListener("change", () => setProblem("language", ""));
  $("microphone").addEventListener("change", openDevices);
  $("camera").addEventListener("change", openDevices);
  $("join-form").addEventListener("submit", join);
  $("leave").addEventListener("click", leave);
  $("floor").addEventListener("click", toggleFloor);
  $("mute").addEventListener("click", toggleMute);
  $("camera-toggle").addEventListener("click", toggleCamera);
  $("lipsync-toggle").addEventListener("click", toggleLipsync);
  $("balance").addEventListener("input", applyBalance);
  $("toggle-stats").addEventListener("click", () => {
    const hidden = !$("stats").hidden;
    $("stats").hidden = hidden;
    $("toggle-stats").setAttribute("aria-expanded", String(!hidden));
    renderStats();
  });
  $("download-vtt").addEventListener("click", () => download("transcript.vtt", "text/vtt", toWebVTT(state.captions.finals(), names())));
  $("download-json").addEventListener("click", () => download("transcript.json", "application/json", toJSON(state.captions.finals(), names())));
  document.addEventListener("keydown", onKey);
  window.addEventListener("pagehide", () => state.call?.leave());
  await loadLanguages(params.get("lang"));
  await openDevices();
}

main();
