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
