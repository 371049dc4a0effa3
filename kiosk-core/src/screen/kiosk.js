// The kiosk page's script, inlined into the page by screen/mod.rs with the string catalogue in
// place of the STRINGS marker. It must run on Chrome 58 (a factory Android System WebView):
// ES2017 at most, and no DOM method newer than that (e.g. no `replaceChildren`, Chrome 86).
// scripts/lint-page.sh checks it with eslint.
"use strict";
const T = /*STRINGS*/{};
const base = location.pathname.replace(/\/$/, "");
let view = null, timer = null, staffOpen = false;

document.getElementById("lost").textContent = T.connection_lost || "";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick") node.addEventListener("click", v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

/** Removes every child of `node` (what `replaceChildren()` does from Chrome 86). */
function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

function act(body) {
  fetch(base + "/action", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
    .catch(() => {});
}

function pad(n) { return String(n).padStart(2, "0"); }
function elapsed(since) {
  const s = Math.max(0, Math.floor((Date.now() - since) / 1000));
  const h = Math.floor(s / 3600);
  return (h ? h + ":" : "") + pad(Math.floor(s / 60) % 60) + ":" + pad(s % 60);
}

function render() {
  const main = document.getElementById("main");
  const footer = document.getElementById("footer");
  clearInterval(timer);
  clear(main);
  clear(footer);
  if (!view) return;
  const s = view.screen;
  switch (s.name) {
    case "enrolment":
    case "pairing": {
      const enrol = s.name === "enrolment";
      main.append(
        el("h1", {}, enrol ? T.enrolment_title : T.pairing_title),
        el("div", { class: "code", id: "code" }, s.code || T.waiting_for_code),
        el("p", { class: "hint" }, enrol ? T.enrolment_hint : T.pairing_hint));
      break;
    }
    case "idle":
      main.append(
        el("div", { class: "section" }, T.specialist),
        el("div", { class: "name", id: "specialist" }, s.specialist),
        el("div", { class: "section" }, s.section),
        el("button", { class: "primary", id: "start", onclick: () => act({ action: "start" }) }, T.start_visit));
      break;
    case "service_choice": {
      const list = el("div", { class: "services" });
      for (const service of s.services) {
        list.append(el("button", { "data-service": String(service.id),
          onclick: () => act({ action: "choose_service", service_id: service.id }) }, service.name));
      }
      main.append(el("h1", {}, T.choose_service), list,
        el("button", { class: "secondary", id: "cancel", onclick: () => act({ action: "cancel" }) }, T.cancel));
      break;
    }
    case "in_visit": {
      const clock = el("div", { class: "elapsed", id: "elapsed" }, elapsed(s.started_at_ms));
      timer = setInterval(() => { clock.textContent = elapsed(s.started_at_ms); }, 500);
      main.append(
        el("h1", {}, el("span", { class: "rec" }), T.visit_in_progress),
        el("div", { class: "section" }, s.service),
        clock,
        el("button", { class: "primary", id: "end", onclick: () => act({ action: "end" }) }, T.end_visit));
      break;
    }
    case "rating": {
      const row = el("div", { class: "ratings" });
      s.buttons.forEach((key, position) => {
        row.append(el("button", { class: key, "data-rating-position": String(position),
          onclick: () => act({ action: "rate", position }) }, T[key]));
      });
      main.append(el("h1", {}, T.rate_prompt), row);
      break;
    }
    case "thanks":
      main.append(el("div", { class: "thanks", id: "thanks" }, T.thanks));
      if (s.feedback_qr) {
        main.append(el("div", { class: "feedback", id: "feedback" },
          el("h1", {}, T.feedback_heading),
          el("img", { id: "feedback-qr", src: s.feedback_qr, alt: T.feedback_heading }),
          el("p", { class: "hint" }, T.feedback_hint)));
      }
      break;
  }
  const notice = (T.recording_notice || "").replace("{days}", String(view.retention_days));
  footer.append(el("p", { id: "notice" }, notice));
  if (["idle", "pairing", "enrolment"].includes(s.name)) {
    footer.append(el("button", { class: "gear", id: "staff-open", "aria-label": T.staff_panel,
      onclick: () => { staffOpen = true; renderStaff(); } }, "⚙"));
  } else {
    staffOpen = false;
  }
  renderStaff();
}

function renderStaff() {
  const overlay = document.getElementById("staff");
  overlay.classList.toggle("open", staffOpen);
  if (!staffOpen || !view) return;
  const st = view.staff;
  const last = st.last_sync ? new Date(st.last_sync).toLocaleString(T.lang) : T.never;
  const rows = [
    [T.queue_length, st.queued, "queued"], [T.rejected, st.rejected, "rejected"],
    [T.recordings_pending, st.recordings_pending, "recordings"], [T.last_sync, last, "last-sync"],
    [T.network, st.online ? T.online : T.offline, "network"], [T.microphone, st.microphone, "microphone"],
  ];
  const table = el("table", {});
  for (const [label, value, id] of rows) table.append(el("tr", {}, el("td", {}, label), el("td", { id: "staff-" + id }, String(value))));
  const panel = document.getElementById("staff-panel");
  const buttons = el("div", { class: "actions" });
  if (st.paired) {
    buttons.append(el("button", { class: "danger", id: "end-session",
      onclick: () => { staffOpen = false; act({ action: "end_session" }); renderStaff(); } }, T.end_session));
  }
  buttons.append(el("button", { class: "secondary", id: "staff-close",
    onclick: () => { staffOpen = false; renderStaff(); } }, T.close));
  clear(panel);
  panel.append(el("h1", {}, T.staff_panel), table,
    ...st.notices.map((key) => el("p", { class: "notice" }, T[key] || key)), buttons);
}

function connect() {
  const source = new EventSource(base + "/events");
  let shown = "";
  source.onmessage = (message) => {
    document.getElementById("lost").style.display = "none";
    view = JSON.parse(message.data);
    // Redraw the screen only when it changed: a new sync time must not replace the buttons
    // under the visitor's finger.
    const screen = JSON.stringify(view.screen) + view.retention_days;
    if (screen !== shown) {
      shown = screen;
      render();
    } else {
      renderStaff();
    }
  };
  source.onerror = () => { document.getElementById("lost").style.display = "block"; };
}
connect();
