import { test } from "node:test";
import assert from "node:assert/strict";
import { CaptionStore, joinWords } from "../js/captions.js";

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

// ---- live captions (caption.partial) -----------------------------------------------------------

const live = {
  type: "caption.partial", utterance_id: "r/a/0", speaker: "a", source_language: "en",
  target_language: "pt", emitted_at: 100,
};
const partial = (revision, committed, unstable, translated, extra = {}) => ({
  ...live, revision, committed_text: committed, unstable_text: unstable, target_text: translated, ...extra,
});
const final = (extra = {}) => ({ ...base, type: "caption.final", target_text: "hoje só", ...extra });
const shown = (entry) => entry && [entry.text, entry.unstable, entry.final];

test("a listener in another language sees the committed words translated", () => {
  const store = new CaptionStore();
  const entry = store.apply(partial(0, "today only", "platforms one", "hoje só"));
  assert.deepEqual(shown(entry), ["hoje só", "", false]);
  assert.equal(entry.sourceText, "today only platforms one");
  assert.equal(entry.key, CaptionStore.key(final()));
});

test("the speaker's own language sees committed and unstable words apart", () => {
  const store = new CaptionStore();
  const own = { target_language: "en" };
  assert.deepEqual(shown(store.apply(partial(0, "", "today", "", own))), ["", "today", false]);
  assert.deepEqual(shown(store.apply(partial(1, "today only", "platforms", "today only", own))),
    ["today only", "platforms", false]);
});

test("a higher revision replaces the live entry; a lower one is ignored", () => {
  const store = new CaptionStore();
  store.apply(partial(0, "", "today", ""));
  assert.deepEqual(shown(store.apply(partial(2, "today only", "", "hoje só"))), ["hoje só", "", false]);
  assert.equal(store.apply(partial(1, "today", "", "hoje")), null);
  assert.equal(store.entries().length, 1);
  assert.deepEqual([store.entries()[0].text, store.entries()[0].revision], ["hoje só", 2]);
});

test("a revision may be missing: any higher one is taken", () => {
  const store = new CaptionStore();
  store.apply(partial(0, "", "today", ""));
  assert.equal(store.apply(partial(5, "today", "only", "hoje")).revision, 5);
});

test("the final replaces the live entry in place", () => {
  const store = new CaptionStore();
  store.apply(final({ utterance_id: "r/b/0", speaker: "b", target_text: "antes" }));
  store.apply(partial(0, "today", "only", "hoje"));
  store.apply(final({ utterance_id: "r/b/1", speaker: "b", target_text: "depois" }));
  const entry = store.apply(final({ target_text: "Hoje só as plataformas um e três são usadas." }));
  assert.deepEqual(shown(entry), ["Hoje só as plataformas um e três são usadas.", "", true]);
  assert.equal(entry.sourceText, "hello");
  assert.deepEqual(store.entries().map((e) => e.text),
    ["antes", "Hoje só as plataformas um e três são usadas.", "depois"]);
});

test("a partial after the final is ignored, whatever its revision", () => {
  const store = new CaptionStore();
  store.apply(partial(3, "today", "only", "hoje"));
  store.apply(final());
  assert.equal(store.apply(partial(9, "today only platforms", "", "hoje só plataformas")), null);
  assert.deepEqual(shown(store.entries()[0]), ["hoje só", "", true]);
});

test("a final with no partial before it is shown as before", () => {
  const store = new CaptionStore();
  assert.deepEqual(shown(store.apply(final())), ["hoje só", "", true]);
  assert.equal(store.apply(partial(0, "", "today", "")), null);
});

test("each language has its own live entry and revisions", () => {
  const store = new CaptionStore();
  store.apply(partial(4, "today", "", "hoje"));
  const spanish = store.apply(partial(1, "today", "", "hoy", { target_language: "es" }));
  assert.deepEqual(shown(spanish), ["hoy", "", false]);
  store.apply(final());
  assert.equal(store.apply(partial(5, "today only", "", "hoy solo", { target_language: "es" })).text, "hoy solo");
  assert.deepEqual(store.entries().map((e) => [e.targetLanguage, e.final]), [["pt", true], ["es", false]]);
});

test("live entries are no finals: the transcript leaves them out", () => {
  const store = new CaptionStore();
  store.apply(partial(0, "today", "", "hoje"));
  store.apply(final({ utterance_id: "r/a/1", target_text: "tchau" }));
  assert.deepEqual(store.finals().map((e) => e.text), ["tchau"]);
});

test("a failed or dropped utterance's live entries are abandoned, and stay so", () => {
  const store = new CaptionStore();
  store.apply(partial(0, "today", "", "hoje"));
  store.apply(partial(0, "today", "", "today", { target_language: "en" }));
  store.apply(final({ utterance_id: "r/a/1", target_text: "tchau" }));
  assert.deepEqual(store.abandon("r/a/0", "pt"), ["r/a/0|pt"]);
  assert.equal(store.apply(partial(1, "today only", "", "hoje só")), null);
  assert.deepEqual(store.abandon("r/a/0"), ["r/a/0|en"]);
  assert.deepEqual(store.abandon("r/a/1"), []); // a final is never abandoned
  assert.deepEqual(store.entries().map((e) => e.text), ["tchau"]);
});

test("words join with one space", () => {
  assert.equal(joinWords("today only", "platforms"), "today only platforms");
  assert.equal(joinWords("", "platforms"), "platforms");
  assert.equal(joinWords("today", ""), "today");
  assert.equal(joinWords("today ", "only"), "today only");
});
