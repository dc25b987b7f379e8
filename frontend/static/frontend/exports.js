// Poll the export jobs that are queued or running and update their rows (status,
// progress, size, checksum, download link) until each is done or failed. Plain JS.
(function () {
  "use strict";

  const POLL_MS = 1000;

  // The export form: only the chosen format's options are shown and sent (a disabled
  // fieldset's controls are not submitted). Without this script every option shows.
  const form = document.querySelector("form.export-form");
  if (form) {
    const format = form.querySelector("select[name=format]");
    const choose = () => {
      for (const fieldset of form.querySelectorAll("fieldset[data-formats]")) {
        const applies = fieldset.dataset.formats.split(" ").includes(format.value);
        fieldset.disabled = !applies;
        fieldset.hidden = !applies;
      }
      // what the chosen format would leave out (datasets.card.export_warnings)
      for (const warning of form.querySelectorAll(".export-warning[data-formats]")) {
        warning.hidden = !warning.dataset.formats.split(" ").includes(format.value);
      }
    };
    format.addEventListener("change", choose);
    choose();
  }

  const table = document.querySelector("table.exports");
  if (!table) return;
  const template = table.dataset.poll;

  function pending() {
    return Array.from(table.querySelectorAll("tr[data-export]")).filter((row) =>
      ["queued", "running"].includes(row.dataset.status),
    );
  }

  function show(row, job) {
    row.dataset.status = job.status;
    row.querySelector(".status").textContent = job.status;
    const bar = row.querySelector("progress");
    bar.max = job.progress.total || 1;
    bar.value = job.progress.done;
    row.querySelector(".count").textContent = job.progress.done + "/" + job.progress.total;
    if (job.sha256) row.querySelector(".sha").textContent = job.sha256.slice(0, 16);
    if (job.size) row.querySelector(".size").textContent = (job.size / 1024 / 1024).toFixed(1) + " MB";
    const action = row.querySelector(".action");
    action.replaceChildren();
    if (job.status === "done" && job.download) {
      const link = document.createElement("a");
      link.className = "button";
      link.href = job.download;
      link.textContent = "Download";
      action.append(link);
    } else if (job.status === "failed") {
      const error = document.createElement("span");
      error.className = "error";
      error.textContent = job.error;
      action.append(error);
    }
  }

  async function poll() {
    const rows = pending();
    if (!rows.length) return;
    for (const row of rows) {
      try {
        const response = await fetch(template.replace("00000000-0000-0000-0000-000000000000", row.dataset.export), {
          headers: { Accept: "application/json" },
          credentials: "same-origin",
        });
        if (response.ok) show(row, await response.json());
      } catch (err) {
        // A dropped poll is retried on the next tick.
      }
    }
    setTimeout(poll, POLL_MS);
  }

  setTimeout(poll, POLL_MS);
})();
