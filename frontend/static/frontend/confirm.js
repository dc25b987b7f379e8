// Ask before submitting any form that carries data-confirm (a destructive action).
(function () {
  "use strict";
  document.addEventListener("submit", (event) => {
    const message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });
})();
