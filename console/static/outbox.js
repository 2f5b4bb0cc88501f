// The phone's outbox. A tap becomes an action with a command id made here, kept in IndexedDB, shown as waiting,
// and sent to /api/actions; the console passes the id on as the Idempotency-Key, so a resend happens once.
// Sending resumes when the network returns, when a page loads, and every half minute while anything waits.
"use strict";
(() => {
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
  document.addEventListener("submit", (event) => {
    // Sign-out: the pages this phone kept for the person go with them.
    if (event.target.matches && event.target.matches("form[action='/signout']") && navigator.serviceWorker) {
      if (navigator.serviceWorker.controller) navigator.serviceWorker.controller.postMessage("forget");
    }
  });
  const box = document.getElementById("outbox");
  if (!box || !window.indexedDB) return;
  const DB = "juwei-outbox";
  const STORE = "actions";
  const owner = box.dataset.owner;
  const words = { pending: box.dataset.tPending, done: box.dataset.tDone, conflict: box.dataset.tConflict };

  function commandId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    // Plain http on a LAN address is not a secure context: the same version-4 id from random bytes.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function run(mode, work) {
    return new Promise((resolve, reject) => {
      const opening = indexedDB.open(DB, 1);
      opening.onupgradeneeded = () => opening.result.createObjectStore(STORE, { keyPath: "command_id" });
      opening.onerror = () => reject(opening.error);
      opening.onsuccess = () => {
        const db = opening.result;
        const transaction = db.transaction(STORE, mode);
        const request = work(transaction.objectStore(STORE));
        transaction.oncomplete = () => { db.close(); resolve(request ? request.result : undefined); };
        transaction.onerror = transaction.onabort = () => { db.close(); reject(transaction.error); };
      };
    });
  }
  const list = async () => ((await run("readonly", (s) => s.getAll())) || [])
    .filter((a) => a.owner === owner).sort((a, b) => a.created - b.created);
  const save = (action) => run("readwrite", (s) => s.put(action));

  function showNetwork(up) {
    const note = document.getElementById("network");
    note.hidden = up;
    note.textContent = up ? "" : box.dataset.tOffline;
  }

  async function render() {
    const actions = await list();
    const shown = document.getElementById("outbox-list");
    shown.replaceChildren(...actions.map((action) => {
      const item = document.createElement("li");
      item.className = `outbox-item state-${action.status}`;
      item.dataset.command = action.command_id;
      item.dataset.status = action.status;
      item.dataset.key = action.key || "";
      const label = document.createElement("strong");
      label.textContent = action.label;
      const state = document.createElement("span");
      state.className = "state";
      state.textContent = words[action.status] || action.status;
      item.append(label, " ", state);
      if (action.detail) {
        const detail = document.createElement("p");
        detail.className = "detail";
        detail.textContent = action.detail;
        item.append(detail);
      }
      return item;
    }));
    document.getElementById("outbox-empty").hidden = actions.length > 0;
    // A task tapped here shows its state at once, and its buttons step aside while it waits or is done.
    for (const action of actions) {
      if (!action.key) continue;
      for (const task of document.querySelectorAll(`.task[data-key="${CSS.escape(action.key)}"]`)) {
        task.dataset.outbox = action.status;
        for (const button of task.querySelectorAll("button[data-action]")) button.disabled = action.status !== "conflict";
      }
    }
  }

  function problemText(problem) {
    if (!problem) return "";
    return [problem.title, problem.detail].filter(Boolean).join(": ");
  }

  // One send of one action; true when the console answered for good (done or conflict), false to try later.
  async function send(action) {
    let response;
    try {
      response = await fetch("/api/actions", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": box.dataset.csrf },
        body: JSON.stringify({ command_id: action.command_id, kind: action.kind, params: action.params }),
      });
    } catch (error) {
      showNetwork(false);
      return false;
    }
    showNetwork(true);
    let body = null;
    try { body = await response.json(); } catch (error) { body = null; }
    action.sends = (action.sends || 0) + 1;
    if (response.ok && body && body.status === "done") {
      action.status = "done";
      action.replayed = Boolean(body.replayed);
      action.detail = "";
    } else if (body && (body.status === "conflict" || body.status === "refused")) {
      action.status = "conflict";
      action.detail = problemText(body.problem);
    } else {
      action.detail = body ? problemText(body.problem) : "";
      await save(action);
      return false;
    }
    await save(action);
    return true;
  }

  let flushing = null;
  function flush() {
    if (!flushing) {
      flushing = (async () => {
        try {
          for (const action of await list()) {
            if (action.status !== "pending") continue;
            if (!(await send(action))) break;
            await render();
          }
        } finally {
          flushing = null;
          await render();
        }
      })();
    }
    return flushing;
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest && event.target.closest("button[data-action]");
    if (!button || button.disabled) return;
    const params = JSON.parse(button.dataset.params);
    // What the volunteer typed beside the button (e.g. the runner's id) goes with it.
    const place = button.closest(".task") || button.parentElement;
    for (const input of place.querySelectorAll("[data-param]")) {
      if (!input.value.trim()) { input.focus(); return; }
      params[input.dataset.param] = input.value.trim();
    }
    button.disabled = true;
    const action = {
      command_id: commandId(),
      kind: button.dataset.action,
      params,
      label: button.dataset.label,
      key: button.dataset.key || "",
      owner,
      status: "pending",
      detail: "",
      created: Date.now(),
    };
    await save(action);
    await render();
    if (button.dataset.repeat) button.disabled = false;
    flush();
  });

  window.addEventListener("online", () => { showNetwork(true); flush(); });
  window.addEventListener("offline", () => showNetwork(false));
  setInterval(() => { if (navigator.onLine) flush(); }, 30000);
  // What the tests and a curious volunteer can reach: the stored actions, and one send of one of them.
  window.juweiOutbox = { list, send, flush, render };
  render().then(() => { showNetwork(navigator.onLine); box.dataset.ready = "1"; return flush(); });
})();
