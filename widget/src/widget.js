/* Hip pain helper: chat widget for the clinic website.
 *
 * Embed with one config object and one script tag:
 *   <script>window.hipTriageConfig = { serverUrl: "https://rasa.example.org" };</script>
 *   <script src="https://widget.example.org/widget/widget.js" defer></script>
 *
 * Talks to Rasa's socketio channel (session_request / user_uttered / bot_uttered) with the
 * vendored socket.io-client 4.x, served next to this file. Plain ES2017, no framework, no build.
 * Bot text is only ever put into the page as text nodes (never innerHTML); URLs in it become
 * <a target="_blank" rel="noopener noreferrer"> elements built with DOM APIs.
 */
(function () {
  "use strict";
  if (window.hipTriageWidget) return;

  const script = document.currentScript;
  const BASE = script && script.src ? new URL(".", script.src).href : "";
  const DEFAULTS = {
    serverUrl: "http://127.0.0.1:5005",
    socketPath: "/socket.io/",
    clinicName: "",
    title: "Hip pain helper",
    colors: {},
    initPayload: "/greet", // sent once, not shown, when a new conversation starts
    sessionMinutes: 60, // idle longer than this: a fresh conversation (as Rasa's session_config)
    startOpen: false,
    storageKey: "hipTriageChat",
    replyTimeoutSeconds: 30,
    socketClientUrl: BASE + "vendor/socket.io.min.js",
    stylesheetUrl: BASE + "widget.css",
  };
  const COLOR_VARS = { primary: "--hw-primary", onPrimary: "--hw-on-primary", text: "--hw-text",
    background: "--hw-bg", botBubble: "--hw-bot", userBubble: "--hw-user" };
  COLOR_VARS.onUserBubble = "--hw-on-user";
  const PHONE_RE = /(\b(?:call|ring|phone|on)\s+)(\+?\d[\d ]{1,16}\d)(?![\d/-])/gi;
  const URL_RE = /https?:\/\/[^\s<>"'`]+/gi;
  const MAX_HISTORY = 300;

  const cfg = Object.assign({}, DEFAULTS, window.hipTriageConfig || {});
  cfg.colors = Object.assign({}, cfg.colors || {});

  // ---- small DOM helpers (text only, never markup) ----
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(function ([key, value]) {
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else node.setAttribute(key, value);
    });
    (children || []).forEach(function (child) {
      if (child) node.append(child);
    });
    return node;
  }

  function safeHttpUrl(candidate) {
    try {
      const url = new URL(candidate);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  // Appends `text` to `parent` as text nodes, with http(s) URLs as safe links.
  function appendText(parent, text) {
    const source = String(text == null ? "" : text);
    let last = 0;
    let match;
    URL_RE.lastIndex = 0;
    while ((match = URL_RE.exec(source)) !== null) {
      const raw = match[0].replace(/[.,;:!?)\]]+$/, "");
      const href = safeHttpUrl(raw);
      if (!href) continue;
      appendPhones(parent, source.slice(last, match.index));
      parent.append(
        el("a", { href: href, target: "_blank", rel: "noopener noreferrer", text: raw }),
      );
      last = match.index + raw.length;
      URL_RE.lastIndex = last;
    }
    appendPhones(parent, source.slice(last));
  }

  // A number she is told to call ("call 999", "on 020 7946 0000") is a tap-to-call link;
  // the number stays text (only digits, spaces and a leading + reach the href).
  function appendPhones(parent, text) {
    let last = 0;
    let match;
    PHONE_RE.lastIndex = 0;
    while ((match = PHONE_RE.exec(text)) !== null) {
      const number = match[2];
      const start = match.index + match[1].length;
      parent.append(document.createTextNode(text.slice(last, start)));
      parent.append(el("a", { href: "tel:" + number.replace(/[^+\d]/g, ""), text: number }));
      last = start + number.length;
    }
    parent.append(document.createTextNode(text.slice(last)));
  }

  // ---- conversation state, kept in sessionStorage (shared clinic PCs: not localStorage) ----
  function freshState() {
    return { sessionId: null, history: [], replies: [], lastActive: Date.now(), open: false };
  }

  function loadState() {
    try {
      const saved = JSON.parse(window.sessionStorage.getItem(cfg.storageKey));
      const idleMs = Date.now() - Number(saved && saved.lastActive);
      if (saved && Array.isArray(saved.history) && idleMs < cfg.sessionMinutes * 60000) {
        return Object.assign(freshState(), saved);
      }
    } catch (e) {
      /* unreadable or blocked storage: start fresh */
    }
    return freshState();
  }

  const state = loadState();
  let socket = null;
  let clientRequested = false;
  let confirmed = false;
  const queue = [];
  let awaitingFirstReply = false;
  let replyFocus = null; // how the last answer button was pressed: "keyboard" | "pointer"
  let replyTimer = null;
  let focusTimer = null;
  let replyStart = null; // the first message of the bot's latest reply
  let focusFallback = null;
  let focusFellBack = false;
  const REPLY_FOCUS_WAIT = 2000; // ms to wait for the next question's buttons

  function saveState() {
    state.lastActive = Date.now();
    state.history = state.history.slice(-MAX_HISTORY);
    try {
      window.sessionStorage.setItem(cfg.storageKey, JSON.stringify(state));
    } catch (e) {
      /* storage full or blocked: the chat still works, it just won't survive a reload */
    }
  }

  // ---- the UI, in a shadow root so the clinic site's CSS cannot break it ----
  const host = el("div", { id: "hip-triage-widget" });
  const root = host.attachShadow({ mode: "open" });

  const launcher = el("button", {
    type: "button",
    class: "hw-launcher",
    "aria-expanded": "false",
    "aria-controls": "hw-panel",
    text: "Chat about hip pain",
  });
  const status = el("p", { class: "hw-status", role: "status" });
  const restartBtn = el("button", { type: "button", class: "hw-restart", text: "Start again" });
  const closeBtn = el("button", {
    type: "button",
    class: "hw-close",
    "aria-label": "Close chat",
    text: "✕",
  });
  const log = el("ol", { class: "hw-log", "aria-label": "Conversation", tabindex: "0" });
  const typing = el("div", { class: "hw-typing", hidden: "" }, [
    el("span", { class: "hw-dot", "aria-hidden": "true" }),
    el("span", { class: "hw-dot", "aria-hidden": "true" }),
    el("span", { class: "hw-dot", "aria-hidden": "true" }),
    el("span", { class: "hw-sr", text: "The helper is typing…" }),
  ]);
  const replies = el("div", { class: "hw-replies", role: "group", "aria-label": "Answers" });
  const input = el("input", {
    id: "hw-input",
    class: "hw-input",
    type: "text",
    autocomplete: "off",
    enterkeyhint: "send",
    maxlength: "1000",
    placeholder: "Type your answer…",
  });
  const form = el("form", { class: "hw-form" }, [
    el("label", { for: "hw-input", class: "hw-sr", text: "Your message" }),
    input,
    el("button", { type: "submit", class: "hw-send", text: "Send" }),
  ]);
  const announcer = el("div", { class: "hw-sr", "aria-live": "polite" });
  const panelAttrs = { id: "hw-panel", class: "hw-panel", "aria-labelledby": "hw-title" };
  panelAttrs.hidden = "";
  const panel = el("section", panelAttrs, [
    el("header", { class: "hw-header" }, [
      el("div", { class: "hw-heading" }, [
        el("h2", { id: "hw-title", text: cfg.title }),
        cfg.clinicName ? el("p", { class: "hw-clinic", text: cfg.clinicName }) : null,
        status,
      ]),
      restartBtn,
      closeBtn,
    ]),
    log,
    typing,
    replies,
    form,
    announcer,
  ]);

  const style = el("link", { rel: "stylesheet", href: cfg.stylesheetUrl });
  root.append(style, launcher, panel);
  Object.entries(COLOR_VARS).forEach(function ([key, cssVar]) {
    if (typeof cfg.colors[key] === "string") host.style.setProperty(cssVar, cfg.colors[key]);
  });

  // ---- rendering ----
  function scrollToEnd() {
    log.scrollTop = log.scrollHeight;
  }

  // A reply of several messages (the outcome) is read from its first message: when it is
  // taller than the view, the view lands on that message (the headline), not the last.
  function showReply() {
    if (!replyStart || !replyStart.isConnected) return scrollToEnd();
    const top = replyStart.getBoundingClientRect().top - log.getBoundingClientRect().top;
    if (log.scrollHeight - (log.scrollTop + top) > log.clientHeight) {
      log.scrollTop += top;
    } else {
      scrollToEnd();
    }
  }

  function renderMessage(message) {
    const speaker = message.from === "bot" ? cfg.title + ": " : "You: ";
    const body = el("p", { class: "hw-text" });
    appendText(body, message.text);
    const who = el("span", { class: "hw-sr", text: speaker });
    log.append(el("li", { class: "hw-msg hw-" + message.from }, [who, body]));
  }

  function renderReplies() {
    replies.textContent = "";
    state.replies.forEach(function (button) {
      const btn = el("button", { type: "button", class: "hw-reply", text: button.title });
      btn.addEventListener("click", function (event) {
        replyFocus = event.detail === 0 ? "keyboard" : "pointer";
        send(button.payload, button.title);
      });
      replies.append(btn);
    });
    replies.hidden = state.replies.length === 0;
    replies.classList.toggle("hw-many", state.replies.length > 6);
  }

  function announce(text) {
    announcer.append(el("p", { text: text }));
    while (announcer.childNodes.length > 4) announcer.firstChild.remove();
  }

  function setTyping(on) {
    typing.hidden = !on;
    clearTimeout(replyTimer);
    if (on) {
      replyTimer = setTimeout(function () {
        typing.hidden = true;
        status.textContent = "No answer yet. Check your connection, or send your message again.";
      }, cfg.replyTimeoutSeconds * 1000);
    }
    scrollToEnd();
  }

  // The pressed button is gone: focus the next question's first button, else the input
  // (keyboard) or the conversation (a tap: focusing the input would pop up the keyboard).
  // A turn's messages can arrive a while apart on a slow line: the focus goes to the
  // conversation meanwhile, and on to the buttons when they come, unless she has moved
  // it herself (what she does next ends the wait: see send()).
  function restoreFocusAfterReply(final) {
    const how = replyFocus;
    if (!how || panel.hidden) return;
    const button = replies.querySelector("button");
    const here = root.activeElement;
    if (button) {
      replyFocus = null;
      clearTimeout(focusFallback);
      // After the fallback she may have moved on; the buttons take the focus only if not.
      if (!focusFellBack || !here || here === log || here === input) {
        button.focus({ preventScroll: true });
      }
      focusFellBack = false;
      return;
    }
    if (!final) {
      clearTimeout(focusFallback);
      focusFallback = setTimeout(function () { restoreFocusAfterReply(true); }, REPLY_FOCUS_WAIT);
      return;
    }
    focusFellBack = true; // keep replyFocus: the buttons may still come
    (how === "keyboard" ? input : log).focus({ preventScroll: true });
  }

  function onBotMessage(data) {
    if (!data || typeof data !== "object") return;
    const buttons = (data.quick_replies || data.buttons || [])
      .filter(function (b) {
        return b && typeof b.title === "string" && typeof b.payload === "string";
      })
      .map(function (b) {
        return { title: b.title, payload: b.payload };
      });
    if (buttons.length) state.replies = buttons;
    else if (awaitingFirstReply) state.replies = [];
    setTyping(false);
    status.textContent = "";
    const first = awaitingFirstReply;
    awaitingFirstReply = false;
    if (typeof data.text === "string" && data.text.trim()) {
      const message = { from: "bot", text: data.text };
      state.history.push(message);
      renderMessage(message);
      if (first || !replyStart) replyStart = log.lastElementChild;
      announce(data.text);
    }
    renderReplies();
    saveState();
    showReply();
    clearTimeout(focusTimer); // after the last message of a burst
    focusTimer = setTimeout(function () { restoreFocusAfterReply(false); }, 300);
  }

  // ---- talking to Rasa ----
  function emit(text) {
    socket.emit("user_uttered", { message: text, session_id: state.sessionId });
  }

  function send(text, shown) {
    const message = String(text || "").trim();
    if (!message) return;
    const visible = { from: "user", text: shown || message };
    state.history.push(visible);
    renderMessage(visible);
    announcer.textContent = "";
    // A focus move still pending from the last reply would land on the buttons she has
    // just answered (and spend the press): only this message's reply moves the focus.
    clearTimeout(focusTimer);
    clearTimeout(focusFallback);
    awaitingFirstReply = true;
    saveState();
    setTyping(true);
    if (confirmed && socket && socket.connected) emit(message);
    else queue.push(message);
  }

  function connect() {
    socket = window.io(cfg.serverUrl, {
      path: cfg.socketPath,
      transports: ["websocket", "polling"],
      tryAllTransports: true,
      reconnectionDelayMax: 10000,
    });
    socket.on("connect", function () {
      confirmed = false;
      socket.emit("session_request", { session_id: state.sessionId });
    });
    socket.on("session_confirm", function (data) {
      const id = typeof data === "string" ? data : data && data.session_id;
      if (!id) return;
      if (state.sessionId && state.sessionId !== id) {
        // The server did not confirm the saved conversation (it issues ids itself):
        // what is on screen belongs to no conversation any more, so start afresh.
        state.history = [];
        state.replies = [];
        log.textContent = "";
        renderReplies();
      }
      const isNew = state.sessionId !== id && state.history.length === 0;
      state.sessionId = id;
      confirmed = true;
      status.textContent = "";
      saveState();
      if (isNew && cfg.initPayload) {
        awaitingFirstReply = true;
        setTyping(true);
        emit(cfg.initPayload);
      }
      while (queue.length) emit(queue.shift());
    });
    socket.on("bot_uttered", onBotMessage);
    socket.on("disconnect", function () {
      confirmed = false;
      status.textContent = "Connection lost. Reconnecting…";
    });
    socket.on("connect_error", function () {
      status.textContent = "Can't reach the helper right now. Retrying…";
    });
  }

  function loadClient() {
    if (clientRequested) return; // connects on first open (not on every page view), once
    clientRequested = true;
    status.textContent = "Connecting…";
    if (window.io) return connect();
    const tag = el("script", { src: cfg.socketClientUrl, async: "" });
    tag.addEventListener("load", connect);
    tag.addEventListener("error", function () {
      clientRequested = false;
      tag.remove();
      status.textContent = "The chat could not load. Please call the clinic instead.";
    });
    document.head.append(tag);
  }

  // ---- opening, closing, keyboard ----
  function open(restoring) {
    panel.hidden = false;
    launcher.hidden = true;
    launcher.setAttribute("aria-expanded", "true");
    state.open = true;
    saveState();
    scrollToEnd();
    // After a reload the history is laid out only now: land on her current question.
    window.requestAnimationFrame(scrollToEnd);
    loadClient();
    if (restoring !== true) input.focus();
  }

  function close() {
    panel.hidden = true;
    launcher.hidden = false;
    launcher.setAttribute("aria-expanded", "false");
    state.open = false;
    saveState();
    launcher.focus();
  }

  function startAgain() {
    state.history = [];
    state.replies = [];
    log.textContent = "";
    renderReplies();
    send("start again", "Start again");
    input.focus();
  }

  launcher.addEventListener("click", function () {
    open();
  });
  closeBtn.addEventListener("click", close);
  restartBtn.addEventListener("click", startAgain);
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") close();
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    replyFocus = null; // she typed: no button focus to wait for
    focusFellBack = false;
    send(input.value);
    input.value = "";
  });

  function start() {
    document.body.append(host);
    state.history.forEach(renderMessage);
    renderReplies();
    if (state.open || cfg.startOpen) open(true);
  }

  window.hipTriageWidget = { open: open, close: close, startAgain: startAgain };
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
