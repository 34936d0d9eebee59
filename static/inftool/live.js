// Live updates: the htmx ws extension delivers JSON events; rows and cards are fetched as
// server-rendered partials (escaped by Django), and steps are built with textContent only.
(function () {
  "use strict";
  var pending = {};
  var refreshTimers = new WeakMap();

  function itemUrl(list, id) { return list.dataset.itemUrl.replace("{id}", encodeURIComponent(id)); }

  function trim(list) {
    var max = parseInt(list.dataset.max || "0", 10);
    if (!max) return;
    var items = list.querySelectorAll(":scope > [data-id]");
    for (var i = max; i < items.length; i++) items[i].remove();
  }

  function upsert(root, id) {
    var list = root.querySelector("[data-live-list]");
    if (!list) return;
    var key = list.dataset.itemPrefix + id;
    if (pending[key]) { pending[key] = "again"; return; }
    pending[key] = true;
    var existing = document.getElementById(key);
    var placeholder = list.querySelector(".empty");
    if (placeholder) placeholder.remove();
    var done = function () {
      var again = pending[key] === "again";
      delete pending[key];
      var el = document.getElementById(key);
      if (el) { el.classList.add("fresh"); }
      trim(list);
      if (again) upsert(root, id);
    };
    var p = existing
      ? htmx.ajax("GET", itemUrl(list, id), { target: existing, swap: "outerHTML" })
      : htmx.ajax("GET", itemUrl(list, id), { target: list, swap: "afterbegin" });
    p.then(done, done);
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function renderStep(ev) {
    var li = el("li", "msg r-" + String(ev.role || "").replace(/[^a-z_]/g, ""));
    li.dataset.index = ev.index;
    var head = el("div", "msg-head");
    head.appendChild(el("span", "role", ev.role));
    if (ev.agent) head.appendChild(el("span", "agent", ev.agent));
    head.appendChild(el("span", "idx", "#" + ev.index));
    li.appendChild(head);
    if (ev.content) li.appendChild(el("div", "content", ev.content));
    (ev.tool_calls || []).forEach(function (c) {
      var fn = (c && c.function) || c || {};
      var args = fn.arguments;
      if (typeof args === "string") { try { args = JSON.parse(args); } catch (e) { /* shown as sent */ } }
      var call = el("div", "call");
      call.appendChild(el("span", "call-name", fn.name || ""));
      call.appendChild(el("pre", "", typeof args === "string" ? args : JSON.stringify(args || {}, null, 2)));
      li.appendChild(call);
    });
    return li;
  }

  function addStep(root, ev) {
    var list = root.querySelector("[data-live-list]");
    if (!list || list.dataset.itemPrefix !== "live-t-") return;
    var card = document.getElementById("live-t-" + ev.trajectory);
    if (!card) { upsert(root, ev.trajectory); return; }  // the card comes with its stored steps
    var steps = card.querySelector(".steps");
    if (!steps || steps.querySelector('[data-index="' + CSS.escape(String(ev.index)) + '"]')) return;
    var li = renderStep(ev);
    var after = Array.prototype.find.call(steps.children, function (c) { return +c.dataset.index > +ev.index; });
    steps.insertBefore(li, after || null);
    steps.scrollTop = steps.scrollHeight;
  }

  function refresh(root) {
    var sel = root.dataset.refresh, url = root.dataset.refreshUrl;
    if (!sel || !url) return;
    clearTimeout(refreshTimers.get(root));
    refreshTimers.set(root, setTimeout(function () {
      var target = document.querySelector(sel);
      if (target) htmx.ajax("GET", url, { target: target, swap: "outerHTML" });
    }, 700));
  }

  function handle(root, ev) {
    var it = root.dataset.iteration;
    if (it && ev.iteration !== undefined && String(ev.iteration) !== it) return;
    if (ev.kind === "trajectory") { upsert(root, ev.id); refresh(root); }
    else if (ev.kind === "step") { addStep(root, ev); }
    else if (ev.kind === "iteration") { refresh(root); }
  }

  document.addEventListener("htmx:wsBeforeMessage", function (e) {
    var ev;
    try { ev = JSON.parse(e.detail.message); } catch (err) { return; }
    e.preventDefault();  // JSON, not HTML: nothing for htmx to swap
    var root = e.target.closest("[data-live]") || e.target;
    handle(root, ev);
  });
  document.addEventListener("htmx:wsOpen", function (e) {
    var root = e.target.closest("[data-live]"); if (root) root.classList.add("ws-open");
  });
  document.addEventListener("htmx:wsClose", function (e) {
    var root = e.target.closest("[data-live]"); if (root) root.classList.remove("ws-open");
  });
})();
