/*
 * Chat widget for the Lancashire Children and Young People's Trust assistant.
 * One tag embeds it:
 *   <script src="https://SERVER/webhooks/widget/widget.js" data-title="..."
 *     data-primary-color="#1d70b8" data-greeting="..." data-position="right|left"
 *     data-exit-url="https://..." defer></script>
 * The server is derived from this script's own src. No framework.
 * Safety rules: everything from the bot or the user is inserted as text
 * (textContent / createTextNode), never innerHTML; only http(s) URLs become
 * links; the conversation token lives in sessionStorage only, never in a URL.
 * Every message carries a random message_id; after a network error, a 502 or a
 * 503 the same message (same id) is sent again a few times, so the server can
 * answer it once. Quick exit and "Delete this chat" also delete the
 * conversation on the server (navigator.sendBeacon, token in the body).
 */
(function () {
  "use strict";
  if (window.__lcwLoaded) return;
  window.__lcwLoaded = true;

  var script = document.currentScript || (function () {
    var all = document.querySelectorAll('script[src*="widget.js"]');
    return all[all.length - 1];
  })();
  if (!script || !script.src) return;

  var BASE = new URL(".", script.src).href;
  var DATA = script.dataset;
  var KEY = "lcw.";
  var TOKEN_KEY = KEY + "token";
  var OPEN_KEY = KEY + "open";
  var cfg = {
    title: DATA.title || "Chat with us",
    greeting: DATA.greeting,
    exitUrl: httpUrl(DATA.exitUrl) || "https://www.bbc.co.uk/weather",
    maxChars: 500
  };
  var memoryToken = null;
  var RETRY_DELAYS_MS = [400, 800, 1600];
  var TOKEN_HEADER = "X-Chat-Token";
  var busy = false;
  var started = false;
  var shiftTimes = [];
  var ui = {};
  var narrow = window.matchMedia("(max-width: 599.98px)");

  function httpUrl(value) {
    try {
      var url = new URL(String(value));
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  // ---- storage (sessionStorage only; may be unavailable) ----------------------
  function store(name, value) {
    try {
      if (value === null) sessionStorage.removeItem(name);
      else sessionStorage.setItem(name, value);
    } catch (e) { /* storage blocked: keep going in memory */ }
  }
  function stored(name) {
    try { return sessionStorage.getItem(name); } catch (e) { return null; }
  }
  function getToken() { return memoryToken || stored(TOKEN_KEY); }
  function setToken(token) { memoryToken = token; store(TOKEN_KEY, token); }
  function forgetAll() {
    memoryToken = null;
    try {
      for (var i = sessionStorage.length - 1; i >= 0; i--) {
        var name = sessionStorage.key(i);
        if (name && name.indexOf(KEY) === 0) sessionStorage.removeItem(name);
      }
    } catch (e) { /* nothing stored */ }
  }

  // ---- DOM helpers: attributes and text only ----------------------------------
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var name in attrs || {}) {
      if (attrs[name] !== null && attrs[name] !== undefined) node.setAttribute(name, attrs[name]);
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function srText(text) { return el("span", { "class": "lcw-sr" }, text); }

  function appendText(parent, text, linkify) {
    String(text).split("\n").forEach(function (line, index) {
      if (index) parent.appendChild(document.createElement("br"));
      var last = 0;
      var pattern = /https?:\/\/[^\s<>"']+/gi;
      var match;
      while (linkify && (match = pattern.exec(line))) {
        var raw = match[0].replace(/[.,;:!?)\]]+$/, "");
        var url = httpUrl(raw);
        if (match.index > last) parent.appendChild(document.createTextNode(line.slice(last, match.index)));
        if (url) {
          var link = el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, raw);
          link.appendChild(srText(" (opens in a new tab)"));
          parent.appendChild(link);
        } else {
          parent.appendChild(document.createTextNode(raw));
        }
        last = match.index + raw.length;
        pattern.lastIndex = last;
      }
      if (last < line.length) parent.appendChild(document.createTextNode(line.slice(last)));
    });
  }

  // ---- colours: keep AA contrast whatever data-primary-color says ------------
  function luminance(hex) {
    var h = hex.slice(1);
    if (h.length === 3) h = h.replace(/./g, "$&$&");
    return [0, 2, 4].map(function (i) {
      var c = parseInt(h.substr(i, 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    }).reduce(function (sum, c, i) { return sum + c * [0.2126, 0.7152, 0.0722][i]; }, 0);
  }
  function contrast(a, b) { return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05); }
  function applyColour(root, colour) {
    if (!/^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(colour || "")) return;
    var lum = luminance(colour);
    var dark = 0.0065; // #0b0c0c
    root.style.setProperty("--lcw-primary", colour);
    root.style.setProperty("--lcw-on-primary", contrast(lum, 1) >= contrast(lum, dark) ? "#ffffff" : "#0b0c0c");
    root.style.setProperty("--lcw-accent", contrast(lum, 1) >= 4.5 ? colour : "#0b0c0c");
  }

  // ---- network: JSON over text/plain POST, so no CORS preflight is needed ----
  function api(path, body) {
    var controller = window.AbortController ? new AbortController() : null;
    var timer = setTimeout(function () { if (controller) controller.abort(); }, 70000);
    var options = { method: body ? "POST" : "GET", credentials: "omit", cache: "no-store",
      referrerPolicy: "no-referrer", signal: controller ? controller.signal : undefined };
    if (body) {
      options.headers = { "Content-Type": "text/plain;charset=UTF-8" };
      options.body = JSON.stringify(body);
    }
    return fetch(BASE + path, options).then(function (res) {
      clearTimeout(timer);
      var renewed = res.ok && res.headers.get(TOKEN_HEADER);
      if (renewed && body && getToken() === body.token) setToken(renewed);
      return res.json().catch(function () { return null; }).then(function (data) {
        if (!res.ok) throw { status: res.status, data: data };
        return data;
      });
    }, function () {
      clearTimeout(timer);
      throw { status: 0 };
    });
  }
  // The same message again after a network error, 502 or 503 (same message_id: answered once).
  function withRetries(attempt, tries) {
    return attempt().catch(function (error) {
      var status = error && error.status;
      if (tries >= RETRY_DELAYS_MS.length || !(status === 0 || status === 502 || status === 503)) throw error;
      return new Promise(function (resolve) {
        setTimeout(resolve, RETRY_DELAYS_MS[tries] * (0.75 + Math.random() / 2));
      }).then(function () { return withRetries(attempt, tries + 1); });
    });
  }
  function newMessageId() {
    var bytes = new Uint8Array(16);
    if (window.crypto && window.crypto.getRandomValues) window.crypto.getRandomValues(bytes);
    else for (var i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }
  // Deletes the conversation on the server, even while the page is being left.
  function forgetOnServer() {
    var token = getToken();
    if (!token) return;
    var body = JSON.stringify({ token: token });
    try {
      if (navigator.sendBeacon && navigator.sendBeacon(BASE + "forget",
        new Blob([body], { type: "text/plain;charset=UTF-8" }))) return;
    } catch (e) { /* fall back to fetch */ }
    try {
      fetch(BASE + "forget", { method: "POST", body: body, keepalive: true, credentials: "omit",
        referrerPolicy: "no-referrer", headers: { "Content-Type": "text/plain;charset=UTF-8" } });
    } catch (e) { /* nothing more can be done from here */ }
  }
  function ensureToken() {
    var token = getToken();
    if (token) return Promise.resolve(token);
    return api("session", {}).then(function (data) {
      setToken(data.token);
      return data.token;
    });
  }

  // ---- conversation view ----------------------------------------------------------
  function scrollDown() { ui.log.scrollTop = ui.log.scrollHeight; }
  // A new reply is read from its start: its first message goes to the top of the conversation.
  function scrollToStart(node) { ui.log.scrollTop = Math.max(0, node.offsetTop - 8); }
  function addToLog(node, keepPlace) {
    ui.log.insertBefore(node, ui.typing);
    if (!keepPlace) scrollDown();
  }

  // Tap-to-call and web links sent by the server as data (never made from what anyone typed).
  var TEL_HREF = /^tel:\+?[0-9]{3,15}$/;
  function addLinks(bubble, links) {
    var list = null;
    (Array.isArray(links) ? links : []).forEach(function (link) {
      if (!link || typeof link.href !== "string" || typeof link.text !== "string") return;
      var ok = (link.type === "tel" && TEL_HREF.test(link.href)) ||
        (link.type === "url" && /^https:\/\//.test(link.href));
      if (!ok) return;
      if (!list) list = el("div", { "class": "lcw-links" });
      var attrs = { href: link.href, "class": "lcw-link lcw-link--" + link.type,
        "aria-label": String(link.label || link.text) };
      if (link.type === "url") { attrs.target = "_blank"; attrs.rel = "noopener noreferrer"; }
      list.appendChild(el("a", attrs, link.type === "tel" ? "Call " + link.text : link.text));
    });
    if (list) bubble.appendChild(list);
  }

  function addMessage(sender, text, links, keepPlace) {
    var item = el("div", { "class": "lcw-msg lcw-msg--" + sender });
    item.appendChild(srText(sender === "user" ? "You said: " : "Assistant said: "));
    var bubble = el("div", { "class": "lcw-bubble" });
    appendText(bubble, text, sender === "bot");
    if (sender === "bot") addLinks(bubble, links);
    item.appendChild(bubble);
    addToLog(item, keepPlace);
    return item;
  }
  function clearReplies() {
    if (ui.replies && ui.replies.parentNode) ui.replies.parentNode.removeChild(ui.replies);
    ui.replies = null;
  }
  function addReplies(buttons) {
    clearReplies();
    var group = el("div", { "class": "lcw-replies", role: "group", "aria-label": "Suggested replies" });
    buttons.forEach(function (button) {
      var node = el("button", { type: "button", "class": "lcw-reply" }, button.title);
      node.addEventListener("click", function () {
        ui.input.focus();
        send({ payload: String(button.payload) }, String(button.title));
      });
      group.appendChild(node);
    });
    ui.replies = group;
    addToLog(group, true);
  }
  function showBotMessages(messages, announce) {
    var spoken = [];
    var buttons = null;
    var first = null;
    (Array.isArray(messages) ? messages : []).forEach(function (message) {
      if (!message) return;
      if (message.text) {
        var item = addMessage("bot", message.text, message.links, true);
        first = first || item;
        spoken.push(message.text);
      }
      buttons = Array.isArray(message.buttons) && message.buttons.length ? message.buttons : null;
    });
    if (buttons) {
      addReplies(buttons);
      spoken.push("Choices: " + buttons.map(function (b) { return b.title; }).join(", ") + ".");
    }
    if (first) scrollToStart(first);
    if (announce) say(spoken);
  }
  // The polite live region only ever holds the newest bot message(s).
  function say(texts) {
    ui.live.textContent = "";
    texts.forEach(function (text) { ui.live.appendChild(el("p", null, text)); });
  }
  function setTyping(on) {
    ui.typing.hidden = !on;
    ui.log.setAttribute("aria-busy", on ? "true" : "false");
    if (on) scrollDown();
  }
  function clearError() {
    if (ui.error && ui.error.parentNode) ui.error.parentNode.removeChild(ui.error);
    ui.error = null;
  }
  function showError(text, retry) {
    clearError();
    var box = el("div", { "class": "lcw-error", role: "alert" });
    box.appendChild(el("p", null, text));
    if (retry) {
      var again = el("button", { type: "button", "class": "lcw-retry" }, "Try again");
      again.addEventListener("click", function () {
        clearError();
        ui.input.focus();
        retry();
      });
      box.appendChild(again);
    }
    ui.error = box;
    addToLog(box);
  }
  function errorText(error) {
    if (error && error.status && error.data && error.data.message) {
      return String(error.data.message) + (error.data.help ? " " + String(error.data.help) : "");
    }
    return "We can't reach the chat right now. Check your internet connection, then try again.";
  }

  // ---- sending ----------------------------------------------------------------------
  function send(body, shown) {
    if (busy) return;
    clearError();
    clearReplies();
    addMessage("user", shown);
    body.messageId = newMessageId(); // kept for every retry of this message
    deliver(body);
  }
  function deliver(body) {
    busy = true;
    setTyping(true);
    function post(token) {
      return withRetries(function () {
        return api("message", { token: getToken() || token, text: body.text, payload: body.payload,
          message_id: body.messageId });
      }, 0);
    }
    ensureToken().then(post).catch(function (error) {
      if (error && error.status === 401) { // token no longer valid: start a new chat
        setToken(null);
        return ensureToken().then(post);
      }
      throw error;
    }).then(function (messages) {
      busy = false;
      setTyping(false);
      showBotMessages(messages, true);
    }, function (error) {
      busy = false;
      setTyping(false);
      var canRetry = !error || !error.status || error.status >= 500 || error.status === 429;
      showError(errorText(error), canRetry ? function () { deliver(body); } : null);
    });
  }
  function loadHistory() {
    var token = getToken();
    if (!token) return;
    setTyping(true);
    api("history", { token: token }).then(function (turns) {
      setTyping(false);
      var lastButtons = null;
      (Array.isArray(turns) ? turns : []).forEach(function (turn) {
        if (turn.sender === "user") addMessage("user", turn.text);
        else if (turn.text) addMessage("bot", turn.text, turn.links);
        lastButtons = turn.sender === "bot" && turn.buttons && turn.buttons.length ? turn.buttons : null;
      });
      if (lastButtons) addReplies(lastButtons);
    }, function (error) {
      setTyping(false);
      if (error && error.status === 401) { setToken(null); return; }
      showError("We could not load your earlier messages.", loadHistory);
    });
  }

  // ---- quick exit (GOV.UK "Exit this page" pattern) ----------------------------------
  function quickExit() {
    forgetOnServer();
    forgetAll();
    if (ui.log) {
      while (ui.log.firstChild) ui.log.removeChild(ui.log.firstChild);
      ui.live.textContent = "";
      ui.input.value = "";
      ui.panel.hidden = true;
    }
    if (document.body) document.body.appendChild(el("div", { "class": "lcw-cover" }));
    // Do not tell the neutral site which page the user came from.
    document.head.appendChild(el("meta", { name: "referrer", content: "no-referrer" }));
    window.location.replace(cfg.exitUrl);
  }
  function onKeydown(event) {
    if (event.key !== "Shift") { shiftTimes = []; return; }
    if (event.repeat) return;
    var now = Date.now();
    shiftTimes = shiftTimes.filter(function (t) { return now - t < 1000; });
    shiftTimes.push(now);
    if (shiftTimes.length >= 3) {
      shiftTimes = [];
      quickExit();
    }
  }

  // ---- panel ------------------------------------------------------------------------
  function setModal() {
    ui.panel.setAttribute("aria-modal", narrow.matches ? "true" : "false");
  }
  function openPanel(moveFocus) {
    ui.panel.hidden = false;
    ui.bar.hidden = true;
    ui.launcher.setAttribute("aria-expanded", "true");
    store(OPEN_KEY, "1");
    setModal();
    if (!started) {
      started = true;
      ui.ready.then(function () {
        if (cfg.greeting) addMessage("bot", cfg.greeting);
        loadHistory();
      });
    }
    if (moveFocus) ui.input.focus();
    scrollDown();
  }
  // "Delete this chat": deleted on the server and in this tab, then the panel closes.
  function closeAndForget() {
    forgetOnServer();
    forgetAll();
    while (ui.log.firstChild !== ui.typing) ui.log.removeChild(ui.log.firstChild);
    ui.replies = null;
    ui.error = null;
    ui.live.textContent = "";
    ui.input.value = "";
    updateCount();
    started = false;
    closePanel();
    say(["This chat has been deleted."]);
  }
  function closePanel() {
    ui.panel.hidden = true;
    ui.bar.hidden = false;
    ui.launcher.setAttribute("aria-expanded", "false");
    store(OPEN_KEY, null);
    ui.launcher.focus();
  }
  function focusables() {
    return Array.prototype.filter.call(
      ui.panel.querySelectorAll("button, a[href], input, [tabindex='0']"),
      function (node) { return !node.disabled && node.offsetParent !== null; });
  }
  function onPanelKeydown(event) {
    if (event.key === "Escape") {
      event.preventDefault();
      closePanel();
    } else if (event.key === "Tab" && narrow.matches) { // full screen: keep focus inside
      var nodes = focusables();
      var first = nodes[0];
      var last = nodes[nodes.length - 1];
      if (event.shiftKey && document.activeElement === first) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && document.activeElement === last) {
        event.preventDefault();
        first.focus();
      }
    }
  }
  function updateCount() {
    var used = ui.input.value.length;
    ui.count.textContent = used + " / " + cfg.maxChars;
    if (used >= cfg.maxChars && !ui.atLimit) say(["You have reached the limit of " + cfg.maxChars + " characters."]);
    ui.atLimit = used >= cfg.maxChars;
  }
  function applyConfig() {
    ui.title.textContent = cfg.title;
    ui.launcherText.textContent = cfg.title;
    ui.input.setAttribute("maxlength", String(cfg.maxChars));
    ui.hint.textContent = "You can type up to " + cfg.maxChars + " characters.";
    updateCount();
  }
  function exitButton() {
    var button = el("button", { type: "button", "class": "lcw-exit" }, "Exit this page");
    button.addEventListener("click", quickExit);
    return button;
  }

  function build() {
    var root = el("div", { "class": "lcw lcw--" + (DATA.position === "left" ? "left" : "right") });
    applyColour(root, DATA.primaryColor);
    ui.live = el("div", { "class": "lcw-sr", "aria-live": "polite" });

    ui.bar = el("div", { "class": "lcw-bar" });
    ui.launcher = el("button", { type: "button", "class": "lcw-launcher",
      "aria-expanded": "false", "aria-controls": "lcw-panel" });
    var icon = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    icon.setAttribute("viewBox", "0 0 24 24");
    icon.setAttribute("aria-hidden", "true");
    icon.setAttribute("focusable", "false");
    var path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", "M4 4h16v11H8l-4 4z");
    icon.appendChild(path);
    ui.launcherText = el("span", null, cfg.title);
    ui.launcher.appendChild(icon);
    ui.launcher.appendChild(ui.launcherText);
    ui.launcher.addEventListener("click", function () { openPanel(true); });
    ui.bar.appendChild(exitButton());
    ui.bar.appendChild(ui.launcher);

    ui.panel = el("div", { id: "lcw-panel", "class": "lcw-panel", role: "dialog",
      "aria-labelledby": "lcw-title", "aria-modal": "false" });
    ui.panel.hidden = true;
    var header = el("div", { "class": "lcw-header" });
    ui.title = el("h2", { id: "lcw-title", "class": "lcw-title" }, cfg.title);
    var close = el("button", { type: "button", "class": "lcw-close", "aria-label": "Close chat" });
    close.appendChild(el("span", { "aria-hidden": "true" }, "\u00d7"));
    close.addEventListener("click", closePanel);
    header.appendChild(ui.title);
    header.appendChild(exitButton());
    header.appendChild(close);
    var note = el("p", { "class": "lcw-note" }, "To leave this page fast, press Exit or press Shift 3 times.");

    ui.log = el("div", { "class": "lcw-log", role: "region", "aria-label": "Conversation", tabindex: "0" });
    ui.typing = el("div", { "class": "lcw-msg lcw-msg--bot lcw-typing" });
    var dots = el("div", { "class": "lcw-bubble", "aria-hidden": "true" });
    for (var i = 0; i < 3; i++) dots.appendChild(el("span", { "class": "lcw-dot" }));
    ui.typing.appendChild(srText("The assistant is typing."));
    ui.typing.appendChild(dots);
    ui.typing.hidden = true;
    ui.log.appendChild(ui.typing);

    var form = el("form", { "class": "lcw-form" });
    var label = el("label", { "for": "lcw-input", "class": "lcw-sr" }, "Your message");
    ui.input = el("input", { id: "lcw-input", "class": "lcw-input", type: "text", autocomplete: "off",
      enterkeyhint: "send", placeholder: "Type your message", "aria-describedby": "lcw-hint",
      maxlength: String(cfg.maxChars) });
    var sendButton = el("button", { type: "submit", "class": "lcw-send" }, "Send");
    ui.count = el("span", { "class": "lcw-count", "aria-hidden": "true" });
    ui.hint = el("span", { id: "lcw-hint", "class": "lcw-sr" });
    ui.input.addEventListener("input", updateCount);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = ui.input.value.trim();
      if (!text || busy) return;
      ui.input.value = "";
      updateCount();
      send({ text: text }, text);
    });
    [label, ui.input, sendButton, ui.count, ui.hint].forEach(function (n) { form.appendChild(n); });
    var forget = el("button", { type: "button", "class": "lcw-forget" }, "Delete this chat");
    forget.addEventListener("click", closeAndForget);

    [header, note, ui.log, form, forget].forEach(function (n) { ui.panel.appendChild(n); });
    ui.panel.addEventListener("keydown", onPanelKeydown);
    [ui.live, ui.bar, ui.panel].forEach(function (n) { root.appendChild(n); });
    document.body.appendChild(root);
    if (narrow.addEventListener) narrow.addEventListener("change", setModal);
    document.addEventListener("keydown", onKeydown, true);

    ui.ready = api("config").then(function (server) {
      if (!DATA.title && server.title) cfg.title = String(server.title);
      if (DATA.greeting === undefined && server.greeting) cfg.greeting = String(server.greeting);
      if (!DATA.exitUrl && httpUrl(server.exit_url)) cfg.exitUrl = httpUrl(server.exit_url);
      if (server.max_message_chars > 0) cfg.maxChars = Number(server.max_message_chars);
    }).catch(function () { /* defaults are fine */ }).then(applyConfig);
    applyConfig();
    if (stored(OPEN_KEY) === "1") openPanel(false);
  }

  var link = el("link", { rel: "stylesheet", href: BASE + "widget.css" });
  (document.head || document.documentElement).appendChild(link);
  if (document.body) build();
  else document.addEventListener("DOMContentLoaded", build);
})();
