// The community worker's check-in code page: count down to the next code, then load the page again.
// Counted on the wall clock, so a phone that slept or a throttled background tab still reloads in time.
(function () {
  "use strict";
  var box = document.getElementById("countdown");
  if (!box) { return; }
  var seconds = parseInt(box.getAttribute("data-refresh-in"), 10);
  if (!(seconds > 0)) { return; }
  var deadline = Date.now() + seconds * 1000;
  var shown = box.querySelector(".countdown-seconds");
  var done = false;
  function tick() {
    if (done) { return; }
    var left = Math.ceil((deadline - Date.now()) / 1000);
    if (left <= 0) {
      done = true;
      window.location.reload();
      return;
    }
    if (shown) { shown.textContent = String(left); }
  }
  window.setInterval(tick, 1000);
  document.addEventListener("visibilitychange", tick);
}());
