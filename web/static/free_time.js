// The free-time picker (templates/_time_rows.html): add and remove weekday/time and date rows.
// The rows are plain form fields; without this script the page keeps working with its spare rows.
(function () {
  "use strict";

  function clear(row) {
    row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
    row.querySelectorAll("select").forEach(function (select) { select.selectedIndex = 0; });
  }

  function wire(row, list) {
    var remove = row.querySelector(".remove-row");
    if (!remove) { return; }
    remove.hidden = false;
    remove.addEventListener("click", function () {
      if (list.children.length > 1) {
        row.remove();
      } else {
        clear(row);
      }
    });
  }

  document.querySelectorAll("[data-time-rows]").forEach(function (box) {
    var list = box.querySelector("[data-rows]");
    var template = box.querySelector("template[data-row-template]");
    var add = box.querySelector(".add-row");
    if (!list || !template || !add) { return; }
    Array.prototype.forEach.call(list.children, function (row) { wire(row, list); });
    add.hidden = false;
    add.addEventListener("click", function () {
      var row = template.content.firstElementChild.cloneNode(true);
      list.appendChild(row);
      wire(row, list);
      var first = row.querySelector("select, input");
      if (first) { first.focus(); }
    });
  });
}());
