// Evidence highlighting for the review screen. No inline script (CSP): loaded as a file.
(function () {
  "use strict";
  function clear() {
    document.querySelectorAll(".highlight").forEach(function (el) { el.classList.remove("highlight"); });
  }
  document.addEventListener("click", function (event) {
    var sentence = event.target.closest(".sentence");
    if (sentence) {
      clear();
      sentence.classList.add("highlight");
      var ids = (sentence.dataset.evidence || "").split(" ").filter(Boolean);
      ids.forEach(function (i) {
        var seg = document.getElementById("seg-" + i);
        if (seg) { seg.classList.add("highlight"); }
      });
      if (ids.length) {
        var first = document.getElementById("seg-" + ids[0]);
        if (first) {
          first.scrollIntoView({ block: "center" });
          var player = document.getElementById("player");
          if (player) {
            player.currentTime = parseFloat(first.dataset.start || "0");
            player.play().catch(function () {});
          }
        }
      }
      return;
    }
    var segment = event.target.closest(".segment");
    if (segment) {
      clear();
      segment.classList.add("highlight");
      (segment.dataset.citedBy || "").split(" ").filter(Boolean).forEach(function (id) {
        var s = document.querySelector('[data-sentence="' + id + '"]');
        if (s) { s.classList.add("highlight"); }
      });
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.target.classList && event.target.classList.contains("segment")) {
      event.target.click();
    }
  });
})();

// Recording in the browser: MediaRecorder cuts the recording into two-second pieces; each is
// sent as soon as it exists, in order, retried until the server acknowledges that it is on disk
// (a dropped network keeps the pieces in the page and sends them when it is back). Each
// acknowledged piece, while the recorder runs, counts as activity for the idle timeout; the
// screen is kept on where the browser offers a wake lock.
(function () {
  "use strict";
  var form = document.getElementById("recorder");
  if (!form || !window.MediaRecorder) { return; }
  var csrf = form.dataset.csrf;
  var $ = function (id) { return document.getElementById(id); };
  var recorder = null, sessionId = null, seq = 0, acked = 0, queue = [], sending = false, started = 0, paused = 0, pausedAt = 0, timer = null;
  var wakeLock = null, stopped = false;

  function error(message) { var el = $("rec-error"); el.textContent = message; el.hidden = false; }
  function post(url, body, contentType) {
    var headers = { "X-CSRF-Token": csrf };
    if (contentType) { headers["Content-Type"] = contentType; }
    // redirect "manual": a log-in redirect must never pass for an acknowledgement
    return fetch(url, { method: "POST", headers: headers, body: body, credentials: "same-origin", redirect: "manual" });
  }
  function showQueue() {
    $("rec-chunks").textContent = String(acked);
    $("rec-pending").textContent = String(queue.length);
    $("rec-waiting").hidden = queue.length < 2;  // one piece in flight is normal
  }
  function keepScreenOn() {
    if (stopped || !navigator.wakeLock || document.visibilityState !== "visible") { return; }
    navigator.wakeLock.request("screen").then(function (lock) { wakeLock = lock; }).catch(function () {});
  }
  document.addEventListener("visibilitychange", keepScreenOn);  // the browser drops the lock when hidden
  function pump() {
    if (sending || !queue.length) { showQueue(); return; }
    sending = true;
    var item = queue[0];
    post("/recordings/" + sessionId + "/chunks/" + item.seq, item.blob, "application/octet-stream").then(function (r) {
      if (r.type === "opaqueredirect" || r.status === 401) {  // the session ended: stop, say what is kept
        sending = false; stopRecorder();
        error("Your log-in ended, so recording stopped. The " + acked + " piece(s) saved are kept; log in again to continue.");
        return;
      }
      if (r.ok) {
        return r.json().then(function (body) {
          if (body.seq !== item.seq) { throw new Error("acknowledged the wrong piece"); }
          queue.shift(); acked += 1; sending = false;
          if (recorder && recorder.state === "recording") { document.dispatchEvent(new CustomEvent("scribe:activity")); }
          pump();
        });
      }
      return r.text().then(function (t) {
        sending = false;
        if (r.status === 409 || r.status === 403) {  // consent withdrawn or recording closed: stop for good
          stopRecorder(); error("The server stopped accepting this recording (" + r.status + "). " + t.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").slice(0, 300));
        } else { showQueue(); setTimeout(pump, 2000); }
      });
    }).catch(function () { sending = false; showQueue(); setTimeout(pump, 2000); });  // offline: keep the piece, try again
  }
  // The transcript so far, as live transcription commits it (every five seconds while recording).
  var shown = 0, polling = null;
  function follow() {
    if (stopped || !sessionId) { return; }
    fetch("/recordings/" + sessionId + "/live?after=" + shown, { credentials: "same-origin", redirect: "manual" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body) { return; }
        var list = $("live-lines");
        body.segments.forEach(function (seg) {
          if (seg.i < shown) { return; }
          var li = document.createElement("li"), who = document.createElement("span");
          li.className = "segment " + seg.speaker.replace(" ", "_");
          who.className = "speaker"; who.textContent = seg.speaker + ": ";
          li.appendChild(who); li.appendChild(document.createTextNode(seg.text));
          list.appendChild(li); shown = seg.i + 1; $("live").hidden = false;
        });
      }).catch(function () {});
  }
  function tick() {
    var ms = Date.now() - started - paused - (pausedAt ? Date.now() - pausedAt : 0);
    var s = Math.floor(ms / 1000);
    $("rec-time").textContent = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }
  function stopRecorder() {
    stopped = true;
    if (recorder && recorder.state !== "inactive") { recorder.stop(); }
    if (wakeLock) { wakeLock.release().catch(function () {}); wakeLock = null; }
    if (timer) { clearInterval(timer); }
    if (polling) { clearInterval(polling); }
    $("rec-pause").disabled = true; $("rec-stop").disabled = true;
  }
  $("rec-start").addEventListener("click", function () {
    var data = new URLSearchParams(new FormData(form));
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      return post("/recordings", data, "application/x-www-form-urlencoded").then(function (r) {
        if (!r.ok) { return r.text().then(function (t) { throw new Error(t.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").slice(0, 300)); }); }
        return r.json();
      }).then(function (body) {
        sessionId = body.session_id;
        recorder = new MediaRecorder(stream, { mimeType: "audio/webm" });
        recorder.addEventListener("dataavailable", function (e) {
          if (e.data && e.data.size) { queue.push({ seq: seq, blob: e.data }); seq += 1; pump(); }
        });
        recorder.addEventListener("stop", function () { stream.getTracks().forEach(function (t) { t.stop(); }); });
        recorder.start(2000);
        keepScreenOn();
        started = Date.now(); timer = setInterval(tick, 500); polling = setInterval(follow, 5000);
        $("rec-indicator").hidden = false;
        $("rec-start").disabled = true; $("rec-pause").disabled = false; $("rec-stop").disabled = false;
        form.querySelectorAll("select").forEach(function (s) { s.disabled = true; });
      });
    }).catch(function (e) { error("Could not start recording: " + e.message); });
  });
  $("rec-pause").addEventListener("click", function () {
    if (recorder.state === "recording") {
      recorder.pause(); pausedAt = Date.now(); $("rec-state").textContent = "Paused"; this.textContent = "Resume";
      $("rec-indicator").classList.add("paused");
    } else {
      recorder.resume(); paused += Date.now() - pausedAt; pausedAt = 0; $("rec-state").textContent = "Recording"; this.textContent = "Pause";
      $("rec-indicator").classList.remove("paused");
    }
  });
  $("rec-stop").addEventListener("click", function () {
    recorder.addEventListener("stop", function wait() {
      var check = setInterval(function () {
        if (queue.length || sending) { return; }
        clearInterval(check);
        post("/recordings/" + sessionId + "/finish", "", "application/x-www-form-urlencoded").then(function (r) {
          if (r.type === "opaqueredirect") { window.location = "/sessions/" + sessionId; } else if (r.ok) { window.location = r.url; } else { r.text().then(function (t) { error(t.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").slice(0, 300)); }); }
        });
      }, 200);
    });
    $("rec-state").textContent = "Sending the last piece…";
    stopRecorder();
  });
})();

// The receipt's print link (no inline script under our CSP).
(function () {
  "use strict";
  var link = document.getElementById("print");
  if (link) { link.addEventListener("click", function () { window.print(); }); }
})();

// Idle timeout warning: the server ends a session after the policy's idle minutes. Shortly
// before, say so and offer to stay; any request (a save, a page) also restarts the clock.
document.addEventListener("DOMContentLoaded", function () {
  var body = document.body;
  var idle = parseInt(body.dataset.idleSeconds || "0", 10);
  var warn = parseInt(body.dataset.warnSeconds || "0", 10);
  var box = document.getElementById("idle-warning");
  if (!idle || !box) { return; }
  var last = Date.now(), done = false;
  function touch() { last = Date.now(); box.hidden = true; }
  function csrfToken() { return JSON.parse(body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || ""; }
  document.body.addEventListener("htmx:afterRequest", touch);
  document.addEventListener("scribe:activity", touch);  // a recording piece the server acknowledged
  document.getElementById("stay-signed-in").addEventListener("click", function () {
    fetch("/session/keepalive", {method: "POST", headers: {"X-CSRF-Token": csrfToken()}, credentials: "same-origin"})
      .then(function (r) { if (r.ok) { touch(); } else { window.location = "/login"; } });
  });
  setInterval(function () {
    var left = idle - Math.floor((Date.now() - last) / 1000);
    if (left <= 0) {  // end the session on the server too, then show the log-in page
      if (done) { return; }
      done = true;
      fetch("/logout", {method: "POST", headers: {"X-CSRF-Token": csrfToken()}, credentials: "same-origin"})
        .finally(function () { window.location = "/login"; });
      return;
    }
    if (left <= warn) {
      box.hidden = false;
      document.getElementById("idle-countdown").textContent = Math.floor(left / 60) + ":" + ("0" + (left % 60)).slice(-2);
    }
  }, 1000);
});

// Enrolling the clinician's voice: twenty seconds from the microphone, sent as a file.
(function () {
  "use strict";
  var button = document.getElementById("voice-record");
  var form = document.getElementById("voice-upload");
  if (!button || !form || !window.MediaRecorder) { return; }
  button.addEventListener("click", function () {
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      var recorder = new MediaRecorder(stream, { mimeType: "audio/webm" }), parts = [], left = 20;
      var shown = document.getElementById("voice-recording"), counter = document.getElementById("voice-left");
      recorder.addEventListener("dataavailable", function (e) { if (e.data && e.data.size) { parts.push(e.data); } });
      recorder.addEventListener("stop", function () {
        stream.getTracks().forEach(function (t) { t.stop(); });
        var data = new FormData();
        data.append("csrf_token", form.dataset.csrf);
        data.append("audio", new Blob(parts, { type: "audio/webm" }), "voice.webm");
        fetch("/account/voice", { method: "POST", body: data, credentials: "same-origin",
                                  headers: { "X-CSRF-Token": form.dataset.csrf } })
          .then(function (r) {
            if (r.ok) { window.location = "/account/voice"; return; }
            return r.text().then(function (t) {
              shown.textContent = t.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").slice(0, 300); button.disabled = false;
            });
          });
      });
      recorder.start();
      button.disabled = true; shown.hidden = false;
      var timer = setInterval(function () {
        left -= 1; counter.textContent = String(left);
        if (left <= 0) { clearInterval(timer); recorder.stop(); }
      }, 1000);
    }).catch(function () { button.textContent = "No microphone: upload a file instead"; button.disabled = true; });
  });
})();
