// Small behaviours shared by every page (kept out of the HTML so the CSP can forbid inline scripts).
(function () {
  "use strict";
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
})();
