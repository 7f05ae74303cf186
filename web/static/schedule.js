// Live progress of a solve run: polls the run's JSON while it is active, reloads when it ends.
// The words come translated: the phase from the JSON (`phase_label`), "score" and "bound" from the page.
(function () {
  "use strict";
  var panel = document.getElementById("run-progress");
  if (!panel || panel.dataset.active !== "1" || !panel.dataset.url) { return; }
  var status = document.getElementById("run-status");
  var detail = document.getElementById("run-detail");
  var button = document.getElementById("solve-button");
  if (button) { button.disabled = true; }
  function fmt(x) { return (x === null || x === undefined) ? "" : Math.round(x).toLocaleString(); }
  function poll() {
    fetch(panel.dataset.url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (run) {
        var p = run.progress || {};
        if (button) { button.disabled = !!run.active; }
        status.textContent = run.phase_label || "";
        var parts = [];
        if (p.elapsed !== undefined) { parts.push(p.elapsed + " s"); }
        if (p.objective !== null && p.objective !== undefined) { parts.push(panel.dataset.scoreWord + " " + fmt(p.objective)); }
        if (p.bound !== null && p.bound !== undefined) { parts.push(panel.dataset.boundWord + " " + fmt(p.bound)); }
        detail.textContent = parts.join(" · ");
        if (run.active) { window.setTimeout(poll, 1000); } else { window.location.reload(); }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  poll();
})();
