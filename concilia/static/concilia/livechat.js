// The agent's live chat: new messages every 1.5 s, answers sent without reloading the page.
// Text is only ever set with textContent (the customer's words are never read as HTML).
(function () {
  "use strict";
  // The list of live chats: fresh every 15 s while it is on screen.
  if (document.querySelector("[data-live-chats-list]")) {
    window.setInterval(function () { if (!document.hidden) { window.location.reload(); } }, 15000);
  }
  var root = document.querySelector("[data-livechat]");
  if (!root) { return; }
  var list = root.querySelector("[data-transcript]");
  var pollUrl = root.dataset.poll;
  var every = parseInt(root.dataset.pollMs, 10) || 1500;
  var after = parseInt(root.dataset.lastSeq, 10) || 0;
  var form = document.querySelector("form[data-reply]");
  var ended = document.querySelector("[data-chat-ended]");
  var statusBadge = document.querySelector("[data-chat-status]");
  var takenBy = document.querySelector("[data-taken-by]");
  var inFlight = false;
  var timer = null;
  var CSS = { customer: "customer", agent: "staff" };

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - 120;
  }

  function add(message) {
    if (list.querySelector('[data-seq="' + message.seq + '"]')) { return; }
    var item = document.createElement("li");
    item.className = "entry " + (CSS[message.author] || "event");
    item.dataset.seq = String(message.seq);
    item.dataset.author = message.author;
    var meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = message.author_label + " · " + message.time;
    var body = document.createElement("p");
    body.style.whiteSpace = "pre-line";
    body.textContent = message.body;
    item.appendChild(meta);
    item.appendChild(body);
    if (message.file) {
      var file = document.createElement("div");
      file.className = "muted";
      file.textContent = message.file;
      item.appendChild(file);
    }
    // Keep the order of the conversation whichever answer (poll or send) arrives first.
    var next = null;
    list.querySelectorAll("[data-seq]").forEach(function (other) {
      if (!next && parseInt(other.dataset.seq, 10) > message.seq) { next = other; }
    });
    list.insertBefore(item, next);
    after = Math.max(after, message.seq);
    if (form) { form.elements.after.value = String(after); }
  }

  function showAll(messages) {
    var follow = nearBottom();
    messages.forEach(add);
    if (follow && messages.length) { window.scrollTo(0, document.body.scrollHeight); }
  }

  // The side panel follows the chat: who took it, and whether it is still with a person.
  function applyState(data) {
    if (!data || !data.status) { return; }
    if (takenBy && data.taken_by) { takenBy.textContent = data.taken_by; }
    if (data.taken_by_me) {
      document.querySelectorAll("[data-take]").forEach(function (button) { button.form.hidden = true; });
    }
    if (data.status === root.dataset.status) { return; }
    root.dataset.status = data.status;
    if (statusBadge && data.status_label) { statusBadge.textContent = data.status_label; }
    if (data.status === "handed_over") { return; }
    if (form) { form.hidden = true; }
    if (ended) {
      ended.hidden = false;
      if (data.status === "closed" && ended.firstChild) { ended.firstChild.textContent = root.dataset.endedText + " "; }
    }
    document.querySelectorAll("[data-take], [data-end]").forEach(function (button) { button.disabled = true; });
    if (data.status === "closed" && timer) { window.clearInterval(timer); timer = null; }
  }

  function poll() {
    if (inFlight || document.hidden) { return; }
    inFlight = true;
    fetch(pollUrl + "?after=" + after, {
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    }).then(function (response) {
      if (response.redirected) { window.location.reload(); return null; }  // signed out
      if (!response.ok) { return null; }
      return response.json();
    }).then(function (data) {
      if (!data) { return; }
      showAll(data.messages);
      applyState(data);
    }).catch(function () { /* a dropped request; the next poll tries again */ })
      .then(function () { inFlight = false; });
  }

  if (form) {
    var error = form.querySelector("[data-reply-error]");
    var text = form.elements.body;
    var button = form.querySelector("button[type=submit]");
    form.addEventListener("submit", function (event) {
      if (!window.fetch || !window.FormData) { return; }  // the normal POST
      event.preventDefault();
      if (!text.value.trim()) { text.focus(); return; }
      button.disabled = true;
      error.hidden = true;
      var data = new FormData(form);
      fetch(form.action, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": data.get("csrfmiddlewaretoken") }
      }).then(function (response) {
        return response.json().then(function (payload) { return { ok: response.ok, payload: payload }; });
      }).then(function (result) {
        if (result.ok) {
          text.value = "";
          showAll(result.payload.messages);
          applyState(result.payload);
          window.scrollTo(0, document.body.scrollHeight);
        } else {
          error.textContent = result.payload.error || root.dataset.errorText;
          error.hidden = false;
          applyState(result.payload);
        }
      }).catch(function () {
        error.textContent = root.dataset.errorText;
        error.hidden = false;
      }).then(function () {
        button.disabled = false;
        text.focus();
      });
    });
    // Enter sends, Shift+Enter starts a new line.
    text.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        if (form.requestSubmit) { form.requestSubmit(); } else { form.dispatchEvent(new Event("submit", { cancelable: true })); }
      }
    });
  }

  timer = window.setInterval(poll, every);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { poll(); } });
})();
