/*
 * Technology Transfer Assistant · chat widget for partner websites.
 *
 *   <script src="https://ASSISTANT-HOST/widget.js" async
 *     data-partner-key="ttw_…"            (required; from `assistant partners add`)
 *     data-api-base="https://ASSISTANT-HOST"   (default: where this script came from)
 *     data-lang="en | zh-Hans | zh-Hant"   data-title="…"   data-accent="#0b5cad"
 *     data-position="bottom-right | bottom-left"   data-greeting="…"
 *     data-starters="First question|Second question"></script>
 *
 * No dependencies and no remote loads. Everything lives in a shadow root on a
 * <tt-assistant> element, so page styles and widget styles never meet. Content from
 * the server is only ever set with textContent, never parsed as HTML.
 * Events for the page (on the element, bubbling): ttw:open, ttw:close, ttw:token, ttw:answer.
 */
(function () {
  "use strict";
  var script = document.currentScript || document.querySelector('script[src*="widget.js"][data-partner-key]');
  if (!script || script.dataset.ttwLoaded) return;
  script.dataset.ttwLoaded = "1";

  var STRINGS = {
    en: {
      title: "Technology Transfer Assistant", open: "Open chat", close: "Close chat", send: "Send",
      label: "Your question", placeholder: "Ask a question…",
      greeting: "Hello! Ask me about China's international technology transfer centers. Every answer cites its documents.",
      thinking: "Searching the documents…", suggested: "Suggested questions", sources: "Sources", passage: "Open passage",
      footer: "Answers come from published documents and cite them.",
      you: "You", bot: "Assistant", undated: "date not stated",
      kinds: { policy_paper: "policy paper", news_report: "news report", unknown: "document" },
      e401: "This website's access key for the assistant is not valid. Please let the site owner know.",
      e403: "This website is not allowed to use the assistant.",
      e429: "Too many questions right now. Please try again in {s} seconds.",
      e503: "The assistant is temporarily unavailable. Please try again later.",
      e422: "Please shorten or rephrase your question.",
      network: "Cannot reach the assistant. Please check your connection and try again.",
      failed: "Something went wrong. Please try again.",
      cut: "The answer stopped before it was complete. Please try again."
    },
    "zh-Hans": {
      title: "技术转移助手", open: "打开对话", close: "关闭对话", send: "发送",
      label: "您的问题", placeholder: "请输入问题…",
      greeting: "您好！可以问我关于中国国际技术转移中心的问题，每个回答都会注明出处。",
      thinking: "正在检索文档…", suggested: "推荐问题", sources: "出处", passage: "查看原文",
      footer: "回答来自公开文档，并注明出处。",
      you: "您", bot: "助手", undated: "未注明日期",
      kinds: { policy_paper: "政策文件", news_report: "新闻报道", unknown: "文档" },
      e401: "本网站的助手访问密钥无效，请联系网站管理员。",
      e403: "本网站未获授权使用该助手。",
      e429: "提问过于频繁，请在 {s} 秒后重试。",
      e503: "助手暂时无法使用，请稍后再试。",
      e422: "请缩短或换一种方式提问。",
      network: "无法连接到助手，请检查网络后重试。",
      failed: "出现错误，请重试。",
      cut: "回答未完整返回，请重试。"
    },
    "zh-Hant": {
      title: "技術轉移助手", open: "開啟對話", close: "關閉對話", send: "送出",
      label: "您的問題", placeholder: "請輸入問題…",
      greeting: "您好！可以問我關於中國國際技術轉移中心的問題，每個回答都會註明出處。",
      thinking: "正在檢索文件…", suggested: "推薦問題", sources: "出處", passage: "查看原文",
      footer: "回答來自公開文件，並註明出處。",
      you: "您", bot: "助手", undated: "未註明日期",
      kinds: { policy_paper: "政策文件", news_report: "新聞報導", unknown: "文件" },
      e401: "本網站的助手存取金鑰無效，請聯絡網站管理員。",
      e403: "本網站未獲授權使用該助手。",
      e429: "提問過於頻繁，請在 {s} 秒後重試。",
      e503: "助手暫時無法使用，請稍後再試。",
      e422: "請縮短或換一種方式提問。",
      network: "無法連線到助手，請檢查網路後重試。",
      failed: "發生錯誤，請重試。",
      cut: "回答未完整傳回，請重試。"
    }
  };

  // ------------------------------------------------------------------ configuration
  var data = script.dataset;
  var lang = pickLanguage(data.lang || document.documentElement.lang || "en");
  var t = STRINGS[lang];
  var key = (data.partnerKey || "").trim();
  var apiBase = (data.apiBase || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  var title = data.title || t.title;
  var accent = data.accent && window.CSS && CSS.supports("color", data.accent) ? data.accent : "#0b5cad";
  var left = data.position === "bottom-left";
  var starters = (data.starters || "").split("|").map(function (s) { return s.trim(); }).filter(Boolean).slice(0, 6);
  var history = [];
  var busy = false;

  function pickLanguage(value) {
    var v = String(value).toLowerCase();
    if (v === "zh-hant" || /^zh-(tw|hk|mo)/.test(v)) return "zh-Hant";
    if (v.indexOf("zh") === 0) return "zh-Hans";
    return "en";
  }

  function onAccent(colour) { // dark text on a light accent, white otherwise
    var m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(colour);
    if (!m) return "#ffffff";
    var h = m[1].length === 3 ? m[1].replace(/(.)/g, "$1$1") : m[1];
    var rgb = [0, 2, 4].map(function (i) { return parseInt(h.substr(i, 2), 16) / 255; });
    var lum = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
    return lum > 0.6 ? "#1f2328" : "#ffffff";
  }

  // ---------------------------------------------------------------------- styles
  var CSS_TEXT = [
    ":host{all:initial}",
    "*{box-sizing:border-box}",
    "[hidden]{display:none!important}",
    ".root{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans','PingFang SC','Microsoft YaHei',sans-serif;color:#1f2328}",
    "button,textarea{font:inherit;color:inherit}",
    ":focus-visible{outline:3px solid #1f6feb;outline-offset:2px}",
    ".bubble{position:fixed;bottom:20px;right:20px;width:56px;height:56px;border-radius:50%;border:0;cursor:pointer;",
    "background:var(--accent);color:var(--on-accent);box-shadow:0 4px 14px rgba(0,0,0,.3);display:flex;align-items:center;justify-content:center;z-index:2147483000}",
    ".bubble svg{width:28px;height:28px;fill:currentColor}",
    ".panel{position:fixed;bottom:88px;right:20px;width:390px;max-width:calc(100vw - 40px);height:640px;max-height:calc(100vh - 110px);",
    "display:flex;flex-direction:column;background:#fff;border-radius:12px;box-shadow:0 10px 40px rgba(0,0,0,.3);overflow:hidden;z-index:2147483001}",
    ".left .bubble,.left .panel{right:auto;left:20px}",
    "header{display:flex;align-items:center;gap:8px;padding:10px 10px 10px 16px;background:var(--accent);color:var(--on-accent)}",
    "h2{flex:1;margin:0;font-size:16px;font-weight:600}",
    ".close{width:36px;height:36px;border:0;border-radius:8px;background:transparent;color:inherit;font-size:24px;line-height:1;cursor:pointer}",
    ".log{position:relative;flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:10px;background:#f6f8fa}",
    ".msg{max-width:92%;padding:8px 12px;border-radius:10px;white-space:pre-wrap;overflow-wrap:anywhere}",
    ".user{align-self:flex-end;background:var(--accent);color:var(--on-accent)}",
    ".bot{align-self:flex-start;background:#fff;border:1px solid #d0d7de}",
    ".error{background:#fff5f5;border-color:#cf222e;color:#82071e}",
    ".notice{margin:0 0 6px;font-size:13px;color:#7d4e00}",
    ".cites{margin:8px 0 0;padding:8px 0 0;border-top:1px solid #d0d7de;list-style:none;font-size:13px;white-space:normal}",
    ".cites-label{font-size:12px;font-weight:600;color:#57606a;margin:8px 0 0}",
    ".cites li{margin:4px 0}",
    "summary{cursor:pointer;color:#0550ae}",
    "blockquote{margin:6px 0 2px;padding:6px 8px;border-left:3px solid var(--accent);background:#f6f8fa;white-space:pre-wrap}",
    ".meta{margin:0;color:#57606a;font-size:12px}",
    ".starters{display:flex;flex-wrap:wrap;gap:6px;padding:0 12px 10px;background:#f6f8fa}",
    ".starter{border:1px solid #8c959f;background:#fff;border-radius:16px;padding:4px 10px;font-size:13px;cursor:pointer;text-align:left}",
    "form{display:flex;gap:8px;padding:10px;border-top:1px solid #d0d7de;background:#fff}",
    "textarea{flex:1;resize:none;min-height:42px;max-height:120px;padding:9px;border:1px solid #8c959f;border-radius:8px;background:#fff}",
    ".send{border:0;border-radius:8px;padding:0 16px;background:var(--accent);color:var(--on-accent);cursor:pointer;font-weight:600}",
    ".send:disabled{opacity:.55;cursor:default}",
    ".foot{margin:0;padding:0 12px 8px;font-size:11px;color:#57606a;background:#fff}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    "@media (max-width:480px){.panel,.left .panel{inset:0;width:100%;max-width:none;height:100%;max-height:none;border-radius:0}",
    ".open .bubble{display:none}}"
  ].join("\n");

  // ------------------------------------------------------------------------- DOM
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = String(text);
    return node;
  }

  var host = document.createElement("tt-assistant");
  host.setAttribute("style", "all:initial !important;display:block !important");
  var shadow = host.attachShadow({ mode: "open" });
  var style = el("style");
  style.textContent = CSS_TEXT;
  var root = el("div", "root" + (left ? " left" : ""));
  root.lang = lang;
  root.style.setProperty("--accent", accent);
  root.style.setProperty("--on-accent", onAccent(accent));

  var bubble = el("button", "bubble");
  bubble.type = "button";
  bubble.setAttribute("aria-label", t.open + ": " + title);
  bubble.setAttribute("aria-expanded", "false");
  bubble.setAttribute("aria-controls", "ttw-panel");
  var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  var path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01z");
  svg.appendChild(path);
  bubble.appendChild(svg);

  var panel = el("div", "panel");
  panel.id = "ttw-panel";
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-modal", "false");
  panel.setAttribute("aria-labelledby", "ttw-title");
  var header = el("header");
  var h2 = el("h2", null, title);
  h2.id = "ttw-title";
  var closeButton = el("button", "close", "×");
  closeButton.type = "button";
  closeButton.setAttribute("aria-label", t.close);
  header.append(h2, closeButton);

  var log = el("div", "log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  log.setAttribute("aria-label", title);

  var starterBox = el("div", "starters");
  starterBox.setAttribute("role", "group");
  starterBox.setAttribute("aria-label", t.suggested);
  starters.forEach(function (q) {
    var b = el("button", "starter", q);
    b.type = "button";
    b.addEventListener("click", function () { ask(q); });
    starterBox.appendChild(b);
  });
  starterBox.hidden = !starters.length;

  var form = el("form");
  var label = el("label", "sr", t.label);
  label.htmlFor = "ttw-input";
  var input = el("textarea");
  input.id = "ttw-input";
  input.rows = 1;
  input.maxLength = 4000;
  input.placeholder = t.placeholder;
  var send = el("button", "send", t.send);
  send.type = "submit";
  form.append(label, input, send);
  var foot = el("p", "foot", t.footer);

  panel.append(header, log, starterBox, form, foot);
  root.append(bubble, panel);
  shadow.append(style, root);
  addMessage("bot", data.greeting || t.greeting);

  function mount() { document.body.appendChild(host); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);

  // ---------------------------------------------------------------- behaviour
  function emit(name, detail) {
    host.dispatchEvent(new CustomEvent(name, { bubbles: true, composed: true, detail: detail || null }));
  }

  function openPanel() {
    panel.hidden = false;
    root.classList.add("open");
    bubble.setAttribute("aria-expanded", "true");
    input.focus();
    emit("ttw:open");
  }

  function closePanel() {
    panel.hidden = true;
    root.classList.remove("open");
    bubble.setAttribute("aria-expanded", "false");
    bubble.focus();
    emit("ttw:close");
  }

  bubble.addEventListener("click", function () { if (panel.hidden) openPanel(); else closePanel(); });
  closeButton.addEventListener("click", closePanel);
  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { e.preventDefault(); closePanel(); }
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); ask(input.value); }
  });
  form.addEventListener("submit", function (e) { e.preventDefault(); ask(input.value); });

  function addMessage(role, text) {
    var box = el("div", "msg " + role);
    box.appendChild(el("span", "sr", (role === "user" ? t.you : t.bot) + ": "));
    var body = el("span", "text", text);
    box.appendChild(body);
    log.appendChild(box);
    log.scrollTop = log.scrollHeight;
    return { box: box, body: body };
  }

  // Follow the answer as it grows, but never scroll the question out of view: the
  // start of a long answer is where reading begins.
  function follow(question) {
    log.scrollTop = Math.min(log.scrollHeight, question.offsetTop - 12);
  }

  function renderAnswer(msg, answer) {
    msg.body.textContent = answer.answer || "";
    if (answer.notice) msg.box.insertBefore(el("p", "notice", answer.notice), msg.body);
    var cites = answer.citations || [];
    if (!cites.length) return;
    msg.box.appendChild(el("p", "cites-label", t.sources));
    var list = el("ol", "cites");
    cites.forEach(function (c) {
      var item = el("li");
      var details = el("details");
      details.appendChild(el("summary", null, "[" + c.n + "] " + c.title));
      details.appendChild(el("blockquote", null, c.quote));
      details.appendChild(el("p", "meta", (t.kinds[c.kind] || t.kinds.unknown) + ", " + (c.published || t.undated)));
      // The server's own page of the passage (a signed, expiring link when its pages need a login).
      if (typeof c.url === "string" && c.url.charAt(0) === "/" && c.url.charAt(1) !== "/") {
        var open = el("a", "meta", t.passage + " ↗");
        open.href = apiBase + c.url;
        open.target = "_blank";
        open.rel = "noopener noreferrer";
        details.appendChild(open);
      }
      item.appendChild(details);
      list.appendChild(item);
    });
    msg.box.appendChild(list);
  }

  function showError(msg, text) {
    msg.box.classList.add("error");
    msg.box.setAttribute("role", "alert");
    msg.body.textContent = text;
  }

  async function errorFor(res) {
    if (res.status === 401) return t.e401;
    if (res.status === 403) return t.e403;
    if (res.status === 429) {
      var seconds = parseInt(res.headers.get("Retry-After") || "", 10);
      return t.e429.replace("{s}", isFinite(seconds) && seconds > 0 ? String(seconds) : "60");
    }
    if (res.status === 503) return t.e503;
    if (res.status === 422 || res.status === 413) return t.e422;
    return t.failed;
  }

  // fetch() rejects both when the server is down and when CORS refuses this page. A
  // no-cors request tells them apart: it succeeds (opaquely) whenever the server is up.
  async function unreachable() {
    try {
      await fetch(apiBase + "/healthz", { mode: "no-cors", cache: "no-store", credentials: "omit" });
      return t.e403;
    } catch (e) {
      return t.network;
    }
  }

  async function readEvents(res, onEvent) {
    var reader = res.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    for (;;) {
      var chunk = await reader.read();
      buffer += decoder.decode(chunk.value || new Uint8Array(0), { stream: !chunk.done });
      var blocks = buffer.split(/\r\n\r\n|\n\n|\r\r/);
      buffer = chunk.done ? "" : blocks.pop();
      blocks.forEach(function (block) { dispatch(block, onEvent); });
      if (chunk.done) return;
    }
  }

  function dispatch(block, onEvent) {
    var name = "message";
    var lines = [];
    block.split(/\r\n|\n|\r/).forEach(function (line) {
      if (!line || line[0] === ":") return;
      var i = line.indexOf(":");
      var field = i < 0 ? line : line.slice(0, i);
      var value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
      if (field === "event") name = value;
      else if (field === "data") lines.push(value);
    });
    if (!lines.length) return;
    try { onEvent(name, JSON.parse(lines.join("\n"))); } catch (e) { /* a malformed event is skipped */ }
  }

  async function ask(question) {
    question = String(question || "").trim();
    if (!question || busy) return;
    busy = true;
    send.disabled = true;
    starterBox.hidden = true;
    input.value = "";
    var asked = addMessage("user", question).box;
    var msg = addMessage("bot", t.thinking);
    msg.box.dataset.state = "waiting";
    log.setAttribute("aria-busy", "true");
    var streamed = "";
    var final = null;
    var problem = null;
    try {
      var res = await fetch(apiBase + "/v1/widget/chat", {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        headers: { "Content-Type": "application/json", "Accept": "text/event-stream", "X-Partner-Key": key },
        body: JSON.stringify({ message: question, history: history.slice(-10), stream: true })
      });
      if (!res.ok) problem = await errorFor(res);
      else await readEvents(res, function (name, payload) {
        if (name === "token" && !final) {
          streamed += payload.text || "";
          msg.body.textContent = streamed;
          msg.box.dataset.state = "streaming";
          follow(asked);
          emit("ttw:token");
        } else if (name === "done") {
          final = payload;
        } else if (name === "error") {
          problem = t.e503;
        }
      });
    } catch (e) {
      problem = final ? null : await unreachable();
    }
    if (final) {
      renderAnswer(msg, final); // the done answer is authoritative: it replaces the streamed text
      history.push({ role: "user", content: question }, { role: "assistant", content: final.answer || "" });
      emit("ttw:answer", { citations: (final.citations || []).length, grounded: !!final.grounded });
    } else {
      showError(msg, problem || t.cut);
    }
    msg.box.dataset.state = final ? "done" : "error";
    log.removeAttribute("aria-busy");
    follow(asked);
    busy = false;
    send.disabled = false;
  }
})();
