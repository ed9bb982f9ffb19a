import { test } from "node:test";
import assert from "node:assert/strict";
import { toJSON, toWebVTT, vttTime } from "../js/transcript.js";

const finals = [
  { utteranceId: "u1", speaker: "b", sourceLanguage: "en", sourceText: "second <one>", targetLanguage: "pt",
    text: "segundo --> fim", speechStart: 0, speechEnd: 2, speechEndAt: 112, emittedAt: 113 },
  { utteranceId: "u0", speaker: "a", sourceLanguage: "en", sourceText: "first", targetLanguage: "pt",
    text: "primeiro", speechStart: 0, speechEnd: 1.5, speechEndAt: 101.5, emittedAt: 102 },
];

test("vttTime formats hours, minutes, seconds and milliseconds", () => {
  assert.equal(vttTime(3725.5), "01:02:05.500");
  assert.equal(vttTime(-1), "00:00:00.000");
});

test("WebVTT orders cues on the call's clock, names speakers and escapes markup", () => {
  const vtt = toWebVTT(finals, { a: "Ana", b: "Bruno" });
  const lines = vtt.split("\n");
  assert.equal(lines[0], "WEBVTT");
  assert.equal(lines[3], "00:00:00.000 --> 00:00:01.500");
  assert.equal(lines[4], "<v Ana>primeiro");
  assert.ok(vtt.includes("00:00:10.000 --> 00:00:12.000"));
  assert.ok(vtt.includes("segundo → fim"));
  assert.ok(vtt.includes("second &lt;one&gt;"));
});

test("JSON export carries both texts, languages and times", () => {
  const parsed = JSON.parse(toJSON(finals, { a: "Ana" }));
  assert.equal(parsed.captions.length, 2);
  assert.deepEqual(parsed.captions[0], {
    start: 0, end: 1.5, speaker: "Ana", utterance_id: "u0", source_language: "en",
    source_text: "first", target_language: "pt", text: "primeiro",
  });
  assert.equal(parsed.captions[1].speaker, "b");
});
