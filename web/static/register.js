// The registration form: show only the organizations serving the chosen community, and the
// guardian's fields only for a birth date under 18. Without JavaScript everything is shown and
// the server checks the same.
(function () {
  "use strict";
  var form = document.getElementById("register-form");
  if (!form) { return; }
  var home = document.getElementById("home_area");
  var born = form.querySelector("input[name=birth_date]");
  var guardian = document.getElementById("guardian");

  function filterOrganizations() {
    var id = home ? home.value : "";
    var shown = 0;
    form.querySelectorAll("[data-serves]").forEach(function (label) {
      var serves = (" " + label.getAttribute("data-serves") + " ").indexOf(" " + id + " ") >= 0;
      // Until a community is chosen no list is shown (all the district's organizations are too many).
      label.hidden = !id || !serves;
      if (label.hidden) { label.querySelector("input").checked = false; } else { shown += 1; }
    });
    var choose = document.getElementById("orgs-choose"), none = document.getElementById("orgs-none");
    if (choose) { choose.hidden = Boolean(id); }
    if (none) { none.hidden = !id || shown > 0; }
  }

  function toggleGuardian() {
    if (!guardian || !born) { return; }
    var value = born.value;
    if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) { guardian.hidden = false; return; }
    var b = new Date(value + "T00:00:00"), now = new Date();
    var age = now.getFullYear() - b.getFullYear();
    if (now.getMonth() < b.getMonth() || (now.getMonth() === b.getMonth() && now.getDate() < b.getDate())) { age -= 1; }
    guardian.hidden = age >= 18;
  }

  if (home) { home.addEventListener("change", filterOrganizations); filterOrganizations(); }
  if (born) { born.addEventListener("change", toggleGuardian); born.addEventListener("input", toggleGuardian); toggleGuardian(); }
}());
