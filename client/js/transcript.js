// Transcript export: the call's final captions as WebVTT or JSON, on the call's wall clock.

function pad(value, width = 2) {
  return String(value).padStart(width, "0");
}

export function vttTime(seconds) {
  const millis = Math.max(0, Math.round(seconds * 1000));
  const h = Math.floor(millis / 3600000);
  const m = Math.floor((millis % 3600000) / 60000);
  const s = Math.floor((millis % 60000) / 1000);
  return `${pad(h)}:${pad(m)}:${pad(s)}.${pad(millis % 1000, 3)}`;
}

function cueText(text) {
  return String(text)
    .replace(/\s+/g, " ")
    .replace(/-->/g, "→")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .trim();
}

// Each caption's [start, end] in seconds since the first speech of the call.
export function timeline(finals) {
  const spans = finals.map((c) => {
    const duration = Math.max(0, (c.speechEnd ?? 0) - (c.speechStart ?? 0));
    const end = c.speechEndAt || c.emittedAt || 0;
    return { caption: c, start: end - duration, end };
  });
  const origin = Math.min(...spans.map((s) => s.start));
  return spans
    .map((s) => ({ ...s, start: s.start - origin, end: s.end - origin }))
    .sort((a, b) => a.start - b.start);
}

export function toWebVTT(finals, names = {}) {
  const lines = ["WEBVTT", ""];
  timeline(finals).forEach(({ caption, start, end }, index) => {
    const who = cueText(names[caption.speaker] || caption.speaker);
    lines.push(String(index + 1), `${vttTime(start)} --> ${vttTime(Math.max(end, start + 0.5))}`);
    lines.push(`<v ${who}>${cueText(caption.text)}`);
    if (caption.sourceLanguage !== caption.targetLanguage) {
      lines.push(`<lang ${caption.sourceLanguage}>${cueText(caption.sourceText)}</lang>`);
    }
    lines.push("");
  });
  return lines.join("\n");
}

export function toJSON(finals, names = {}) {
  const captions = timeline(finals).map(({ caption, start, end }) => ({
    start: Number(start.toFixed(3)),
    end: Number(end.toFixed(3)),
    speaker: names[caption.speaker] || caption.speaker,
    utterance_id: caption.utteranceId,
    source_language: caption.sourceLanguage,
    source_text: caption.sourceText,
    target_language: caption.targetLanguage,
    text: caption.text,
  }));
  return JSON.stringify({ captions }, null, 2);
}
