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
