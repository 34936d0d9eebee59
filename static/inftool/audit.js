// Keyboard audit: j/k move between sampled trajectories, a/r/f decide the current one.
(function () {
  "use strict";
  var current = 0;
  function items() { return Array.prototype.slice.call(document.querySelectorAll(".audit-item")); }
  function select(i) {
    var all = items();
    if (!all.length) return;
    current = Math.max(0, Math.min(all.length - 1, i));
    all.forEach(function (el, k) { el.classList.toggle("current", k === current); });
    all[current].scrollIntoView({ block: "nearest", behavior: "smooth" });
  }
  function decide(decision) {
    var item = items()[current];
    if (!item) return;
    var button = item.querySelector('button[name=decision][value="' + decision + '"]');
    if (button) button.click();
  }
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) {
      if (e.key === "Escape") t.blur();
      return;
    }
    var keys = { j: function () { select(current + 1); }, k: function () { select(current - 1); },
                 a: function () { decide("accept"); }, r: function () { decide("reject"); }, f: function () { decide("flag"); } };
    if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
  });
  document.addEventListener("click", function (e) {
    var item = e.target.closest && e.target.closest(".audit-item");
    if (item) { var i = items().indexOf(item); if (i >= 0 && i !== current) select(i); }
  });
  // After a decision the card is swapped in place: move on to the next one.
  document.addEventListener("htmx:load", function (e) {
    var el = e.detail.elt;
    if (el && el.classList && el.classList.contains("audit-item")) select(items().indexOf(el) + 1);
  });
  document.addEventListener("DOMContentLoaded", function () { select(0); });
})();
