// The chat UI's browser side (inlined into /ui by assistant/web/ui/page.py; nothing fetched).
// - the page's language: Gradio's locale from the first paint, a switch without a reload,
//   the choice remembered in a cookie;
// - every [n] in an answer opens a popover with its quote, title, kind, date, page, an
//   "open passage" link and, when the question's language differs, a lazy "Translate";
// - the progress line of an answer being written counts the seconds;
// - "Copy" puts the answer with its citations on the clipboard.
// Document text only ever goes into the page as textContent.
(() => {
  if (window.__ttChat) return;
  window.__ttChat = true;

  // ------------------------------------------------------------------ language
  // window.__ttUi (page.py): the page's language as the server chose it, Gradio's locale
  // for each language, the words below in each, the languages' names, the cookie that
  // remembers a choice and Gradio's module that switches its locale.
  const UI = Object.assign(
    { lang: "en", locales: { en: "en" }, strings: {}, names: {}, cookie: "tt_lang", localeModule: null },
    window.__ttUi,
  );
  let lang = UI.locales[UI.lang] ? UI.lang : "en";
  const t = (key, values) => {
    let s = (UI.strings[lang] || {})[key] ?? (UI.strings.en || {})[key] ?? key;
    for (const [name, value] of Object.entries(values || {})) s = s.split("{" + name + "}").join(String(value));
    return s;
  };
  // Gradio picks its locale once, from navigator.language, before anything of ours can run
  // after it: the page's language is what it reads, so the first paint is already in it.
  try {
    Object.defineProperty(navigator, "language", { configurable: true, get: () => UI.locales[lang] || "en" });
  } catch (err) { /* the labels switch after the load instead */ }

  // Gradio's <title> is the product in both languages; the tab shows the page's.
  function retitle() {
    const title = t("title");
    if (document.title !== title) document.title = title;
  }
  new MutationObserver(retitle).observe(document.head, { subtree: true, childList: true, characterData: true });
  retitle();

  window.__ttLanguage = () => lang;
  window.__ttSetLanguage = (next) => {
    if (!UI.locales[next] || next === lang) return;
    lang = next;
    document.cookie = `${UI.cookie}=${encodeURIComponent(next)}; path=/; max-age=31536000; samesite=lax`;
    // A ?lang= in the address would win over the choice at the next reload.
    const url = new URL(location.href);
    if (url.searchParams.has("lang")) {
      url.searchParams.delete("lang");
      history.replaceState(history.state, "", url);
    }
    document.documentElement.lang = next;
    retitle();
    closePop(false);
    if (!UI.localeModule) { location.reload(); return; }
    import(new URL(UI.localeModule, document.baseURI).href)
      .then((gradio) => gradio.changeLocale(UI.locales[next]))
      .catch(() => location.reload());
  };
  const LANG = UI.names || {};

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  // Gradio's sanitizer keeps classes, not data- attributes: "tt-n-3" holds 3.
  const tag = (node, prefix) => {
    const c = node ? Array.from(node.classList).find((name) => name.startsWith(prefix)) : undefined;
    return c ? c.slice(prefix.length) : "";
  };
  const text = (root, sel) => { const n = root && root.querySelector(sel); return n ? n.textContent.trim() : ""; };

  // ------------------------------------------------------------------ elapsed seconds
  const firstSeen = new Map();
  function tick() {
    document.querySelectorAll(".tt-progress").forEach((p) => {
      const id = tag(p, "tt-turn-");
      const out = p.querySelector(".tt-secs");
      if (!id || !out) return;
      if (!firstSeen.has(id)) firstSeen.set(id, performance.now() - (parseInt(out.textContent, 10) || 0) * 1000);
      const secs = Math.max(0, Math.floor((performance.now() - firstSeen.get(id)) / 1000));
      if (out && out.textContent !== secs + " s") out.textContent = secs + " s";
    });
  }
  setInterval(tick, 250);

  // ------------------------------------------------------------------ citation popover
  let pop = null;
  let opener = null;
  function closePop(restoreFocus) {
    if (!pop) return;
    pop.remove();
    pop = null;
    if (restoreFocus && opener && opener.isConnected) opener.focus();
    opener = null;
  }

  function place(box, anchor) {
    if (window.innerWidth < 640) {
      box.classList.add("tt-sheet");  // a bottom sheet on phones
      return;
    }
    const r = anchor.getBoundingClientRect();
    const width = Math.min(440, window.innerWidth - 16);
    const left = Math.max(8, Math.min(r.left, window.innerWidth - width - 8));
    box.style.width = width + "px";
    box.style.left = left + "px";
    const below = r.bottom + 6;
    if (below + box.offsetHeight > window.innerHeight - 8 && r.top - 6 - box.offsetHeight > 8) {
      box.style.top = r.top - 6 - box.offsetHeight + "px";
    } else {
      box.style.top = Math.min(below, Math.max(8, window.innerHeight - box.offsetHeight - 8)) + "px";
    }
  }

  async function translate(button, quote, target, out) {
    button.disabled = true;
    button.textContent = t("translating");
    try {
      const response = await fetch("/v1/translate", {
        method: "POST",
        headers: { "content-type": "application/json" },
        credentials: "same-origin",
        body: JSON.stringify({ text: quote, target: target }),
      });
      const data = await response.json().catch(() => ({}));
      out.replaceChildren();
      if (!response.ok || typeof data.translation !== "string") {
        out.append(el("p", "tt-muted", t("no_translation") + (data.detail ? ": " + String(data.detail) : "")));
        button.remove();
        return;
      }
      out.append(el("span", "tt-mt-label", t("machine_translation") + " → " + (LANG[target] || target)));
      out.append(el("p", "tt-mt", data.translation));
      button.remove();
    } catch (err) {
      out.replaceChildren(el("p", "tt-muted", t("no_translation")));
      button.disabled = false;
      button.textContent = t("translate");
    }
  }

  function openPop(link) {
    const msg = link.closest(".tt-msg");
    const n = tag(link, "tt-n-");
    const src = msg && n && msg.querySelector(".tt-src.tt-n-" + n);
    if (!src) return false;
    closePop(false);
    opener = link;
    const box = el("div", "tt-pop");
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-label", t("source_n", { n: n }));
    box.dataset.n = n;
    const head = el("div", "tt-pop-head");
    head.append(el("span", "tt-pop-n", "[" + n + "]"), el("span", "tt-pop-title", text(src, ".tt-src-title")));
    const close = el("button", "tt-pop-close", "×");
    close.type = "button";
    close.setAttribute("aria-label", t("close"));
    close.addEventListener("click", () => closePop(true));
    head.append(close);
    box.append(head, el("div", "tt-pop-meta", text(src, ".tt-src-meta")));
    const quote = text(src, ".tt-quote");
    box.append(el("blockquote", "tt-pop-quote", quote));
    const out = el("div", "tt-pop-translation");
    const actions = el("div", "tt-pop-actions");
    const passage = src.querySelector("a.tt-open");
    if (passage) {
      const a = el("a", "tt-pop-open", t("open_passage"));
      a.href = passage.getAttribute("href");
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      actions.append(a);
    }
    const qlang = tag(msg, "tt-qlang-");
    const slang = tag(src, "tt-lang-");
    if (qlang && qlang !== "none" && slang && qlang !== slang && quote) {
      const b = el("button", "tt-pop-translate", t("translate"));
      b.type = "button";
      b.addEventListener("click", () => translate(b, quote, qlang, out));
      actions.append(b);
    }
    box.append(out, actions);
    document.body.append(box);
    pop = box;
    place(box, link);
    close.focus({ preventScroll: true });
    return true;
  }

  // ------------------------------------------------------------------ copy
  function plainAnswer(msg) {
    const lines = [text(msg, ".tt-answer")];
    const sources = msg.querySelectorAll(".tt-src");
    if (sources.length) lines.push("", t("sources") + ":");
    sources.forEach((s) => {
      const href = s.querySelector("a.tt-open");
      lines.push("[" + tag(s, "tt-n-") + "] " + text(s, ".tt-src-title") + " — " + text(s, ".tt-src-meta"));
      lines.push("    “" + text(s, ".tt-quote") + "”");
      if (href) lines.push("    " + new URL(href.getAttribute("href"), location.href).href);
    });
    return lines.join("\n");
  }

  async function copy(button) {
    const msg = button.closest(".tt-msg");
    const value = plainAnswer(msg);
    window.__ttLastCopy = value;
    const label = button.textContent;
    let ok = false;
    try {
      await navigator.clipboard.writeText(value);
      ok = true;
    } catch (err) {
      const area = el("textarea");
      area.value = value;
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.append(area);
      area.select();
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      area.remove();
    }
    button.textContent = ok ? t("copied") : t("copy_failed");
    setTimeout(() => { if (button.isConnected) button.textContent = label; }, 1500);
  }

  // ------------------------------------------------------------------ events
  document.addEventListener(
    "click",
    (event) => {
      const target = event.target instanceof Element ? event.target : null;
      if (!target) return;
      const cite = target.closest("a.tt-cite");
      if (cite) {
        if (event.ctrlKey || event.metaKey || event.shiftKey) return;  // a new tab, as asked
        if (pop && opener === cite) {
          event.preventDefault();
          event.stopPropagation();
          closePop(false);
          return;
        }
        if (openPop(cite)) {
          event.preventDefault();
          event.stopPropagation();
        }
        return;
      }
      const copyButton = target.closest("button.tt-copy");
      if (copyButton) {
        event.preventDefault();
        event.stopPropagation();
        copy(copyButton);
        return;
      }
      if (pop && !pop.contains(target)) closePop(false);
    },
    true,
  );
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && pop) closePop(true);
  });
  window.addEventListener("resize", () => closePop(false));
})();
