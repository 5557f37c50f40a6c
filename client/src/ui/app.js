// casebook's one script. Everything works without it; with it, a draft is
// saved as the person types and an open page follows what other devices
// write, without a reload and without touching what is being typed.
//
// A draft's form carries the heads of the version it shows. A save sends
// the fields and those heads; the server writes only what differs from that
// version, where those characters are now, and answers with the merged
// fields and their new heads. Each field here keeps the text of the version
// its heads name (`synced`), so what the person typed meanwhile and what
// arrived from elsewhere are merged here the same way before the heads move.
"use strict";

(function () {
  const BACKGROUND = { "X-Casebook-Background": "1" };
  const POLL_MS = 3000;
  const SAVE_AFTER_MS = 800;

  // The one splice turning `a` into `b`: [from, to) of `a`, and the text in.
  function splice(a, b) {
    let s = 0;
    while (s < a.length && s < b.length && a[s] === b[s]) s++;
    let e = 0;
    while (e < a.length - s && e < b.length - s && a[a.length - 1 - e] === b[b.length - 1 - e]) e++;
    return { from: s, to: a.length - e, text: b.slice(s, b.length - e) };
  }

  // `base` changed into `remote` there and into `local` here: both, each
  // where it was made. Where the two changed the same characters, both
  // texts stand there, the one that begins first first: the next save
  // writes what is shown, so a side left out here would be deleted.
  // `caret` (or null) is where the person is typing in `local`; the answer
  // says where it goes in the merged text when the splice of the whole
  // field cannot say it (null: it can).
  function merged(base, remote, local, caret) {
    const plain = (text) => ({ text, caret: null });
    if (local === base) return plain(remote);
    if (remote === base || remote === local) return plain(local);
    const r = splice(base, remote);
    const l = splice(base, local);
    if (r.to <= l.from) {
      return plain(base.slice(0, r.from) + r.text + base.slice(r.to, l.from) + l.text + base.slice(l.to));
    }
    if (l.to <= r.from) {
      return plain(base.slice(0, l.from) + l.text + base.slice(l.to, r.from) + r.text + base.slice(r.to));
    }
    const from = Math.min(r.from, l.from);
    const remoteFirst = r.from <= l.from;
    const both = remoteFirst ? r.text + l.text : l.text + r.text;
    const text = base.slice(0, from) + both + base.slice(Math.max(r.to, l.to));
    // The caret stays with the person's own words: within them, at the
    // same place among them; after them, as far from the end as it was.
    const mine = from + (remoteFirst ? r.text.length : 0);
    let at = null;
    if (caret !== null && caret >= l.from) {
      at = caret - l.from <= l.text.length ? mine + (caret - l.from)
        : Math.max(from + both.length, text.length - (local.length - caret));
    }
    return { text, caret: at };
  }
  // For the browser tests, which check the merge on the page itself.
  window.casebookMerge = (base, remote, local, caret) => merged(base, remote, local, caret ?? null);

  // Whether the person is typing in `el`.
  function typing(el) {
    return document.activeElement === el && typeof el.selectionStart === "number";
  }

  // Sets a field's text, keeping the caret where it was among the words
  // (at `at` when the merge said where).
  function setValue(el, value, at) {
    if (el.value === value) return;
    const focused = typing(el);
    const caret = focused ? el.selectionStart : 0;
    const d = splice(el.value, value);
    el.value = value;
    if (focused) {
      const moved = at !== null && at !== undefined ? at
        : caret >= d.to ? caret + d.text.length - (d.to - d.from) : Math.min(caret, d.from + d.text.length);
      el.setSelectionRange(moved, moved);
    }
  }

  function draft(form) {
    const status = form.querySelector("#autosave");
    const heads = form.querySelector("input[name=heads]");
    const fields = () => Array.from(form.elements).filter((el) => el.name && el.type !== "hidden" && el.type !== "submit");
    const synced = {};
    fields().forEach((el) => { synced[el.name] = el.value; });
    let timer = null;
    let pending = false;
    let busy = false;
    let again = false;
    let stopped = false;
    // A save went out and its answer did not come back: whether it was
    // written is not known, so the draft is read again before the next.
    let unsure = false;
    // Counts saves begun: a poll answered after a save began is stale.
    let epoch = 0;
    let inflight = Promise.resolve();

    const say = (text) => { if (status) status.textContent = text; };

    // Takes the server's version of the draft: merged with what was typed
    // since `sent` (or since the last version, for a poll).
    function take(state, sent) {
      if (state.signed) { window.location.reload(); return; }
      fields().forEach((el) => {
        if (!(el.name in state.fields)) return;
        const base = sent && el.name in sent ? sent[el.name] : synced[el.name];
        const remote = state.fields[el.name];
        // A date, a time, a number: one value, the person's if they
        // changed it, never a mix of two.
        const m = el.tagName === "TEXTAREA" ? merged(base, remote, el.value, typing(el) ? el.selectionStart : null)
          : { text: el.value === base ? remote : el.value, caret: null };
        setValue(el, m.text, m.caret);
        synced[el.name] = remote;
      });
      heads.value = state.heads;
    }

    // The draft as the server has it now, taken in: after a save whose
    // answer was lost, before anything more is sent over the old version.
    async function resync() {
      const r = await fetch(form.dataset.live, { headers: BACKGROUND, credentials: "same-origin" });
      if (!r.ok) throw new Error("no answer");
      take(await r.json(), null);
      unsure = false;
    }

    function stop(text) {
      stopped = true;
      say(text);
    }

    function save() {
      if (stopped) return inflight;
      if (busy) { again = true; return inflight; }
      busy = true;
      pending = false;
      epoch++;
      inflight = send();
      return inflight;
    }

    async function send() {
      if (unsure) {
        try { await resync(); } catch (e) { busy = false; say("Not saved: casebook did not answer. Your text stays here."); return; }
      }
      const body = new URLSearchParams(new FormData(form));
      const sent = {};
      fields().forEach((el) => { sent[el.name] = el.value; });
      try {
        const r = await fetch(form.dataset.autosave, {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body,
          credentials: "same-origin",
        });
        const answer = await r.json();
        if (r.status === 401) {
          stop("casebook locked itself: nothing more is saved. Your text stays here; choose Save to unlock and keep it.");
        } else if (!r.ok) {
          say("Not saved: " + answer.error);
        } else {
          take(answer, sent);
          say("Saved " + answer.saved);
        }
      } catch (e) {
        unsure = true;
        say("Not saved: casebook did not answer. Your text stays here.");
      }
      busy = false;
      if (again) { again = false; await save(); }
    }

    // "Save" and "Sign" post the form itself: first whatever is on its
    // way, so the form carries the version its text is typed over.
    let flushed = false;
    form.addEventListener("submit", async (e) => {
      if (flushed || stopped || (!pending && !busy && !unsure)) return;
      e.preventDefault();
      clearTimeout(timer);
      if (pending || unsure) await save();
      while (busy) await inflight;
      flushed = true;
      form.requestSubmit(e.submitter);
    });

    form.addEventListener("input", () => {
      if (stopped) return;
      say("Editing…");
      pending = true;
      clearTimeout(timer);
      timer = setTimeout(save, SAVE_AFTER_MS);
    });

    return async function poll() {
      // A save on its way brings the merged draft back itself.
      if (stopped || busy || pending || unsure) return;
      const asked = epoch;
      try {
        const r = await fetch(form.dataset.live, { headers: BACKGROUND, credentials: "same-origin" });
        if (r.status === 401) return stop("casebook locked itself. Your text stays here; choose Save to unlock and keep it.");
        // Typed into meanwhile: the save that follows brings the merge
        // back, made by the server from the version this form shows.
        if (!r.ok || busy || pending || epoch !== asked) return;
        const state = await r.json();
        if (busy || pending || epoch !== asked) return;
        if (state.heads !== heads.value) take(state, null);
      } catch (e) { /* the next poll tries again */ }
    };
  }

  // Whether anything on the page has been typed into.
  let dirty = false;
  document.addEventListener("input", () => { dirty = true; });

  // A page without a draft: redrawn in place when the record changed, so
  // long as nothing on it is being typed into.
  // Whether the page holds words: a form sent back with what was typed
  // and why it was refused, or one filled in. Such a page is never redrawn.
  function holdsWords() {
    const main = document.querySelector("main");
    if (!main || main.querySelector("[role=alert]")) return true;
    return Array.from(main.querySelectorAll("textarea, input:not([type=hidden]):not([type=checkbox]):not([type=radio]):not([type=date])"))
      .some((el) => el.value.trim() !== "");
  }

  function redraw() {
    return async function () {
      if (dirty || holdsWords()) return;
      try {
        const r = await fetch(window.location.href, { headers: BACKGROUND, credentials: "same-origin" });
        if (!r.ok || dirty) return;
        const page = new DOMParser().parseFromString(await r.text(), "text/html");
        const main = page.querySelector("main");
        if (main) document.querySelector("main").replaceWith(main);
      } catch (e) { /* the next poll tries again */ }
    };
  }

  const form = document.querySelector("form[data-autosave]");
  const main = document.querySelector("main[data-live]");
  const follow = form ? draft(form) : main ? redraw() : null;
  // The version the page was drawn at.
  let version = main ? Number(main.dataset.live) : null;
  async function tick() {
    try {
      const r = await fetch("/live", { headers: BACKGROUND, credentials: "same-origin" });
      if (r.status === 401) {
        // Locked (by "Lock" in another tab, or after a spell without use):
        // ask for the passphrase, unless that would lose typed text.
        const line = document.getElementById("sync");
        if (form && follow) return follow();
        if (!dirty) return window.location.reload();
        if (line) line.textContent = "Locked: your text stays here; submit it to unlock and keep it.";
        return;
      }
      if (r.ok) {
        const live = await r.json();
        const line = document.getElementById("sync");
        // Written only when it changes: the line is a live region, and a
        // screen reader reads each change out.
        if (line && line.textContent !== live.sync) line.textContent = live.sync;
        if (version !== null && live.version !== version && follow) await follow();
        version = live.version;
      }
    } catch (e) { /* the next tick tries again */ }
    setTimeout(tick, POLL_MS);
  }
  setTimeout(tick, POLL_MS);
})();
