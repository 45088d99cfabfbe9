// Concilia's chat widget for a company's own website, added with one tag:
//   <script src="https://concilia.example/static/concilia/widget.js" data-concilia-lang="es" async></script>
// It adds a launcher button that opens a panel framing /chat/embed/ from the script's own origin.
// No dependencies; one global (window.ConciliaWidget); its elements live in a shadow root, styled
// by their own style attributes, so the page's CSS and the widget's do not touch each other.
(function () {
  "use strict";
  if (window.ConciliaWidget) return;

  var script = document.currentScript;
  if (!script) {
    var found = document.querySelectorAll("script[src*='concilia/widget.js']");
    script = found[found.length - 1];
  }
  if (!script || !script.src) return;

  var origin = new URL(script.src, window.location.href).origin;
  var WORDS = {
    es: {open: "Abrir el chat de reclamaciones", close: "Cerrar el chat", title: "Chat de reclamaciones", label: "Ayuda"},
    en: {open: "Open the complaints chat", close: "Close the chat", title: "Complaints chat", label: "Help"}
  };
  var asked = (script.getAttribute("data-concilia-lang") || document.documentElement.lang || navigator.language || "es")
    .slice(0, 2)
    .toLowerCase();
  var lang = WORDS[asked] ? asked : "es";
  var words = WORDS[lang];
  var ACCENT = "#1f5fbf";

  function style(node, rules) {
    Object.keys(rules).forEach(function (name) { node.style.setProperty(name, rules[name]); });
  }

  function strongFocus(node) {
    node.addEventListener("focus", function () {
      style(node, {outline: "3px solid #1d2433", "outline-offset": "3px"});
    });
    node.addEventListener("blur", function () { node.style.removeProperty("outline"); });
  }

  // A speech bubble drawn here: no emoji font or image file needed.
  function bubble() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "22");
    svg.setAttribute("height", "22");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var shape = document.createElementNS(ns, "path");
    shape.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2H10l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
    shape.setAttribute("fill", "currentColor");
    svg.appendChild(shape);
    style(svg, {display: "block", "flex-shrink": "0"});
    return svg;
  }

  var host = document.createElement("div");
  host.setAttribute("data-concilia-widget", "");
  style(host, {position: "fixed", right: "0", bottom: "0", "z-index": "2147483000"});
  var shade = host.attachShadow ? host.attachShadow({mode: "open"}) : host;

  var launcher = document.createElement("button");
  launcher.type = "button";
  launcher.id = "concilia-launcher";
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", "concilia-panel");
  launcher.setAttribute("aria-label", words.open);
  launcher.title = words.open;
  launcher.appendChild(bubble());
  launcher.appendChild(document.createTextNode(words.label));
  style(launcher, {
    position: "fixed", right: "16px", bottom: "16px", "min-height": "48px", "min-width": "48px",
    display: "flex", "align-items": "center", gap: "8px",
    padding: "0 18px", border: "0", "border-radius": "999px", background: ACCENT, color: "#fff",
    font: "600 16px/1 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", cursor: "pointer",
    "box-shadow": "0 4px 14px rgba(0,0,0,.25)"
  });
  strongFocus(launcher);

  var panel = document.createElement("div");
  panel.id = "concilia-panel";
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", words.title);
  panel.hidden = true;
  style(panel, {
    position: "fixed", right: "16px", bottom: "76px", width: "min(400px, calc(100vw - 32px))",
    height: "min(620px, calc(100vh - 96px))", display: "none", "flex-direction": "column",
    background: "#fff", border: "1px solid #d9dee8", "border-radius": "12px", overflow: "hidden",
    "box-shadow": "0 8px 30px rgba(0,0,0,.25)"
  });

  var head = document.createElement("div");
  style(head, {
    display: "flex", "align-items": "center", "justify-content": "space-between", gap: "8px",
    padding: "6px 6px 6px 14px", background: ACCENT, color: "#fff",
    font: "600 15px/1.2 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
  });
  var title = document.createElement("span");
  title.textContent = words.title;
  var close = document.createElement("button");
  close.type = "button";
  close.setAttribute("aria-label", words.close);
  close.title = words.close;
  close.textContent = "\u00D7";
  style(close, {
    width: "36px", height: "36px", border: "0", "border-radius": "50%", background: "#fff",
    color: "#1d2433", font: "24px/1 sans-serif", cursor: "pointer", "flex-shrink": "0"
  });
  strongFocus(close);
  head.appendChild(title);
  head.appendChild(close);
  panel.appendChild(head);

  var frame = null;

  function makeFrame() {
    frame = document.createElement("iframe");
    frame.title = words.title;
    frame.src = origin + "/chat/embed/?lang=" + encodeURIComponent(lang);
    frame.setAttribute("allow", "");
    style(frame, {border: "0", width: "100%", "min-height": "0", flex: "1"});
    frame.addEventListener("load", focusFrame);
    panel.appendChild(frame);
  }

  function focusFrame() {
    if (!frame || panel.hidden) return;
    frame.focus();
    frame.contentWindow.postMessage({type: "concilia:focus"}, origin);
  }

  function isOpen() {
    return !panel.hidden;
  }

  function open() {
    if (isOpen()) return;
    panel.hidden = false;
    panel.style.display = "flex";
    launcher.setAttribute("aria-expanded", "true");
    if (!frame) makeFrame();
    else focusFrame();
  }

  function shut() {
    if (!isOpen()) return;
    panel.hidden = true;
    panel.style.display = "none";
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }

  launcher.addEventListener("click", function () {
    if (isOpen()) shut();
    else open();
  });
  close.addEventListener("click", shut);
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") shut();
  });
  // Escape pressed inside the frame reaches us as a message from it.
  window.addEventListener("message", function (event) {
    if (event.origin !== origin || !frame || event.source !== frame.contentWindow) return;
    if (event.data && event.data.type === "concilia:close") shut();
  });

  shade.appendChild(panel);
  shade.appendChild(launcher);

  function attach() {
    document.body.appendChild(host);
  }
  if (document.body) attach();
  else document.addEventListener("DOMContentLoaded", attach);

  window.ConciliaWidget = {open: open, close: shut};
})();
