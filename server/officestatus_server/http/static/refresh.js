// Refreshes the numbers on the page every 30 seconds (the page works without it).
"use strict";
(function () {
  var fields = document.querySelectorAll("[data-field]");
  if (!fields.length) { return; }
  function refresh() {
    fetch("/status.json", { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        return response.ok && type.indexOf("application/json") === 0 ? response.json() : null;
      })
      .then(function (numbers) {
        if (!numbers) { return; }
        fields.forEach(function (element) {
          var name = element.getAttribute("data-field");
          if (name === "seats_total" && numbers.unlimited) { return; }
          if (numbers[name] !== undefined && numbers[name] !== null) {
            element.textContent = String(numbers[name]);
          }
        });
      })
      .catch(function () { /* the numbers stay as they are */ });
  }
  window.setInterval(refresh, 30000);
})();
