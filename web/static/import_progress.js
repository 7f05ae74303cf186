// Live progress of a large spreadsheet import (like schedule.js for a solve): polls the upload's JSON
// while its job is active, moves the bar, and reloads the page when the job ends.
(function () {
  "use strict";
  var panel = document.getElementById("import-progress");
  if (!panel || panel.dataset.active !== "1" || !panel.dataset.url) { return; }
  var state = document.getElementById("import-state");
  var rows = document.getElementById("import-rows");
  var bar = document.getElementById("import-bar");
  function poll() {
    fetch(panel.dataset.url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (job) {
        state.textContent = job.label || "";
        bar.max = job.rows_total || 1;
        bar.value = job.rows_done || 0;
        rows.textContent = (job.rows_done || 0).toLocaleString() + " / " + (job.rows_total || 0).toLocaleString();
        if (job.active) { window.setTimeout(poll, 1000); } else { window.location.reload(); }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  poll();
})();
