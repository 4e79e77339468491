// supportlah web chat: one WebSocket per visitor, POST /api/chat when sockets fail.
// Every piece of message text goes through textContent, never innerHTML, so
// nothing a visitor or the agent writes can become markup.
(function () {
  "use strict";

  const VISITOR_KEY = "supportlah.visitor_id";
  const VISITOR_ID_PATTERN = /^[A-Za-z0-9_-]{8,64}$/;
  const MAX_BACKOFF_MS = 10000;
  const FAILURES_BEFORE_FALLBACK = 2;
  const FALLBACK_POLL_MS = 10000;
  const ROLE_LABELS = { user: "You", assistant: "Assistant", staff: "Staff", system: "Notice" };
  // Shown under a hand-off reply, in the reply's own language.
  const HANDOFF_NOTES = {
    en: "Passed to our team",
    zh: "已转交给我们的团队",
    ms: "Diserahkan kepada pasukan kami",
    ta: "எங்கள் குழுவிடம் ஒப்படைக்கப்பட்டது",
  };

  const elements = {
    businessName: document.getElementById("business-name"),
    status: document.getElementById("connection-status"),
    conversation: document.getElementById("conversation"),
    messages: document.getElementById("messages"),
    typing: document.getElementById("typing"),
    error: document.getElementById("chat-error"),
    form: document.getElementById("composer"),
    input: document.getElementById("message-input"),
    hint: document.getElementById("composer-hint"),
    send: document.getElementById("send-button"),
    counter: document.getElementById("char-count"),
    greeting: document.getElementById("greeting"),
    examples: document.getElementById("examples"),
    exampleList: document.getElementById("example-list"),
    myDataButton: document.getElementById("my-data-button"),
    myData: document.getElementById("my-data"),
    myDataSummary: document.getElementById("my-data-summary"),
    myDataNone: document.getElementById("my-data-none"),
    myDataDownload: document.getElementById("my-data-download"),
    myDataClose: document.getElementById("my-data-close"),
  };
  let maxChars = 4000; // the server's limit; /api/chat/config says what it is

  function randomId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    // randomUUID needs a secure context; getRandomValues works on plain http too.
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function loadVisitorId() {
    try {
      const stored = window.localStorage.getItem(VISITOR_KEY);
      if (stored && VISITOR_ID_PATTERN.test(stored)) return stored;
      const fresh = randomId();
      window.localStorage.setItem(VISITOR_KEY, fresh);
      return fresh;
    } catch (err) {
      // Storage disabled (private mode): the chat still works, it just won't survive a reload.
      return randomId();
    }
  }

  // ------------------------------------------------------------------ rendering
  function formatTime(iso) {
    const when = iso ? new Date(iso) : new Date();
    if (Number.isNaN(when.getTime())) return null;
    return when;
  }

  function renderSources(container, sources) {
    container.replaceChildren();
    if (!Array.isArray(sources) || sources.length === 0) {
      container.hidden = true;
      return;
    }
    const byDocument = new Map();
    for (const source of sources) {
      if (!source || typeof source.document !== "string") continue;
      const entry = byDocument.get(source.document) || [];
      entry.push(source);
      byDocument.set(source.document, entry);
    }
    const heading = document.createElement("span");
    heading.className = "sources-label";
    heading.textContent = "Sources:";
    const list = document.createElement("ul");
    list.className = "sources-list";
    for (const [documentName, chunks] of byDocument) {
      const item = document.createElement("li");
      item.className = "source";
      item.textContent = documentName;
      item.title = chunks
        .map((c) => {
          const score = typeof c.score === "number" ? ` (score ${c.score.toFixed(2)})` : "";
          return `chunk ${c.chunk_id}${score}`;
        })
        .join("\n");
      item.dataset.chunkIds = chunks.map((c) => c.chunk_id).join(" ");
      list.appendChild(item);
    }
    container.append(heading, list);
    container.hidden = false;
  }

  function createBubble(role, text, options) {
    const opts = options || {};
    const item = document.createElement("li");
    item.className = `message message-${role}`;
    item.dataset.role = role;

    const author = document.createElement("span");
    author.className = "visually-hidden";
    author.textContent = `${ROLE_LABELS[role] || role}: `;

    const body = document.createElement("p");
    body.className = "message-text";
    body.textContent = text;

    const meta = document.createElement("div");
    meta.className = "message-meta";
    const when = formatTime(opts.at);
    if (when) {
      const time = document.createElement("time");
      time.dateTime = when.toISOString();
      time.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      meta.appendChild(time);
    }
    const sources = document.createElement("div");
    sources.className = "sources";
    renderSources(sources, opts.sources);

    item.append(author, body, sources, meta);

    elements.messages.appendChild(item);
    scrollToEnd();
    return item;
  }

  function markEscalated(item, language) {
    if (item.querySelector(".handoff-note")) return;
    const note = document.createElement("p");
    note.className = "handoff-note";
    note.textContent = HANDOFF_NOTES[language] || HANDOFF_NOTES.en;
    item.insertBefore(note, item.querySelector(".message-meta"));
  }

  function setBubbleText(item, text) {
    item.querySelector(".message-text").textContent = text;
    scrollToEnd();
  }

  function scrollToEnd() {
    elements.conversation.scrollTop = elements.conversation.scrollHeight;
  }

  function showError(text) {
    elements.error.textContent = text;
    elements.error.hidden = false;
  }

  function clearError() {
    elements.error.hidden = true;
    elements.error.textContent = "";
  }

  function setStatus(state, text) {
    elements.status.dataset.state = state;
    elements.status.textContent = text;
    updateTyping(); // nobody is typing for us while we cannot hear them
  }

  function connected() {
    const state = elements.status.dataset.state;
    return state === "online" || state === "fallback";
  }

  // ------------------------------------------------------------------ chat state
  const visitorId = loadVisitorId();
  // Messages the server has not accepted yet: {clientId, text, bubble, via: null|"socket"|"http"}.
  // They survive reconnects and are re-sent with the same client id, which the server dedupes.
  const outbox = [];
  const failed = []; // bubbles of messages the server refused; kept on screen across re-renders
  const streams = new Map(); // message_id -> assistant bubble being streamed
  const awaiting = new Set(); // client ids / message ids sent but with no words back yet
  let socket = null;
  let socketOpen = false;
  let failures = 0;
  let fallbackPoll = null;
  let historySignature = "";

  function updateTyping() {
    const hidden = awaiting.size === 0 || !connected();
    if (elements.typing.hidden === hidden) return;
    elements.typing.hidden = hidden;
    scrollToEnd(); // the indicator takes room from the conversation
  }

  function dropFromOutbox(entry) {
    const index = outbox.indexOf(entry);
    if (index >= 0) outbox.splice(index, 1);
  }

  function markFailed(entry, reason) {
    dropFromOutbox(entry);
    awaiting.delete(entry.clientId);
    updateTyping();
    entry.bubble.classList.remove("message-pending");
    entry.bubble.classList.add("message-failed");
    const status = document.createElement("span");
    status.className = "message-status";
    status.textContent = "Not sent";
    entry.bubble.querySelector(".message-meta").appendChild(status);
    failed.push(entry.bubble);
    showError(`Message not sent: ${reason}`);
  }

  function markAccepted(entry, messageId) {
    dropFromOutbox(entry);
    entry.bubble.classList.remove("message-pending");
    if (messageId) entry.bubble.dataset.messageId = messageId;
    if (awaiting.delete(entry.clientId) && messageId) awaiting.add(messageId);
    updateTyping();
  }

  function renderHistory(messages) {
    const list = Array.isArray(messages) ? messages : [];
    const last = list[list.length - 1];
    historySignature = `${list.length}:${last ? last.at : ""}`;
    elements.messages.replaceChildren();
    streams.clear();
    for (const message of list) {
      const bubble = createBubble(message.role, message.text || "", { at: message.at, sources: message.sources });
      if (message.language) bubble.lang = message.language;
      if (message.escalate) markEscalated(bubble, message.language);
    }
    elements.examples.hidden = list.length > 0 || elements.exampleList.childElementCount === 0;
    // What the server does not know about stays visible after the transcript.
    for (const bubble of failed) elements.messages.appendChild(bubble);
    for (const entry of outbox) elements.messages.appendChild(entry.bubble);
    // A reply that landed while we were disconnected is in the transcript: stop waiting for it.
    if (last && last.role !== "user") {
      for (const id of Array.from(awaiting)) {
        if (!outbox.some((entry) => entry.clientId === id)) awaiting.delete(id);
      }
      updateTyping();
    }
    scrollToEnd();
  }

  function onAck(frame) {
    const entry = outbox.find((e) => e.clientId === frame.client_id);
    if (entry) markAccepted(entry, frame.message_id);
  }

  function streamBubble(messageId) {
    let bubble = streams.get(messageId);
    if (!bubble) {
      bubble = createBubble("assistant", "", {});
      bubble.dataset.messageId = messageId;
      bubble.classList.add("message-streaming");
      bubble.setAttribute("aria-busy", "true");
      streams.set(messageId, bubble);
    }
    return bubble;
  }

  function onDelta(frame) {
    const bubble = streamBubble(frame.message_id);
    const body = bubble.querySelector(".message-text");
    body.textContent += frame.text || "";
    awaiting.delete(frame.message_id);
    updateTyping();
    scrollToEnd();
  }

  function onReply(frame) {
    const role = frame.role || "assistant";
    if (role !== "assistant") {
      // Staff messages and notices are messages of their own; a notice sent with an answer
      // goes above the answer, where the transcript has it.
      const own = createBubble(role, frame.text || "", { at: frame.at, sources: frame.sources });
      const stream = streams.get(frame.message_id);
      if (stream) elements.messages.insertBefore(own, stream);
      return;
    }
    // The first part of an answer replaces the streamed text; later parts get bubbles of their own.
    const bubble = streamBubble(frame.message_id);
    setBubbleText(bubble, frame.text || "");
    renderSources(bubble.querySelector(".sources"), frame.sources);
    if (frame.language) bubble.lang = frame.language;
    if (frame.escalate) markEscalated(bubble, frame.language);
    bubble.classList.remove("message-streaming");
    bubble.removeAttribute("aria-busy");
    streams.delete(frame.message_id);
    if (frame.final !== false) awaiting.delete(frame.message_id); // otherwise more parts are coming
    updateTyping();
  }

  function onServerError(frame) {
    // The server refuses a frame before acking it, so the error belongs to the oldest unacked one.
    const entry = outbox.find((e) => e.via === "socket");
    if (entry) {
      markFailed(entry, frame.error || "unknown error");
    } else {
      showError(frame.error || "Something went wrong.");
    }
  }

  function onFrame(event) {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch (err) {
      return;
    }
    switch (frame.type) {
      case "history":
        // Only a socket that delivers counts as working (a proxy may accept the upgrade, then drop it).
        failures = 0;
        stopFallbackPolling();
        setStatus("online", "Online");
        renderHistory(frame.messages);
        break;
      case "ack":
        onAck(frame);
        break;
      case "delta":
        onDelta(frame);
        break;
      case "reply":
        onReply(frame);
        break;
      case "error":
        onServerError(frame);
        break;
      default:
        break;
    }
  }

  // ------------------------------------------------------------------ transport
  function socketUrl() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${window.location.host}/ws/chat?visitor_id=${encodeURIComponent(visitorId)}`;
  }

  function inFallback() {
    return !socketOpen && failures >= FAILURES_BEFORE_FALLBACK;
  }

  function connect() {
    let ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch (err) {
      onSocketClosed();
      return;
    }
    socket = ws;
    ws.addEventListener("open", () => {
      socketOpen = true;
      for (const entry of outbox) {
        if (entry.via !== "http") sendOverSocket(entry);
      }
    });
    ws.addEventListener("message", onFrame);
    ws.addEventListener("close", () => {
      if (socket === ws) onSocketClosed();
    });
  }

  function onSocketClosed() {
    socketOpen = false;
    socket = null;
    failures += 1;
    for (const entry of outbox) {
      if (entry.via === "socket") {
        entry.via = null; // never acked: send it again
        awaiting.delete(entry.clientId);
      }
    }
    // Said at once: the server closes sockets when it stops, and the page must not look live.
    if (elements.status.dataset.state !== "offline") setStatus("reconnecting", "Reconnecting…");
    if (inFallback()) chooseFallback();
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(failures, 10)) * (0.5 + Math.random() / 2);
    window.setTimeout(connect, delay);
  }

  async function chooseFallback() {
    // HTTP only helps if the server answers it: a stopped server is "offline", not "sending over HTTP".
    let reachable = false;
    try {
      reachable = (await fetch("/healthz", { cache: "no-store" })).ok;
    } catch (err) {
      reachable = false;
    }
    if (socketOpen) return;
    if (!reachable) {
      stopFallbackPolling();
      setStatus("offline", "Offline — reconnecting…");
      return;
    }
    setStatus("fallback", "Live connection unavailable — sending over HTTP");
    startFallbackPolling();
    for (const entry of outbox) {
      if (entry.via === null) postOverHttp(entry);
    }
  }

  function sendOverSocket(entry) {
    entry.via = "socket";
    awaiting.add(entry.clientId);
    updateTyping();
    socket.send(JSON.stringify({ type: "message", text: entry.text, client_id: entry.clientId }));
  }

  async function fetchJson(url, init) {
    const response = await fetch(url, init);
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    return { status: response.status, body };
  }

  async function refreshHistory() {
    const { body } = await fetchJson(`/api/chat/history?visitor_id=${encodeURIComponent(visitorId)}`);
    const list = Array.isArray(body.messages) ? body.messages : [];
    const last = list[list.length - 1];
    if (`${list.length}:${last ? last.at : ""}` !== historySignature) renderHistory(list);
    return list;
  }

  function startFallbackPolling() {
    if (fallbackPoll !== null) return;
    refreshHistory().catch(() => {});
    // Staff replies have no socket to arrive on, so look for them now and then.
    fallbackPoll = window.setInterval(() => {
      if (awaiting.size === 0) refreshHistory().catch(() => {});
    }, FALLBACK_POLL_MS);
  }

  function stopFallbackPolling() {
    if (fallbackPoll === null) return;
    window.clearInterval(fallbackPoll);
    fallbackPoll = null;
  }

  async function postOverHttp(entry) {
    entry.via = "http";
    awaiting.add(entry.clientId);
    updateTyping();
    let response;
    try {
      response = await fetch("/api/chat", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ visitor_id: visitorId, text: entry.text, client_id: entry.clientId }),
      });
    } catch (err) {
      // The server is unreachable: keep the message queued for the next attempt.
      entry.via = null;
      awaiting.delete(entry.clientId);
      updateTyping();
      return;
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      markFailed(entry, body.error || `HTTP ${response.status}`);
      return;
    }
    markAccepted(entry, body.message_id);
    if (response.status === 202 || !body.reply) {
      waitForTranscriptReply(body.message_id); // still thinking: the answer will reach the transcript
      return;
    }
    onReply({ message_id: body.message_id, ...body.reply });
    refreshHistory().catch(() => {}); // notices sent with the answer are only in the transcript
  }

  async function waitForTranscriptReply(messageId) {
    for (let attempt = 0; attempt < 20 && awaiting.has(messageId) && !socketOpen; attempt += 1) {
      await new Promise((resolve) => window.setTimeout(resolve, 3000));
      await refreshHistory().catch(() => []);
    }
    awaiting.delete(messageId);
    updateTyping();
  }

  // ------------------------------------------------------------------ composer
  function characters(text) {
    return Array.from(text).length; // code points, as the server counts (an emoji is one)
  }

  function updateCounter() {
    const length = characters(elements.input.value);
    const over = length > maxChars;
    elements.counter.textContent = over
      ? `${length.toLocaleString()} / ${maxChars.toLocaleString()}: too long by ${(length - maxChars).toLocaleString()} characters`
      : `${length.toLocaleString()} / ${maxChars.toLocaleString()}`;
    elements.counter.dataset.over = String(over);
    elements.send.disabled = over;
    elements.input.setAttribute("aria-invalid", String(over));
  }

  function submit() {
    const text = elements.input.value.trim();
    if (!text) return;
    if (characters(elements.input.value) > maxChars) {
      showError(`Your message is longer than ${maxChars.toLocaleString()} characters; please shorten it.`);
      return;
    }
    clearError();
    const entry = { clientId: randomId(), text, via: null, bubble: createBubble("user", text, {}) };
    entry.bubble.classList.add("message-pending");
    outbox.push(entry);
    elements.input.value = "";
    autoGrow();
    updateCounter();
    elements.examples.hidden = true;
    if (socketOpen) {
      sendOverSocket(entry);
    } else if (inFallback()) {
      postOverHttp(entry);
    } // else: sent as soon as the socket opens
    elements.input.focus();
  }

  function autoGrow() {
    elements.input.style.height = "auto";
    elements.input.style.height = `${Math.min(elements.input.scrollHeight, 160)}px`;
  }

  elements.form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  elements.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  elements.input.addEventListener("input", () => {
    autoGrow();
    updateCounter();
  });

  function showExamples(examples) {
    elements.exampleList.replaceChildren();
    for (const question of examples) {
      if (typeof question !== "string" || !question) continue;
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "example";
      button.textContent = question;
      button.addEventListener("click", () => {
        elements.input.value = question;
        updateCounter();
        submit();
      });
      item.appendChild(button);
      elements.exampleList.appendChild(item);
    }
    elements.examples.hidden = elements.exampleList.childElementCount === 0 || elements.messages.childElementCount > 0;
  }

  async function loadConfig() {
    try {
      const { body } = await fetchJson("/api/chat/config");
      if (typeof body.business_name === "string" && body.business_name) {
        elements.businessName.textContent = body.business_name;
        document.title = `Chat with ${body.business_name}`;
      }
      if (typeof body.greeting === "string") elements.greeting.textContent = body.greeting;
      if (Array.isArray(body.examples)) showExamples(body.examples);
      if (Number.isInteger(body.max_message_chars) && body.max_message_chars > 0) {
        maxChars = body.max_message_chars;
        updateCounter();
      }
      const languages = (Array.isArray(body.languages) ? body.languages : [])
        .map((lang) => (lang && typeof lang.name === "string" ? lang.name : String(lang)));
      if (languages.length > 1) {
        elements.hint.textContent = `You can write in ${languages.join(", ")}. Press Enter to send, Shift+Enter for a new line.`;
      }
    } catch (err) {
      // The chat works without the config; only the header keeps its generic title.
    }
  }

  // ------------------------------------------------------------------ my data
  let myDataDocument = null;

  function summaryRow(term, value) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    elements.myDataSummary.append(dt, dd);
  }

  function day(iso) {
    const when = iso ? new Date(iso) : null;
    return when && !Number.isNaN(when.getTime()) ? when.toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "—";
  }

  function renderMyData(data) {
    elements.myDataSummary.replaceChildren();
    myDataDocument = data;
    elements.myDataNone.hidden = Boolean(data);
    elements.myDataDownload.hidden = !data;
    if (!data) return;
    const conversations = Array.isArray(data.conversations) ? data.conversations : [];
    const messages = conversations.flatMap((c) => (Array.isArray(c.messages) ? c.messages : []));
    const own = messages.filter((m) => m.from === "customer");
    const consents = Array.isArray(data.consents) ? data.consents : [];
    const requests = Array.isArray(data.requests) ? data.requests : [];
    const contact = data.contact || {};
    summaryRow("First contact", day(contact.created_at));
    summaryRow("Last message", day(contact.last_message_at));
    summaryRow("Your messages", String(own.length));
    summaryRow("Our replies", String(messages.length - own.length));
    summaryRow("Privacy notice", consents.length ? `${consents[consents.length - 1].status}, ${day(consents[consents.length - 1].at)}` : "—");
    summaryRow("Your requests", requests.length ? requests.map((r) => `${r.kind} (${day(r.at)})`).join(", ") : "—");
    if (own.length) summaryRow("Latest message", own[own.length - 1].text || "");
    for (const [key, value] of Object.entries(data)) {
      if (["exported_at", "contact", "consents", "requests", "conversations"].includes(key)) continue;
      const count = Array.isArray(value) ? value.length : value && typeof value === "object" ? Object.keys(value).length : 0;
      summaryRow(key.replace(/_/g, " "), `${count} item${count === 1 ? "" : "s"}`);
    }
  }

  async function openMyData() {
    clearError();
    try {
      const { body } = await fetchJson(`/api/chat/export?visitor_id=${encodeURIComponent(visitorId)}`);
      renderMyData(body.data || null);
      elements.myData.hidden = false;
      elements.myDataDownload.focus();
    } catch (err) {
      showError(`Could not fetch your data: ${err.message}`);
    }
  }

  function downloadMyData() {
    if (!myDataDocument) return;
    const blob = new Blob([JSON.stringify(myDataDocument, null, 2)], { type: "application/json" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `my-data-${new Date().toISOString().slice(0, 10)}.json`;
    document.body.appendChild(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

  elements.myDataButton.addEventListener("click", openMyData);
  elements.myDataDownload.addEventListener("click", downloadMyData);
  elements.myDataClose.addEventListener("click", () => {
    elements.myData.hidden = true;
    elements.myDataButton.focus();
  });

  if (window.location.pathname === "/embed") document.body.classList.add("embedded");
  updateCounter();
  loadConfig();
  connect();
  // Focusing on load would pop up the on-screen keyboard over the conversation on phones.
  if (!window.matchMedia("(pointer: coarse)").matches) elements.input.focus();
})();
