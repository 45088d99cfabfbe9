// Shows only the fields the chosen category needs (the server enforces the same rules).
(function () {
  "use strict";
  var form = document.getElementById("complaint-form");
  var rulesNode = document.getElementById("category-rules");
  if (!form || !rulesNode) return;
  var rules = JSON.parse(rulesNode.textContent);
  var category = form.querySelector("[name=category]");
  var kind = form.querySelector("[name=kind]");
  var orderCard = document.getElementById("order-data");

  function apply() {
    var fields = rules[category.value] || {};
    var isComplaint = kind.value === "complaint";
    var visible = 0;
    ["order_number", "purchase_date", "amount", "phone"].forEach(function (name) {
      var box = form.querySelector('[data-field="' + name + '"]');
      if (!box) return;
      var rule = category.value ? (fields[name] || "optional") : "optional";
      if (rule === "required" && !isComplaint) rule = "optional";
      box.hidden = rule === "hidden";
      if (!box.hidden && name !== "phone") visible += 1;
      box.querySelector('[data-when="required"]').hidden = rule !== "required";
      box.querySelector('[data-when="optional"]').hidden = rule !== "optional";
      var input = box.querySelector("input");
      if (input) input.setAttribute("aria-required", rule === "required" ? "true" : "false");
    });
    orderCard.hidden = visible === 0;
    var desired = form.querySelector('[data-field="desired_resolution"]');
    if (desired) {
      desired.querySelector('[data-when="required"]').hidden = !isComplaint;
      desired.querySelector('[data-when="optional"]').hidden = isComplaint;
    }
  }
  category.addEventListener("change", apply);
  kind.addEventListener("change", apply);
  apply();
})();
