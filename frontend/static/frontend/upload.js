// Upload DICOM files, folders and zip archives with a progress bar, then poll each
// batch until the server has processed it. Plain JS, no build.
//
// Each file goes up as a resumable upload (tus 1.0.0, anonymizer/tus.py) in chunks of
// CHUNK bytes: no request holds the server for long, and a dropped connection costs
// one chunk: the page asks the server for the offset (HEAD) and goes on from there.
// A closed page or a crashed browser costs no more: each upload of a file larger than a
// chunk is remembered (upload-resume.js), and picking the same file again resumes that
// upload from the offset the server holds.
// Large selections are split into several batches of bounded size.
(function () {
  "use strict";

  const MAX_FILES = 50;
  const MAX_BYTES = 100 * 1024 * 1024;
  const POLL_MS = 1000;
  const MAX_POLL_ERRORS = 5;
  const CHUNK = 4 * 1024 * 1024;
  const RETRY_MS = [500, 1000, 2000, 4000, 8000, 15000];
  const TUS = { "Tus-Resumable": "1.0.0" };
  const COUNTS = ["done", "duplicate", "quarantined", "rejected", "pending"];

  const form = document.getElementById("upload-form");
  if (!form) return;
  const el = (id) => document.getElementById(id);
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const records = window.uploadResumeRecords({
    salt: form.dataset.resumeSalt,
    project: form.dataset.project,
    // The server deletes an upload untouched for this long; a record older than that is stale.
    expiryMs: (Number(form.dataset.expiryHours) || 24) * 3600 * 1000,
    minSize: CHUNK + 1,
  });
  let chosen = [];
  let uploading = false;

  function urlFor(template, id) {
    return template.replace(form.dataset.idSlot, id);
  }

  function formatBytes(n) {
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KB";
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }

  function sizeOf(files) {
    return files.reduce((n, f) => n + f.size, 0);
  }

  // Hidden files (.DS_Store, ._foo) are never DICOM; folders are full of them.
  function isHidden(file) {
    const path = file.webkitRelativePath || file.name;
    return path.split("/").some((part) => part.startsWith("."));
  }

  function addFiles(files) {
    for (const f of files) if (!isHidden(f)) chosen.push(f);
    showSelection();
  }

  function showSelection() {
    el("selection").textContent = chosen.length
      ? chosen.length + " file(s), " + formatBytes(sizeOf(chosen)) + " chosen."
      : "No files chosen.";
    el("upload-start").disabled = uploading || chosen.length === 0;
    el("upload-clear").disabled = uploading || chosen.length === 0;
  }

  function showError(text) {
    const box = el("upload-error");
    box.hidden = !text;
    box.textContent = text || "";
  }

  function setProgressPhase(text) {
    el("upload-phase").textContent = text;
  }

  function setProgress(fraction, phase) {
    const pct = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
    el("upload-progress").value = pct;
    el("upload-percent").textContent = pct + "%";
    if (phase !== undefined) el("upload-phase").textContent = phase;
  }

  // Groups of at most MAX_FILES files and MAX_BYTES bytes (a larger file goes alone).
  function groups(files) {
    const out = [];
    let current = [];
    let bytes = 0;
    for (const f of files) {
      if (current.length && (current.length >= MAX_FILES || bytes + f.size > MAX_BYTES)) {
        out.push(current);
        current = [];
        bytes = 0;
      }
      current.push(f);
      bytes += f.size;
    }
    if (current.length) out.push(current);
    return out;
  }

  function errorMessage(xhr) {
    const body = xhr.response;
    if (body && body.message) return body.message;
    return "the server answered " + xhr.status + ".";
  }

  // One request; resolves with the XHR whatever its status, rejects only when the
  // connection failed (the caller decides whether to resume).
  function request(method, url, headers, body, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("X-CSRFToken", csrf);
      xhr.setRequestHeader("Accept", "application/json");
      for (const [name, value] of Object.entries({ ...TUS, ...headers })) xhr.setRequestHeader(name, value);
      xhr.responseType = "json";
      if (onProgress) xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded));
      xhr.addEventListener("load", () => resolve(xhr));
      xhr.addEventListener("error", () => reject(new Error("the connection failed during the upload.")));
      xhr.addEventListener("abort", () => reject(new Error("the upload was interrupted.")));
      xhr.send(body === undefined ? null : body);
    });
  }

  function b64(text) {
    let binary = "";
    for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
    return btoa(binary);
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // The offset the server holds (tus HEAD); null when it cannot be asked right now.
  async function serverOffset(url) {
    try {
      const xhr = await request("HEAD", url, {});
      return xhr.status === 200 ? Number(xhr.getResponseHeader("Upload-Offset")) : null;
    } catch (err) {
      return null;
    }
  }

  // What is known of an earlier upload of this file: {key} alone when there is none to go on
  // with, {key, url, batch, offset} when the server still holds it. A record the server no
  // longer knows (404/410: expired, terminated, another project's) is dropped.
  async function resumeInfo(file) {
    const key = await records.key(file);
    const record = key && records.read(key);
    if (!record) return { key };
    let xhr = null;
    try {
      xhr = await request("HEAD", record.url, {});
    } catch (err) {
      return { key }; // the server cannot be asked now: keep the record for a later try
    }
    const length = Number(xhr.getResponseHeader("Upload-Length"));
    if (xhr.status === 200 && length === file.size) {
      return { key, url: record.url, batch: record.batch, offset: Number(xhr.getResponseHeader("Upload-Offset")) };
    }
    if (xhr.status === 404 || xhr.status === 410 || xhr.status === 200) records.drop(key);
    return { key };
  }

  function showResumed(file, offset) {
    const box = el("upload-resumed");
    box.textContent = "Resuming an earlier upload of this file: " + (file.webkitRelativePath || file.name) +
      ", from " + formatBytes(offset) + " of " + formatBytes(file.size) + ".";
    box.hidden = false;
  }

  // Send one file as a resumable upload into the batch (a new one when batchId is null), or
  // go on with the earlier upload in `resumed`; resolves with the batch id the file is in.
  // onProgress(bytes of this file stored or in flight).
  async function sendFile(file, batchId, onProgress, resumed) {
    let url = resumed.url;
    let batch = resumed.batch;
    let offset = resumed.offset || 0;
    if (url) {
      showResumed(file, offset);
    } else {
      const meta = "filename " + b64(file.name) + (batchId ? ",batch " + b64(batchId) : "");
      const created = await request("POST", form.dataset.uploads, {
        "Upload-Length": String(file.size),
        "Upload-Metadata": meta,
      });
      if (created.status !== 201) throw new Error(errorMessage(created));
      url = created.response.location;
      batch = created.response.batch;
      records.write(resumed.key, { url, batch });
    }
    onProgress(offset);
    let failures = 0;
    while (offset < file.size) {
      let xhr = null;
      try {
        xhr = await request(
          "PATCH",
          url,
          { "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" },
          file.slice(offset, offset + CHUNK),
          (loaded) => onProgress(offset + loaded),
        );
      } catch (err) {
        xhr = null; // a dropped connection: resume below
      }
      if (xhr && xhr.status === 204) {
        offset = Number(xhr.getResponseHeader("Upload-Offset"));
        failures = 0;
        records.write(resumed.key, { url, batch }); // the server's expiry counts from the last chunk
        onProgress(offset);
        continue;
      }
      if (xhr && (xhr.status === 404 || xhr.status === 410)) records.drop(resumed.key); // gone for good
      if (xhr && xhr.status !== 409 && xhr.status < 500) throw new Error(errorMessage(xhr));
      if (failures >= RETRY_MS.length) throw new Error(xhr ? errorMessage(xhr) : "the connection kept failing.");
      setProgressPhase("Connection lost; resuming…");
      await sleep(RETRY_MS[failures++]);
      const held = await serverOffset(url);
      if (held !== null) offset = held;
      onProgress(offset);
    }
    records.drop(resumed.key);
    return batch;
  }

  // Files of one chunk or less in one multipart request (sealed as it arrives, like a chunk):
  // a folder of small files costs one request, not two per file. Resolves with the batch.
  function postSmall(group, onProgress) {
    return new Promise((resolve, reject) => {
      const body = new FormData();
      body.append("source", "upload");
      for (const f of group) body.append("file", f, f.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.dataset.endpoint);
      xhr.setRequestHeader("X-CSRFToken", csrf);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.responseType = "json";
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) onProgress(e.loaded);
      });
      xhr.addEventListener("load", () => (xhr.status === 202 ? resolve(xhr.response) : reject(new Error(errorMessage(xhr)))));
      xhr.addEventListener("error", () => reject(new Error("the connection failed during the upload.")));
      xhr.send(body);
    });
  }

  // Every file of a group into one batch (the batch of an upload resumed in the group, so that
  // the files stay together); resolves with [{batch, files}], one entry per batch filled.
  // Without a resumed upload, the small files go first in one request and open the batch; the
  // large ones follow as resumable uploads into it.
  async function post(group, resumes, onProgress) {
    const first = group.find((f) => resumes.get(f).url);
    let batchId = first ? resumes.get(first).batch : null;
    const filled = new Map();
    const heldBy = (f) => resumes.get(f).offset || 0;
    let ahead = group.reduce((n, f) => n + heldBy(f), 0); // stored bytes of files not sent yet
    let done = 0;
    const small = first ? [] : group.filter((f) => f.size <= CHUNK);
    if (small.length) {
      const bytes = sizeOf(small);
      const batch = await postSmall(small, (sent) => onProgress(Math.min(sent, bytes) / (sizeOf(group) || 1)));
      batchId = batch.id;
      filled.set(batchId, small.length);
      done += bytes;
    }
    for (const f of group.filter((g) => !small.includes(g))) {
      ahead -= heldBy(f);
      const progress = (bytes) => onProgress((done + bytes + ahead) / (sizeOf(group) || 1));
      const into = await sendFile(f, batchId, progress, resumes.get(f));
      batchId = batchId || into;
      filled.set(into, (filled.get(into) || 0) + 1);
      done += f.size;
    }
    return Array.from(filled, ([id, files]) => ({ batch: { id, state: "processing" }, files }));
  }

  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function addBatchCard(batch, n, of, fileCount) {
    const card = make("section", "card batch");
    card.dataset.batch = batch.id;
    const title = make("h2", "", "Batch " + n + " of " + of + " · " + fileCount + " file(s) sent · ");
    title.appendChild(make("span", "batch-state", batch.state));
    card.appendChild(title);
    const counts = make("ul", "counts");
    for (const key of COUNTS) {
      const item = make("li");
      item.dataset.count = key;
      item.appendChild(make("b", "", "0"));
      item.appendChild(document.createTextNode(" " + key));
      counts.appendChild(item);
    }
    card.appendChild(counts);
    const table = make("table", "items");
    const head = make("tr");
    for (const label of ["#", "Status", "Reason"]) head.appendChild(make("th", "", label));
    table.appendChild(make("thead")).appendChild(head);
    table.appendChild(make("tbody"));
    card.appendChild(table);
    const link = make("a", "batch-link", "Open the batch page");
    link.href = urlFor(form.dataset.batchPage, batch.id);
    card.appendChild(make("p")).appendChild(link);
    el("batches").appendChild(card);
    return card;
  }

  function renderBatch(card, batch) {
    const c = batch.counts;
    const values = { done: c.done, duplicate: c.duplicate, quarantined: c.quarantined, rejected: c.rejected,
                     pending: (c.received || 0) + (c.processing || 0) };
    for (const key of COUNTS) card.querySelector('[data-count="' + key + '"] b').textContent = values[key] || 0;
    card.querySelector(".batch-state").textContent = batch.state;
    card.dataset.state = batch.state;
    const rows = card.querySelector("tbody");
    rows.replaceChildren();
    for (const item of batch.items) {
      const row = make("tr", "status-" + item.status);
      row.appendChild(make("td", "", String(item.index)));
      row.appendChild(make("td", "", item.status));
      row.appendChild(make("td", "", item.reason_code ? item.reason_code + ": " + item.reason : ""));
      rows.appendChild(row);
    }
  }

  function poll(id, card, errors) {
    fetch(urlFor(form.dataset.batchApi, id), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error("the server answered " + r.status + "."))))
      .then((batch) => {
        renderBatch(card, batch);
        if (batch.state === "processing") setTimeout(() => poll(id, card, 0), POLL_MS);
      })
      .catch((err) => {
        card.querySelector(".batch-state").textContent = "status unknown: " + err.message;
        if (errors < MAX_POLL_ERRORS) setTimeout(() => poll(id, card, errors + 1), POLL_MS * 5);
      });
  }

  async function uploadAll(event) {
    event.preventDefault();
    const files = chosen;
    if (!files.length) return;
    chosen = [];
    uploading = true;
    showSelection();
    showError("");
    const parts = groups(files);
    const total = sizeOf(files) || 1;
    const failures = [];
    let sent = 0;
    el("upload-resumed").hidden = true;
    // Asked before the bar shows, so that a resumed upload's bar starts where it stopped.
    const resumes = new Map();
    for (const f of files) resumes.set(f, await resumeInfo(f));
    el("progress-box").hidden = false;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      const bytes = sizeOf(part);
      const held = part.reduce((n, f) => n + (resumes.get(f).offset || 0), 0);
      const phase = "Sending batch " + (i + 1) + " of " + parts.length + "…";
      setProgress((sent + held) / total, phase);
      try {
        const filled = await post(part, resumes, (fraction) => setProgress((sent + fraction * bytes) / total, phase));
        for (const { batch, files: count } of filled) {
          poll(batch.id, addBatchCard(batch, i + 1, parts.length, count), 0);
        }
      } catch (err) {
        failures.push("Batch " + (i + 1) + " (" + part.length + " file(s)) was not accepted: " + err.message);
      }
      sent += bytes;
    }
    setProgress(1, failures.length ? "Finished with errors." : "Upload finished; processing is shown below.");
    showError(failures.join(" "));
    uploading = false;
    showSelection();
  }

  // Files of a dropped entry; folders are walked recursively.
  async function filesOf(entry) {
    if (entry.isFile) return [await new Promise((resolve, reject) => entry.file(resolve, reject))];
    const reader = entry.createReader();
    const out = [];
    for (;;) {
      const children = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (!children.length) return out;
      for (const child of children) out.push(...(await filesOf(child)));
    }
  }

  async function onDrop(event) {
    // Entries must be taken before the first await: the drop data expires with the event.
    const entries = Array.from(event.dataTransfer.items || [])
      .map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null))
      .filter(Boolean);
    if (!entries.length) return addFiles(event.dataTransfer.files);
    try {
      for (const entry of entries) addFiles(await filesOf(entry));
    } catch (err) {
      showError("Some dropped files could not be read: " + err.message);
    }
  }

  for (const id of ["pick-files", "pick-folder"]) {
    el(id).addEventListener("change", (e) => {
      addFiles(Array.from(e.target.files));
      e.target.value = "";
    });
  }
  const zone = el("drop-zone");
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (e) => {
      e.preventDefault();
      zone.classList.add("over");
    });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    onDrop(e);
  });
  el("upload-clear").addEventListener("click", () => {
    chosen = [];
    showSelection();
  });
  form.addEventListener("submit", uploadAll);
  records.sweep();
  window.addEventListener("beforeunload", (e) => {
    if (uploading) e.preventDefault();
  });
})();
