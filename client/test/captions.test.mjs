import { test } from "node:test";
import assert from "node:assert/strict";
import { CaptionStore } from "../js/captions.js";

const base = {
  utterance_id: "r/a/0", speaker: "a", sequence: 0, source_language: "en", source_text: "hello",
  target_language: "pt", speech_start_s: 1, speech_end_s: 2, speech_end_at: 100, emitted_at: 101,
};

test("a repeated final replaces its entry instead of adding one", () => {
  const store = new CaptionStore();
  store.apply({ ...base, type: "caption.final", target_text: "olá" });
  store.apply({ ...base, type: "caption.final", target_text: "olá!" });
  assert.equal(store.entries().length, 1);
  assert.deepEqual([store.entries()[0].text, store.entries()[0].final], ["olá!", true]);
});

test("languages and utterances are separate entries, in arrival order", () => {
  const store = new CaptionStore();
  store.apply({ ...base, type: "caption.final", target_text: "olá" });
  store.apply({ ...base, type: "caption.final", target_language: "es", target_text: "hola" });
  store.apply({ ...base, type: "caption.final", utterance_id: "r/a/1", sequence: 1, target_text: "tchau" });
  assert.deepEqual(store.entries().map((e) => e.text), ["olá", "hola", "tchau"]);
  assert.equal(store.finals().length, 3);
});

test("other events are ignored and the store is bounded", () => {
  const store = new CaptionStore(2);
  assert.equal(store.apply({ type: "floor.changed", holder: null, queue: [] }), null);
  for (let i = 0; i < 5; i += 1) {
    store.apply({ ...base, type: "caption.final", utterance_id: `u${i}`, target_text: `t${i}` });
  }
  assert.deepEqual(store.entries().map((e) => e.text), ["t3", "t4"]);
});
