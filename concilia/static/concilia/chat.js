// The customers' chat (the /chat/ page and the widget's frame): talks to /api/v1/conversations,
// shows the conversation, and keeps its id and token so that a customer who comes back continues it.
// Message text is only ever inserted with textContent: nothing a person writes becomes markup.
(function () {
  "use strict";
  var root = document.getElementById("chat");
  var stringsNode = document.getElementById("chat-strings");
  if (!root || !stringsNode) return;

  var T = JSON.parse(stringsNode.textContent);
  var api = root.dataset.api;
  var language = root.dataset.language;
  var channel = root.dataset.channel;
  var STORAGE_KEY = "concilia.chat";
  var POLL_MS = 1500;
  // While the assistant says more is coming (a message that expects "wait": the policies are
  // deciding), it is asked for every half second; after half a minute, as slowly as for a person.
  var WAIT_POLL_MS = 500;
  var WAIT_FAST_MS = 30000;
  var HUMAN = "__human";

  var log = document.getElementById("chat-log");
  var form = document.getElementById("chat-form");
  var input = document.getElementById("chat-input");
  var fileInput = document.getElementById("chat-file");
  var fileButton = root.querySelector("[data-chat-file]");
  var humanButton = root.querySelector("[data-chat-human]");
  var newButton = root.querySelector("[data-chat-new]");
  var stateLine = document.getElementById("chat-state");
  var typing = document.createElement("div");
  typing.className = "chat-typing";
  typing.setAttribute("aria-hidden", "true");
  typing.hidden = true;
  for (var d = 0; d < 3; d++) typing.appendChild(document.createElement("span"));

  var reduceMotion = window.matchMedia ? window.matchMedia("(prefers-reduced-motion: reduce)") : null;
  var embedded = window.parent !== window;

  var conversation = null; // {id, token}
  var lastSeq = 0;
  var status = "";
  var waitingSince = 0; // when the newest assistant message began to expect "wait" (0: it does not)
  var pollTimer = null;
  var pending = 0;
  var queue = Promise.resolve();

  // -- storage (may be unavailable, e.g. a blocked third-party frame: the chat still works) ----

  function load() {
    try {
      var saved = JSON.parse(window.localStorage.getItem(STORAGE_KEY) || "null");
      return saved && saved.id && saved.token ? saved : null;
    } catch (e) {
      return null;
    }
  }

  function save() {
    try {
      window.localStorage.setItem(STORAGE_KEY, JSON.stringify(conversation));
    } catch (e) { /* not kept: the conversation lasts as long as the page */ }
  }

  function forget() {
    conversation = null;
    try {
      window.localStorage.removeItem(STORAGE_KEY);
    } catch (e) { /* nothing kept */ }
  }

  // -- the API ---------------------------------------------------------------------------------

  function Problem(status, data) {
    this.status = status;
    this.data = data || {};
  }

  function call(method, path, body) {
    var headers = {Accept: "application/json"};
    if (conversation) headers["X-Conversation-Token"] = conversation.token;
    var options = {method: method, headers: headers, credentials: "same-origin"};
    if (body instanceof FormData) {
      options.body = body;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(api + path, options).then(
      function (response) {
        return response.json().catch(function () { return null; }).then(function (data) {
          if (!response.ok || !data) throw new Problem(response.status, data);
          return data;
        });
      },
      function () { throw new Problem(0, null); }
    );
  }

  function start() {
    conversation = null;
    return call("POST", "", {language: language, channel: channel}).then(function (data) {
      conversation = {id: data.id, token: data.token};
      save();
      absorb(data);
    }, function (problem) {
      if (problem.status === 429) throw problem;
      throw new Problem(-1, null);
    });
  }

  function resume(saved) {
    conversation = saved;
    return call("GET", "/" + encodeURIComponent(saved.id) + "?after=0").then(absorb);
  }

  function path(suffix) {
    return "/" + encodeURIComponent(conversation.id) + suffix;
  }

  function ensureStarted() {
    return conversation ? Promise.resolve() : start();
  }

  // One request at a time, in order; a failure is shown in the chat and the next one still runs.
  // The promise says whether the task succeeded.
  function enqueue(task) {
    pending += 1;
    root.dataset.busy = "true";
    typing.hidden = false;
    log.appendChild(typing);
    var run = queue
      .then(task)
      .then(
        function () { return true; },
        function (problem) {
          showProblem(problem);
          return false;
        }
      )
      .then(function (done) {
        pending -= 1;
        if (!pending) {
          root.dataset.busy = "false";
          typing.hidden = !waitingSince;
        }
        return done;
      });
    queue = run;
    return run;
  }

  function send(payload) {
    return enqueue(function () {
      return ensureStarted().then(function () {
        return call("POST", path("/messages"), payload).then(absorb);
      });
    });
  }

  // -- what came back --------------------------------------------------------------------------

  function absorb(data, reread) {
    var messages = data.messages || [];
    // Messages were added in between (an agent's reply): read everything after what is shown
    // (once: numbers a purge left missing stay missing).
    if (!reread && messages.length && messages[0].seq > lastSeq + 1) {
      return call("GET", path("?after=" + lastSeq)).then(function (all) { return absorb(all, true); });
    }
    messages.forEach(function (message) {
      if (message.seq <= lastSeq) return;
      log.appendChild(renderMessage(message));
      lastSeq = message.seq;
    });
    root.dataset.lastSeq = String(lastSeq);
    if (data.case_reference) root.dataset.caseReference = data.case_reference;
    keepOnlyCurrentChoices();
    adaptInput();
    var waiting = expected() === "wait";
    if (waiting && !waitingSince) waitingSince = Date.now();
    if (!waiting) waitingSince = 0;
    root.dataset.waiting = String(waiting);
    if (waiting) typing.hidden = false;
    else if (!pending) typing.hidden = true;
    if (data.last_seq === undefined || data.last_seq >= lastSeq) setStatus(data.status);
    else schedulePoll();
    if (!typing.hidden) log.appendChild(typing);
    scrollDown();
  }

  function setStatus(value) {
    if (!value) return;
    status = value;
    root.dataset.status = value;
    var text = value === "handed_over" ? T.handed_over : value === "closed" ? T.closed : "";
    stateLine.textContent = text;
    stateLine.hidden = !text;
    schedulePoll();
  }

  // While a person answers, their messages arrive only by asking: every 1.5 s; and so does what
  // the assistant said it would add.
  function polling() {
    return conversation && (status === "handed_over" || waitingSince);
  }

  function schedulePoll() {
    if (pollTimer) window.clearTimeout(pollTimer);
    pollTimer = null;
    if (!polling()) return;
    var quick = waitingSince && Date.now() - waitingSince < WAIT_FAST_MS;
    pollTimer = window.setTimeout(poll, quick ? WAIT_POLL_MS : POLL_MS);
  }

  function poll() {
    pollTimer = null;
    if (!polling()) return;
    if (pending) {
      schedulePoll(); // the answer to what is being sent brings the news
      return;
    }
    var polled = conversation;
    call("GET", path("?after=" + lastSeq))
      .then(function (data) {
        if (polled === conversation) absorb(data);
      })
      .catch(function (problem) {
        if (problem.status === 404) showProblem(problem);
      })
      .then(function () {
        if (!pollTimer) schedulePoll();
      });
  }

  // -- drawing ---------------------------------------------------------------------------------

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function sizeText(bytes) {
    if (bytes >= 1048576) return (bytes / 1048576).toFixed(1) + " MB";
    if (bytes >= 1024) return Math.round(bytes / 1024) + " KB";
    return bytes + " B";
  }

  function renderMessage(message) {
    var author = message.author;
    var item = element("div", "chat-msg chat-msg--" + author);
    item.dataset.seq = String(message.seq);
    item.dataset.author = author;
    item.dataset.expects = message.expects || "";
    item.appendChild(element("p", "chat-author", T[author] || author));
    var body = message.body;
    if (author === "customer" && body === HUMAN) body = T.human;
    if (message.upload) {
      item.appendChild(
        element("p", "chat-upload", T.file_sent.replace("%(name)s", message.upload.name) +
          " (" + sizeText(message.upload.size) + ")")
      );
    } else {
      item.appendChild(element("div", "chat-body", body));
    }
    if (author === "assistant" && message.choices && message.choices.length) {
      item.appendChild(renderChoices(message.choices));
    }
    if (author === "assistant" && message.expects === "rating") {
      item.appendChild(renderRating(message));
    }
    return item;
  }

  function renderChoices(choices) {
    var group = element("div", "chat-choices");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", T.options);
    choices.forEach(function (choice) {
      var button = element("button", "chat-choice", choice.label);
      button.type = "button";
      button.dataset.value = choice.value;
      button.addEventListener("click", function () {
        group.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
        send({choice: choice.value});
        input.focus();
      });
      group.appendChild(button);
    });
    return group;
  }

  function renderRating(message) {
    var group = element("div", "chat-rating");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", T.helpful + " / " + T.not_helpful);
    var thanks = element("span", "chat-rated", T.rated);
    thanks.hidden = message.rating === null || message.rating === undefined;
    [[true, T.helpful], [false, T.not_helpful]].forEach(function (spec) {
      var button = element("button", "chat-thumb secondary chat-thumb--" + (spec[0] ? "up" : "down"), spec[1]);
      button.type = "button";
      button.dataset.helpful = String(spec[0]);
      button.setAttribute("aria-pressed", String(message.rating === (spec[0] ? 1 : -1)));
      button.addEventListener("click", function () {
        enqueue(function () {
          return call("POST", path("/messages/" + message.seq + "/rating"), {helpful: spec[0]})
            .then(function (out) {
              group.querySelectorAll("button").forEach(function (b) {
                b.setAttribute("aria-pressed", String(out.rating === (b.dataset.helpful === "true" ? 1 : -1)));
              });
              thanks.hidden = false;
            });
        });
      });
      group.appendChild(button);
    });
    group.appendChild(thanks);
    return group;
  }

  function notice(text, kind) {
    var item = element("div", "chat-notice" + (kind ? " chat-notice--" + kind : ""), text);
    log.appendChild(item);
    if (!typing.hidden) log.appendChild(typing);
    scrollDown();
  }

  // Buttons answer the question being asked: only the newest message's stay.
  function keepOnlyCurrentChoices() {
    var messages = log.querySelectorAll(".chat-msg");
    var newest = messages[messages.length - 1];
    log.querySelectorAll(".chat-choices").forEach(function (group) {
      if (group.parentNode !== newest) group.parentNode.removeChild(group);
    });
  }

  // What the newest assistant message waits for.
  function expected() {
    var said = log.querySelectorAll(".chat-msg--assistant");
    return said.length ? said[said.length - 1].dataset.expects : "";
  }

  function adaptInput() {
    var expects = expected();
    input.setAttribute("inputmode", expects === "email" ? "email" : "text");
    input.setAttribute("autocomplete", expects === "email" ? "email" : expects === "name" ? "name" : "off");
    fileButton.classList.toggle("chat-attention", expects === "file");
  }

  // To the end; but a message taller than the log (the privacy notice) is shown from its start.
  function scrollDown() {
    var messages = log.querySelectorAll(".chat-msg, .chat-notice");
    var newest = messages[messages.length - 1];
    var top = log.scrollHeight;
    if (newest && newest.offsetHeight > log.clientHeight) top = newest.offsetTop - 8;
    var smooth = !(reduceMotion && reduceMotion.matches);
    if (log.scrollTo) log.scrollTo({top: top, behavior: smooth ? "smooth" : "auto"});
    else log.scrollTop = top;
  }

  function showProblem(problem) {
    if (!(problem instanceof Problem)) problem = new Problem(0, null);
    var data = problem.data || {};
    if (problem.status === 422) {
      var texts = (data.errors || []).map(function (e) { return e.message; }).filter(Boolean);
      notice(texts.length ? texts.join(" ") : data.detail || T.failed, "error");
    } else if (problem.status === 429) {
      notice(T.too_many, "error");
    } else if (problem.status === 404) {
      // The conversation is gone (purged, or the token is not ours): begin again.
      restart(T.not_found);
    } else if (problem.status === -1) {
      notice(T.start_failed, "error");
    } else {
      notice(T.failed, "error");
    }
  }

  function clear() {
    if (pollTimer) window.clearTimeout(pollTimer);
    pollTimer = null;
    lastSeq = 0;
    status = "";
    waitingSince = 0;
    typing.hidden = !pending;
    root.dataset.lastSeq = "0";
    delete root.dataset.caseReference;
    delete root.dataset.status;
    stateLine.hidden = true;
    while (log.firstChild) log.removeChild(log.firstChild);
  }

  function restart(message) {
    forget();
    clear();
    return enqueue(function () {
      return start().then(function () {
        if (message) notice(message, "info");
      });
    });
  }

  // -- the customer's side ---------------------------------------------------------------------

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) {
      notice(T.empty, "error");
      input.focus();
      return;
    }
    input.value = "";
    send({text: text}).then(function (done) {
      // Nothing typed is lost: a message that could not be sent comes back to the box.
      if (!done && !input.value) input.value = text;
    });
    input.focus();
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (form.requestSubmit) form.requestSubmit();
      else form.dispatchEvent(new Event("submit", {cancelable: true}));
    }
  });

  fileButton.addEventListener("click", function () { fileInput.click(); });

  fileInput.addEventListener("change", function () {
    var file = fileInput.files && fileInput.files[0];
    if (!file) return;
    var data = new FormData();
    data.append("file", file, file.name);
    fileInput.value = "";
    notice(T.sending_file, "info");
    enqueue(function () {
      return ensureStarted().then(function () {
        return call("POST", path("/attachments"), data).then(absorb);
      });
    });
    input.focus();
  });

  humanButton.addEventListener("click", function () {
    send({choice: HUMAN});
    input.focus();
  });

  newButton.addEventListener("click", function () {
    restart("");
    input.focus();
  });

  // In the widget's frame: Escape closes the panel, and the page can hand focus to the box.
  if (embedded) {
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape") window.parent.postMessage({type: "concilia:close"}, "*");
    });
    window.addEventListener("message", function (event) {
      if (event.source === window.parent && event.data && event.data.type === "concilia:focus") {
        input.focus();
      }
    });
  }

  // -- begin: continue the kept conversation, or start one --------------------------------------

  var saved = load();
  if (saved) {
    enqueue(function () {
      return resume(saved).catch(function (problem) {
        if (problem.status !== 404) throw problem;
        forget();
        clear();
        return start();
      });
    });
  } else {
    enqueue(start);
  }
})();
