// Resume records of the upload page (upload.js), kept as tus-js-client keeps its
// "fingerprint + URL storage": one localStorage entry per unfinished upload, {url, batch, time},
// under a key made from the file's path, size and lastModified and the project. Nothing read
// from the file's content goes in, and nothing that names it in the clear: the key is a
// SHA-256 salted per user by the server, so another user of the browser finds no record.
(function () {
  "use strict";

  const PREFIX = "workbench.upload-resume.";

  // options: {salt, project, expiryMs (a record untouched this long is dropped),
  //           minSize (smaller files are not remembered)}.
  window.uploadResumeRecords = function (options) {
    function store() {
      try {
        return window.localStorage; // throws where storage is disabled
      } catch (err) {
        return null;
      }
    }

    // The record's key, or null when this file is not remembered: a file of one chunk costs
    // nothing to send again (and a folder's many small files would collide), and without
    // crypto.subtle (a page not served over https or from localhost) no digest can be made.
    async function key(file) {
      if (file.size < options.minSize || !store() || !(window.crypto && crypto.subtle)) return null;
      const text = [options.salt, options.project, file.webkitRelativePath || file.name,
                    file.size, file.lastModified].join("\n");
      const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
      return PREFIX + Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
    }

    function read(id) {
      let record = null;
      try {
        record = JSON.parse(store().getItem(id));
      } catch (err) {
        record = null;
      }
      const fresh = record && typeof record.url === "string" && Date.now() - Number(record.time) < options.expiryMs;
      if (fresh && new URL(record.url, location.href).origin === location.origin) return record;
      drop(id);
      return null;
    }

    function write(id, record) {
      if (!id) return;
      try {
        store().setItem(id, JSON.stringify({ ...record, time: Date.now() }));
      } catch (err) {
        // Storage full or refused: the upload goes on, it just cannot be resumed after a reload.
      }
    }

    function drop(id) {
      if (id && store()) store().removeItem(id);
    }

    // Records past the server's expiry are dropped whenever the page opens.
    function sweep() {
      const s = store();
      if (!s) return;
      const ids = [];
      for (let i = 0; i < s.length; i++) if (s.key(i).startsWith(PREFIX)) ids.push(s.key(i));
      for (const id of ids) read(id);
    }

    return { key, read, write, drop, sweep };
  };
})();
