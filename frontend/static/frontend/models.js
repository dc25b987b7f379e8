// The Models page while a training job, a pre-annotation run or a triage run is queued or running:
// reload every few seconds to show its progress, but
// not while a form on the page is being filled in (a reload would lose what was typed or chosen).
(function () {
  "use strict";
  const note = document.querySelector("[data-refresh]");
  if (!note) return;
  const seconds = Number(note.dataset.refresh) || 5;
  let touched = false;
  const touch = (event) => {
    if (touched || !event.target.closest || !event.target.closest("form")) return;
    touched = true;
    note.textContent = "Refreshing is paused while you fill in a form; reload the page to see the progress.";
  };
  document.addEventListener("input", touch);
  document.addEventListener("change", touch);
  const tick = () => {
    const active = document.activeElement;
    const typing = active && active.matches && active.matches("form input, form select, form textarea");
    if (!touched && !typing) window.location.reload();
    else window.setTimeout(tick, seconds * 1000);
  };
  window.setTimeout(tick, seconds * 1000);
})();
