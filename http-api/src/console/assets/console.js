// Sairex SMS console: small enhancements; every page works without them.
"use strict";
(function () {
  const csrf = document.body.dataset.csrf || "";

  // Live preview of encoding, segments and cost, computed by the server's own rules.
  document.querySelectorAll("textarea[data-preview]").forEach((area) => {
    const out = document.getElementById(area.dataset.preview);
    let timer = null;
    const update = () => {
      const body = new URLSearchParams({ body: area.value, _csrf: csrf });
      fetch("/console/preview", { method: "POST", body, headers: { "X-CSRF-Token": csrf } })
        .then((r) => r.text())
        .then((t) => { out.textContent = t; })
        .catch(() => {});
    };
    area.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(update, 250); });
    if (area.value) update();
  });

  // Copy buttons for secrets shown once.
  document.querySelectorAll("button[data-copy]").forEach((b) => {
    b.addEventListener("click", () => {
      const el = document.getElementById(b.dataset.copy);
      if (el && navigator.clipboard) navigator.clipboard.writeText(el.textContent.trim());
      b.textContent = "Copied";
    });
  });

  // CSV uploads with a progress bar: sent with XMLHttpRequest (whose upload reports its
  // progress), the answer's page shown in place of this one's content.
  document.querySelectorAll("form[data-progress]").forEach((form) => {
    const bar = document.getElementById(form.dataset.progress);
    if (!bar || !window.XMLHttpRequest || !window.FormData) return;
    const box = bar.parentElement;
    const note = box.querySelector(".hint");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      box.hidden = false;
      form.querySelectorAll("button").forEach((b) => { b.disabled = true; });
      xhr.upload.addEventListener("progress", (p) => {
        if (!p.lengthComputable) return;
        const pct = Math.floor((p.loaded * 100) / p.total);
        bar.value = pct;
        bar.textContent = pct + "%";
        if (note) note.textContent = pct + "% of " + Math.ceil(p.total / 1024) + " KiB sent";
      });
      xhr.upload.addEventListener("load", () => {
        bar.value = 100;
        if (note) note.textContent = "Sent; finishing the import…";
      });
      xhr.addEventListener("load", () => {
        const page = new DOMParser().parseFromString(xhr.responseText, "text/html");
        const main = page.getElementById("main");
        const here = document.getElementById("main");
        if (main && here) {
          here.innerHTML = main.innerHTML;
          here.dataset.uploadProgress = String(bar.value);
          here.dataset.uploadStatus = String(xhr.status);
          here.focus();
        } else {
          form.submit();
        }
      });
      xhr.addEventListener("error", () => {
        if (note) note.textContent = "The upload failed; check the connection and try again.";
        form.querySelectorAll("button").forEach((b) => { b.disabled = false; });
      });
      xhr.send(new FormData(form));
    });
  });

  // Parts that reload themselves (the operator view's binds and queues).
  document.querySelectorAll("[data-refresh]").forEach((el) => {
    const every = Math.max(1, Number(el.dataset.every) || 5) * 1000;
    const reload = () => {
      fetch(el.dataset.refresh, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
        .then((html) => {
          const next = new DOMParser().parseFromString(html, "text/html").getElementById(el.id);
          if (next) el.innerHTML = next.innerHTML;
        })
        .catch(() => {})
        .finally(() => setTimeout(reload, every));
    };
    setTimeout(reload, every);
  });

  // Live updates from the organization's event stream.
  if (!csrf || !window.EventSource) return;
  const es = new EventSource("/console/events");
  const toast = document.getElementById("toast");
  let unread = 0;
  const setPill = (el, status) => {
    el.textContent = status;
    el.className = "pill " + String(status).toLowerCase();
  };
  // Changes made before the stream connected: read the current status of every pill once.
  es.addEventListener("open", () => {
    document.querySelectorAll("[data-message-id]").forEach((el) => {
      if (["DELIVERED", "FAILED", "REJECTED", "EXPIRED", "RECEIVED"].includes(el.textContent)) return;
      fetch("/console/messages/" + el.dataset.messageId + "/status")
        .then((r) => (r.ok ? r.text() : null))
        .then((t) => { if (t) setPill(el, t); })
        .catch(() => {});
    });
  });
  es.addEventListener("message.status", (e) => {
    const d = JSON.parse(e.data);
    document.querySelectorAll('[data-message-id="' + d.messageId + '"]').forEach((el) => setPill(el, d.status));
  });
  es.addEventListener("message.inbound", (e) => {
    const d = JSON.parse(e.data);
    unread += 1;
    const badge = document.getElementById("inbox-badge");
    if (badge) { badge.hidden = false; badge.textContent = String(unread); }
    if (toast) {
      toast.textContent = "New message from " + (d.from || "") + ": " + (d.body || "").slice(0, 80);
      setTimeout(() => { toast.textContent = ""; }, 6000);
    }
    const thread = document.querySelector(".thread[data-phone]");
    if (thread && thread.dataset.phone === d.from) {
      const div = document.createElement("div");
      div.className = "bubble in";
      div.dir = "auto";
      div.textContent = d.body || "";
      thread.prepend(div);
    }
  });
})();
