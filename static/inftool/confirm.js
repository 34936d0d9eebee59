// Forms with data-confirm ask before they submit.  A static file, not an inline onsubmit
// handler: the Content-Security-Policy runs no inline script.  Delegated from the document,
// so forms that htmx swaps in later are covered too.
(function () {
  "use strict";
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      e.preventDefault();
      e.stopImmediatePropagation();
    }
  }, true);
})();
