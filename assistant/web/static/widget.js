/*
 * Technology Transfer Assistant · chat widget for partner websites.
 *
 *   <script src="https://ASSISTANT-HOST/widget.js" async
 *     data-partner-key="ttw_…"            (required; from `assistant partners add`)
 *     data-api-base="https://ASSISTANT-HOST"   (default: where this script came from)
 *     data-lang="auto | en | zh-Hans | zh-Hant"   (default auto: the browser's language)
 *     data-title="…"   data-accent="#0b5cad"
 *     data-position="bottom-right | bottom-left"   data-greeting="…"
 *     data-starters="First question|Second question"></script>
 *
 * data-title, data-greeting and data-starters may also be given per language, e.g.
 * data-greeting-zh-hans="…" data-greeting-zh-hant="…" (used when that language is shown).
 *
 * No dependencies and no remote loads. Everything lives in a shadow root on a
 * <tt-assistant> element, so page styles and widget styles never meet. Content from
 * the server is only ever set with textContent, never parsed as HTML.
 * Events for the page (on the element, bubbling): ttw:open, ttw:close, ttw:token, ttw:answer,
 * ttw:feedback.
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
      cut: "The answer stopped before it was complete. Please try again.",
      stop: "Stop", stopped: "Stopped.", newChat: "New chat", more: "Suggested questions",
      rate: "Was this answer helpful?", up: "Helpful", down: "Not helpful",
      comment: "Tell us more (optional)", sendFeedback: "Send feedback",
      thanks: "Thank you for your feedback.", feedbackFailed: "Your feedback could not be sent."
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
      cut: "回答未完整返回，请重试。",
      stop: "停止", stopped: "已停止。", newChat: "新对话", more: "推荐问题",
      rate: "这个回答有帮助吗？", up: "有帮助", down: "没有帮助",
      comment: "补充说明（可选）", sendFeedback: "提交反馈",
      thanks: "感谢您的反馈。", feedbackFailed: "反馈未能发送。"
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
      cut: "回答未完整傳回，請重試。",
      stop: "停止", stopped: "已停止。", newChat: "新對話", more: "推薦問題",
      rate: "這個回答有幫助嗎？", up: "有幫助", down: "沒有幫助",
      comment: "補充說明（選填）", sendFeedback: "送出意見",
      thanks: "感謝您的意見回饋。", feedbackFailed: "意見回饋未能送出。"
    }
  };

  // ------------------------------------------------------------------ configuration
  var data = script.dataset;
  var lang = pickLanguage(data.lang);
  var t = STRINGS[lang];
  var key = (data.partnerKey || "").trim();
  var apiBase = (data.apiBase || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  var title = local("title") || t.title;
  var accent = data.accent && window.CSS && CSS.supports("color", data.accent) ? data.accent : "#0b5cad";
  var left = data.position === "bottom-left";
  var starters = (local("starters") || "").split("|").map(function (s) { return s.trim(); }).filter(Boolean).slice(0, 6);
  var history = [];
  var busy = false;
  var controller = null; // the AbortController of the answer being fetched
  var conversation = newConversationId();

  // data-lang: en, zh-Hans or zh-Hant; "auto" (or none) follows the browser: zh-TW, zh-HK,
  // zh-MO and zh-Hant-* are Traditional, any other zh Simplified, everything else English.
  function pickLanguage(value) {
    var v = String(value || "auto").trim().toLowerCase();
    if (v === "auto" || !v) {
      v = String((navigator.languages && navigator.languages[0]) || navigator.language || "en").toLowerCase();
    }
    if (/^zh-hant/.test(v) || /^zh-(tw|hk|mo)\b/.test(v)) return "zh-Hant";
    if (/^zh\b/.test(v)) return "zh-Hans";
    return "en";
  }

  // data-NAME-zh-hans / -zh-hant / -en for the language shown, else data-NAME.
  function local(name) {
    var suffix = { en: "En", "zh-Hans": "ZhHans", "zh-Hant": "ZhHant" }[lang];
    var value = data[name + suffix];
    return value != null && value !== "" ? value : data[name];
  }

  function newConversationId() {
    var bytes = crypto.getRandomValues(new Uint8Array(8));
    return "w-" + Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
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
    ".tools{display:flex;gap:6px;padding:6px 10px 0;background:#fff;border-top:1px solid #d0d7de}",
    ".tool{border:1px solid #8c959f;background:#fff;border-radius:14px;padding:2px 10px;font-size:12px;cursor:pointer}",
    ".tool[aria-expanded=true]{background:#ddf4ff;border-color:#0969da}",
    ".passage{display:inline-block;margin:2px 0 0;font-size:12px;color:#0550ae}",
    ".rate{display:flex;flex-wrap:wrap;align-items:center;gap:6px;margin:8px 0 0;padding-top:6px;border-top:1px dashed #d0d7de;font-size:12px;color:#57606a;white-space:normal}",
    ".thumb{border:1px solid #d0d7de;background:#fff;border-radius:14px;padding:1px 9px;font-size:15px;cursor:pointer;line-height:1.4}",
    ".thumb[aria-pressed=true]{background:#ddf4ff;border-color:#0969da}",
    ".fb{display:flex;flex-direction:column;gap:6px;width:100%}",
    ".fb textarea{min-height:56px;font-size:13px}",
    ".fb button{align-self:flex-start;border:0;border-radius:8px;padding:4px 12px;background:var(--accent);color:var(--on-accent);cursor:pointer;font-size:13px}",
    ".fb-status{margin:0;width:100%}",
    ".stopped{color:#57606a}",
    ".stop{border:1px solid #cf222e;border-radius:8px;padding:0 14px;background:#fff;color:#82071e;cursor:pointer;font-weight:600}",
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
  starterBox.id = "ttw-starters";

  // After the first question the starters fold away; this toggle brings them back.
  var tools = el("div", "tools");
  var moreButton = el("button", "tool more", t.more);
  moreButton.type = "button";
  moreButton.setAttribute("aria-controls", "ttw-starters");
  moreButton.setAttribute("aria-expanded", "false");
  moreButton.hidden = true;
  var newButton = el("button", "tool new", t.newChat);
  newButton.type = "button";
  tools.append(moreButton, newButton);

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
  var stop = el("button", "stop", t.stop);
  stop.type = "button";
  stop.hidden = true;
  form.append(label, input, send, stop);
  var foot = el("p", "foot", t.footer);

  panel.append(header, log, starterBox, tools, form, foot);
  root.append(bubble, panel);
  shadow.append(style, root);
  var greeting = local("greeting") || t.greeting;
  addMessage("bot", greeting);

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
  stop.addEventListener("click", function () { if (controller) controller.abort(); });
  moreButton.addEventListener("click", function () { showStarters(starterBox.hidden); });
  newButton.addEventListener("click", newChat);

  function showStarters(show) {
    starterBox.hidden = !show || !starters.length;
    moreButton.setAttribute("aria-expanded", String(!starterBox.hidden));
  }

  // A new conversation: the answer being fetched is stopped, the log and history cleared.
  function newChat() {
    if (controller) controller.abort();
    history = [];
    conversation = newConversationId();
    while (log.firstChild) log.removeChild(log.firstChild);
    addMessage("bot", greeting);
    moreButton.hidden = true;
    showStarters(true);
    input.value = "";
    input.focus();
  }

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

  function renderAnswer(msg, answer, question) {
    msg.body.textContent = answer.answer || "";
    if (answer.notice) msg.box.insertBefore(el("p", "notice", answer.notice), msg.body);
    var cites = answer.citations || [];
    if (cites.length) {
      msg.box.appendChild(el("p", "cites-label", t.sources));
      var list = el("ol", "cites");
      cites.forEach(function (c) {
        var item = el("li");
        var details = el("details");
        details.appendChild(el("summary", null, "[" + c.n + "] " + c.title));
        details.appendChild(el("blockquote", null, c.quote));
        details.appendChild(el("p", "meta", (t.kinds[c.kind] || t.kinds.unknown) + ", " + (c.published || t.undated)));
        item.appendChild(details);
        var href = passageHref(c);
        if (href) {
          var open = el("a", "passage", t.passage + " ↗");
          open.href = href;
          open.target = "_blank";
          open.rel = "noopener noreferrer";
          item.appendChild(open);
        }
        list.appendChild(item);
      });
      msg.box.appendChild(list);
    }
    msg.box.appendChild(feedbackRow(question, answer));
  }

  // The server's page of a cited passage: the citation's `url` (signed and expiring when
  // the server's pages need a login), else /sources/{doc}?start&end; in the widget's language.
  function passageHref(c) {
    var path;
    if (typeof c.url === "string" && c.url.charAt(0) === "/" && c.url.charAt(1) !== "/") path = c.url;
    else if (c.doc_id && isFinite(c.start) && isFinite(c.end)) {
      path = "/sources/" + encodeURIComponent(c.doc_id) + "?start=" + Number(c.start) + "&end=" + Number(c.end) + "#quote";
    } else return null;
    var link = new URL(path, apiBase + "/");
    link.searchParams.set("lang", lang);
    return link.href;
  }

  // 👍 / 👎 and an optional comment, sent to POST /v1/widget/feedback.
  function feedbackRow(question, answer) {
    var row = el("div", "rate");
    row.setAttribute("role", "group");
    row.setAttribute("aria-label", t.rate);
    row.appendChild(el("span", null, t.rate));
    var form = el("form", "fb");
    form.hidden = true;
    var note = el("textarea");
    note.maxLength = 2000;
    note.rows = 2;
    note.setAttribute("aria-label", t.comment);
    note.placeholder = t.comment;
    var submit = el("button", null, t.sendFeedback);
    submit.type = "submit";
    form.append(note, submit);
    var status = el("p", "fb-status");
    status.setAttribute("role", "status");
    var rating = null;
    var thumbs = [["up", "👍", t.up], ["down", "👎", t.down]].map(function (spec) {
      var b = el("button", "thumb", spec[1]);
      b.type = "button";
      b.dataset.rating = spec[0];
      b.setAttribute("aria-label", spec[2]);
      b.setAttribute("aria-pressed", "false");
      b.addEventListener("click", function () {
        rating = spec[0];
        thumbs.forEach(function (x) { x.setAttribute("aria-pressed", String(x === b)); });
        form.hidden = false;
        note.focus();
      });
      return b;
    });
    thumbs.forEach(function (b) { row.appendChild(b); });
    form.addEventListener("submit", async function (e) {
      e.preventDefault();
      if (!rating) return;
      submit.disabled = true;
      var body = {
        rating: rating,
        question: question,
        answer: answer.answer || "",
        citations: (answer.citations || []).slice(0, 20).map(function (c) {
          return { n: c.n, doc_id: c.doc_id, title: c.title, quote: c.quote, start: c.start, end: c.end };
        }),
        backend: String(answer.backend || ""),
        conversation_id: conversation
      };
      var comment = note.value.trim();
      if (comment) body.comment = comment;
      var problem = null;
      try {
        var res = await fetch(apiBase + "/v1/widget/feedback", {
          method: "POST",
          mode: "cors",
          credentials: "omit",
          headers: { "Content-Type": "application/json", "X-Partner-Key": key },
          body: JSON.stringify(body)
        });
        if (!res.ok) problem = res.status === 429 ? await errorFor(res) : t.feedbackFailed;
      } catch (err) {
        problem = t.feedbackFailed;
      }
      if (problem) {
        status.textContent = problem;
        submit.disabled = false;
        row.appendChild(status);
        return;
      }
      while (row.firstChild) row.removeChild(row.firstChild);
      status.textContent = t.thanks;
      row.appendChild(status);
      row.dataset.sent = rating;
      emit("ttw:feedback", { rating: rating });
    });
    row.appendChild(form);
    return row;
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
    send.hidden = true;
    stop.hidden = false;
    showStarters(false);
    moreButton.hidden = !starters.length;
    input.value = "";
    var asked = addMessage("user", question).box;
    var msg = addMessage("bot", t.thinking);
    msg.box.dataset.state = "waiting";
    log.setAttribute("aria-busy", "true");
    var streamed = "";
    var final = null;
    var problem = null;
    var mine = controller = new AbortController();
    try {
      var res = await fetch(apiBase + "/v1/widget/chat", {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        signal: mine.signal,
        headers: { "Content-Type": "application/json", "Accept": "text/event-stream", "X-Partner-Key": key },
        body: JSON.stringify({ message: question, history: history.slice(-10), stream: true })
      });
      if (!res.ok) problem = await errorFor(res);
      else await readEvents(res, function (name, payload) {
        if (mine.signal.aborted) return;
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
      problem = final || mine.signal.aborted ? null : await unreachable();
    }
    if (controller === mine) controller = null;
    var stopped = mine.signal.aborted;
    if (stopped) {
      // Stopped by the visitor (or a new chat): what streamed stays, marked as stopped.
      if (!streamed) msg.body.textContent = "";
      msg.box.appendChild(el("p", "stopped", t.stopped));
    } else if (final) {
      renderAnswer(msg, final, question); // the done answer is authoritative: it replaces the streamed text
      history.push({ role: "user", content: question }, { role: "assistant", content: final.answer || "" });
      emit("ttw:answer", { citations: (final.citations || []).length, grounded: !!final.grounded });
    } else {
      showError(msg, problem || t.cut);
    }
    msg.box.dataset.state = stopped ? "stopped" : final ? "done" : "error";
    log.removeAttribute("aria-busy");
    if (msg.box.isConnected) follow(asked);
    busy = false;
    send.hidden = false;
    stop.hidden = true;
    if (stopped) input.focus();
  }
})();
