// Live progress of a large spreadsheet import (like schedule.js for a solve): polls the upload's JSON
// while its job is active, moves the bar, and reloads the page when the job ends. An answer that is not
// the job's JSON stops the polling instead of polling forever: the login page (the session expired) is
// shown by reloading; a refusal or a server error leaves a message to reload the page.
(function () {
  "use strict";
  var panel = document.getElementById("import-progress");
  if (!panel || panel.dataset.active !== "1" || !panel.dataset.url) { return; }
  var state = document.getElementById("import-state");
  var rows = document.getElementById("import-rows");
  var bar = document.getElementById("import-bar");
  var failures = 0;
  function stop(reload) {
    state.textContent = panel.dataset.stopped || "";
    if (reload) { window.location.reload(); }
  }
  function poll() {
    fetch(panel.dataset.url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) {
        var type = r.headers.get("Content-Type") || "";
        if (!r.ok) { stop(false); return null; }
        if (r.redirected || type.indexOf("application/json") === -1) { stop(true); return null; }
        return r.json();
      })
      .then(function (job) {
        if (!job) { return; }
        failures = 0;
        state.textContent = job.label || "";
        bar.max = job.rows_total || 1;
        bar.value = job.rows_done || 0;
        rows.textContent = (job.rows_done || 0).toLocaleString() + " / " + (job.rows_total || 0).toLocaleString();
        if (job.active) { window.setTimeout(poll, 1000); } else { window.location.reload(); }
      })
      .catch(function () {
        failures += 1;  // the network dropped: try again a few times, then let the page say what happened
        if (failures < 20) { window.setTimeout(poll, 3000); } else { stop(false); }
      });
  }
  poll();
})();
