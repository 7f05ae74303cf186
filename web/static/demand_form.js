// Demand form: choosing a category fills in its usual headcount and, once a start time is set,
// an end time from its usual duration. Only empty fields (or ones this script filled) change.
(function () {
  "use strict";
  var form = document.getElementById("demand-form");
  if (!form) { return; }
  var category = form.elements.category, start = form.elements.start, end = form.elements.end;
  var people = form.elements.people, minPeople = form.elements.min_people;

  function fill(input, value) {
    if (input && (input.value === "" || input.dataset.auto === "1")) {
      input.value = value;
      input.dataset.auto = "1";
    }
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function chosen() { return category.options[category.selectedIndex]; }
  function fillEnd() {
    var option = chosen();
    if (!option || !option.dataset.minutes || !/^\d\d:\d\d$/.test(start.value)) { return; }
    var parts = start.value.split(":");
    var minutes = Math.min(24 * 60 - 1, parseInt(parts[0], 10) * 60 + parseInt(parts[1], 10) +
                           parseInt(option.dataset.minutes, 10));
    fill(end, pad(Math.floor(minutes / 60)) + ":" + pad(minutes % 60));
  }
  category.addEventListener("change", function () {
    var option = chosen();
    if (!option || !option.dataset.people) { return; }
    fill(people, option.dataset.people);
    fill(minPeople, option.dataset.minPeople);
    fillEnd();
  });
  start.addEventListener("change", fillEnd);
  [end, people, minPeople].forEach(function (input) {
    input.addEventListener("input", function () { input.dataset.auto = "0"; });
  });
})();

// Where: only the block of the chosen kind of place shows (the station list for a station, the map
// for a point). Tapping the map sets the point: the pixel is turned back into latitude and
// longitude with the map's Web Mercator zoom and offset (web/mapview.py build_place_map) and
// written into the coordinate fields (behind "Enter coordinates"); typing there moves the marker.
(function () {
  "use strict";
  var form = document.getElementById("demand-form");
  var block = document.getElementById("point-block");
  if (!form || !block) { return; }
  var blocks = form.querySelectorAll(".place-block");
  function showKind() {
    var checked = form.querySelector("input[name=location_kind]:checked");
    var kind = checked ? checked.value : "";
    Array.prototype.forEach.call(blocks, function (b) { b.hidden = b.dataset.kind !== kind; });
  }
  Array.prototype.forEach.call(form.querySelectorAll("input[name=location_kind]"), function (r) {
    r.addEventListener("change", showKind);
  });
  showKind();

  var svg = document.getElementById("point-map"), marker = document.getElementById("point-marker");
  var dot = marker.querySelector("circle"), said = document.getElementById("point-chosen");
  var lat = form.elements.lat, lon = form.elements.lon;
  var zoom = parseFloat(block.dataset.zoom), x0 = parseFloat(block.dataset.x0), y0 = parseFloat(block.dataset.y0);
  var width = parseFloat(block.dataset.width), height = parseFloat(block.dataset.height);
  var scale = 256 * Math.pow(2, zoom);

  function toPixel(la, lo) {
    var s = Math.sin(la * Math.PI / 180);
    return [(lo + 180) / 360 * scale - x0, (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * scale - y0];
  }
  function toPlace(x, y) {
    var lo = (x + x0) / scale * 360 - 180;
    var n = Math.PI * (1 - 2 * (y + y0) / scale);
    return [Math.atan(Math.sinh(n)) * 180 / Math.PI, lo];
  }
  function show() {
    var la = parseFloat(lat.value), lo = parseFloat(lon.value);
    if (!isFinite(la) || !isFinite(lo)) { marker.setAttribute("hidden", ""); return; }
    var p = toPixel(la, lo);
    dot.setAttribute("cx", p[0].toFixed(1));
    dot.setAttribute("cy", p[1].toFixed(1));
    marker.removeAttribute("hidden");
    said.textContent = (said.dataset.prefix || "") + la.toFixed(5) + ", " + lo.toFixed(5);
  }
  svg.addEventListener("click", function (event) {
    var box = svg.getBoundingClientRect();
    if (!box.width || !box.height) { return; }
    var x = (event.clientX - box.left) * width / box.width, y = (event.clientY - box.top) * height / box.height;
    var place = toPlace(x, y);
    lat.value = place[0].toFixed(5);
    lon.value = place[1].toFixed(5);
    show();
  });
  [lat, lon].forEach(function (input) { input.addEventListener("input", show); });
})();
