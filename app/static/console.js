// Gnomon console: confirmations, live regions refreshed by polling, and live logs over
// server-sent events. Served by Gnomon itself; no other script is loaded.
"use strict";

(function () {
  var POLL_MS = 2000;
  var ERROR_LINE = /\b(error|fatal|exception|traceback|panic)\b/i;

  function confirmForms() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      var question = form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) {
        event.preventDefault();
      }
    });
  }

  function pollLive(region) {
    var url = region.getAttribute("data-live");
    var timer = null;
    function stopped() {
      return region.querySelector("[data-live-stop]") !== null;
    }
    function refresh() {
      if (document.hidden) { schedule(); return; }
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (response.redirected || !response.ok) { throw new Error(response.status); }
          return response.text();
        })
        .then(function (html) {
          if (html !== region.innerHTML) {
            region.innerHTML = html;
            document.dispatchEvent(new CustomEvent("gnomon:live"));
          }
          if (!stopped()) { schedule(); }
        })
        .catch(function () { schedule(); });
    }
    function schedule() {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, POLL_MS);
    }
    if (!stopped()) { schedule(); }
  }

  function sourceClass(source) {
    if (source === "stdout") { return "out"; }
    if (source === "stderr") { return "err"; }
    return "callback";
  }

  function streamLog(list) {
    var state = document.getElementById("log-state");
    var follow = document.getElementById("log-follow");
    var find = document.getElementById("log-find");
    var found = document.getElementById("log-found");
    var source = null;

    function matches(line) {
      var wanted = find.value.trim().toLowerCase();
      return !wanted || line.textContent.toLowerCase().indexOf(wanted) !== -1;
    }
    function applyFind() {
      var lines = list.children;
      var count = 0;
      for (var i = 0; i < lines.length; i++) {
        var hit = matches(lines[i]);
        lines[i].hidden = !hit;
        if (hit) { count++; }
      }
      found.textContent = find.value.trim() ? count + " of " + lines.length + " lines" : "";
    }
    function append(entry) {
      var item = document.createElement("li");
      item.className = "line " + sourceClass(entry.source) + (ERROR_LINE.test(entry.message) ? " error" : "");
      var when = document.createElement("time");
      when.textContent = entry.when.replace("T", " ").replace(/\.\d+Z$/, "Z");
      var src = document.createElement("span");
      src.className = "src";
      src.textContent = entry.source;
      var text = document.createElement("span");
      text.className = "msg";
      text.textContent = entry.message;
      item.appendChild(when);
      item.appendChild(src);
      item.appendChild(text);
      item.hidden = !matches(item);
      list.appendChild(item);
      if (follow.checked) { list.scrollTop = list.scrollHeight; }
    }
    function open() {
      source = new EventSource(list.getAttribute("data-stream"));
      state.textContent = "live";
      source.addEventListener("log", function (event) {
        append(JSON.parse(event.data));
        if (find.value.trim()) { applyFind(); }
      });
      source.addEventListener("end", function () {
        source.close();
        state.textContent = "ended: all output shown";
        list.setAttribute("data-ended", "");
        if (follow.checked && !/[?&]task=/.test(window.location.search)) {
          followRun(list.getAttribute("data-task-id"));
        }
      });
      source.onerror = function () {
        if (source.readyState === EventSource.CLOSED) {
          // refused (for instance 503: too many streams): try again a little later
          state.textContent = "waiting for a free stream…";
          window.setTimeout(open, 5000);
        } else {
          state.textContent = "reconnecting…";
        }
      };
    }
    find.addEventListener("input", applyFind);
    follow.addEventListener("change", function () {
      if (follow.checked) { list.scrollTop = list.scrollHeight; }
    });
    document.getElementById("log-task").addEventListener("change", function (event) {
      event.target.form.submit();
    });
    open();
  }

  // Without an attempt picked, the log follows the run: when another attempt starts
  // running (or the first one appears), the page reopens on it.
  function followRun(shownId) {
    document.addEventListener("gnomon:live", function () {
      var row = document.querySelector("[data-live] tr[data-running]") ||
        (shownId ? null : document.querySelector("[data-live] tr[data-task-id]"));
      if (row && row.getAttribute("data-task-id") !== shownId) {
        window.location.reload();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    confirmForms();
    Array.prototype.forEach.call(document.querySelectorAll("[data-live]"), pollLive);
    var list = document.getElementById("log-lines");
    if (list) { streamLog(list); }
    if (document.querySelector("[data-await-attempt]")) { followRun(null); }
  });
}());
