// supportlah console: the CSRF header for htmx requests and multi-file upload with progress per file.
// Everything works as plain forms without this script, except the drag-and-drop upload.
(function () {
  "use strict";
  const csrf = document.body.dataset.csrf || "";

  document.body.addEventListener("htmx:configRequest", (event) => {
    event.detail.headers["X-CSRF-Token"] = csrf;
  });

  // A refresh replaces the region's elements: skip it while the keyboard focus is inside, so a
  // keyboard user tabbing through the inbox or a ticket's buttons does not lose their place.
  document.body.addEventListener("htmx:beforeRequest", (event) => {
    const element = event.detail.elt;
    if (element.hasAttribute("data-poll") && element.contains(document.activeElement)) event.preventDefault();
  });

  // Local times for <time datetime=...> (the server renders UTC).
  function localTimes(root) {
    for (const node of root.querySelectorAll("time[datetime]")) {
      const moment = new Date(node.getAttribute("datetime"));
      if (!isNaN(moment)) node.textContent = moment.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
    }
  }
  localTimes(document);
  document.body.addEventListener("htmx:afterSwap", (event) => localTimes(event.target));

  const zone = document.getElementById("dropzone");
  if (!zone) return;
  const input = document.getElementById("upload-files");
  const list = document.getElementById("upload-progress");

  function upload(file) {
    const item = document.createElement("li");
    const label = document.createElement("label");
    const bar = document.createElement("progress");
    const status = document.createElement("span");
    const id = `progress-${Math.random().toString(36).slice(2)}`;
    bar.id = id;
    bar.max = 100;
    bar.value = 0;
    label.htmlFor = id;
    label.textContent = file.name;
    status.className = "upload-status";
    status.setAttribute("role", "status");
    item.append(label, bar, status);
    list.append(item);
    const body = new FormData();
    body.append("file", file, file.name);
    const request = new XMLHttpRequest();
    request.open("POST", "/console/knowledge/upload");
    request.setRequestHeader("X-CSRF-Token", csrf);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) bar.value = Math.round((event.loaded / event.total) * 90);
    });
    return new Promise((resolve) => {
      request.addEventListener("loadend", () => {
        let answer = {};
        try { answer = JSON.parse(request.responseText || "{}"); } catch (error) { answer = {}; }
        bar.value = 100;
        const ok = request.status >= 200 && request.status < 300;
        status.textContent = ok ? ` ${answer.status}: ${answer.chunks} chunks` : ` failed: ${answer.error || request.status}`;
        item.dataset.state = ok ? "done" : "failed";
        resolve(ok);
      });
      request.send(body);
    });
  }

  async function uploadAll(files) {
    await Promise.all(Array.from(files).map(upload));
    const table = document.getElementById("documents");
    if (table && window.htmx) window.htmx.ajax("GET", "/console/knowledge/documents", { target: "#documents", swap: "outerHTML" });
  }

  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    uploadAll(event.dataTransfer.files);
  });
  input.addEventListener("change", () => { uploadAll(input.files); input.value = ""; });
})();
