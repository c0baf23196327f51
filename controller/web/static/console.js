// Operator console: live fleet updates over server-sent events and command buttons over the REST API.
// Plain browser JavaScript, no build step.
"use strict";
const Console = (() => {
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const words = () => JSON.parse((document.getElementById("i18n") || {}).textContent || "{}");
  const fmt = (ts) => {
    if (!ts) return "";
    const d = new Date(ts * 1000), p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  };

  function stream(handlers) {
    const es = new EventSource("/events");
    const live = document.getElementById("live");
    const w = words();
    es.onopen = () => { if (live) { live.textContent = w.live || "Live"; live.classList.remove("down"); } };
    es.onerror = () => { if (live) { live.textContent = w.reconnecting || "…"; live.classList.add("down"); } };
    for (const [name, fn] of Object.entries(handlers)) {
      es.addEventListener(name, (e) => fn(JSON.parse(e.data)));
    }
    es.addEventListener("alarms", (e) => setAlarmCount(JSON.parse(e.data).active));
    es.addEventListener("reload", () => location.reload());
    return es;
  }

  function setAlarmCount(n) {
    const el = document.getElementById("alarm-count");
    if (el) el.textContent = n ? String(n) : "";
  }

  function updateRow(k) {
    const w = words();
    const row = document.getElementById("k-" + k.kiosk_id);
    if (!row) return;
    row.className = "st-" + k.status;
    row.querySelector(".status").innerHTML = "";
    const badge = document.createElement("span");
    badge.className = "badge st-" + k.status;
    badge.textContent = w[k.status] || k.status;
    row.querySelector(".status").appendChild(badge);
    row.querySelector(".mode").textContent = k.mode || "";
    row.querySelector(".seen").textContent = fmt(k.last_seen);
    const reason = row.querySelector(".reason");
    reason.textContent = k.reason || "";
    for (const a of k.actions || []) {
      const div = document.createElement("div");
      div.className = "action";
      div.textContent = a;
      reason.appendChild(div);
    }
    row.classList.add("flash");
    setTimeout(() => row.classList.remove("flash"), 1500);
  }

  let sitesTimer = null;
  function refreshSites() {
    // Per-site counts change with any kiosk; re-read them at most every two seconds.
    if (sitesTimer) return;
    sitesTimer = setTimeout(async () => {
      sitesTimer = null;
      const body = document.querySelector("aside.sites tbody");
      if (!body) return;
      const r = await fetch("/api/v1/sites", {credentials: "same-origin"});
      if (!r.ok) return;
      const items = (await r.json()).items.slice(0, 12);
      const w = words();
      body.innerHTML = "";
      for (const s of items) {
        const tr = document.createElement("tr");
        const cells = [[s.offline, "st-offline", w.offline], [s.degraded, "st-degraded", w.degraded],
                       [s.out_of_service, "st-out_of_service", w.out_of_service], [`${s.online}/${s.total}`, "", w.online]];
        const a = document.createElement("a");
        a.href = "/fleet?site=" + encodeURIComponent(s.site);
        a.textContent = s.site || "-";
        const td = document.createElement("td");
        td.appendChild(a);
        tr.appendChild(td);
        for (const [v, cls, title] of cells) {
          const c = document.createElement("td");
          c.textContent = v; c.className = cls; c.title = title || "";
          tr.appendChild(c);
        }
        body.appendChild(tr);
      }
    }, 2000);
  }

  function fleetLive() {
    stream({
      kiosk: (k) => { updateRow(k); refreshSites(); },
      summary: (c) => {
        for (const [k, v] of Object.entries(c)) {
          const el = document.querySelector(`[data-count="${k}"]`);
          if (el) el.textContent = v;
        }
      },
    });
  }

  function kioskPage(kioskId) {
    const w = words();
    stream({
      kiosk: (k) => {
        if (k.kiosk_id !== kioskId) return;
        const b = document.getElementById("kstatus");
        b.className = "badge st-" + k.status;
        b.textContent = w[k.status] || k.status;
        document.getElementById("kstate").textContent = k.state + (k.reason ? ` (${k.reason})` : "");
        const body = document.getElementById("devices");
        if (body) {  // devices change live too: paper out, cover open, required action
          body.innerHTML = "";
          for (const name of Object.keys(k.devices || {}).sort()) {
            const d = k.devices[name], tr = document.createElement("tr");
            tr.className = "dev-" + d.state;
            for (const [v, cls] of [[name, ""], [d.state, ""], [d.detail, ""], [d.required_action, "action"]]) {
              const td = document.createElement("td");
              td.textContent = v || ""; td.className = cls;
              tr.appendChild(td);
            }
            body.appendChild(tr);
          }
        }
      },
    });
    for (const btn of document.querySelectorAll("button.cmd")) {
      btn.addEventListener("click", () => sendCommand(kioskId, btn));
    }
  }

  async function sendCommand(kioskId, btn) {
    const w = words();
    const out = document.getElementById("cmd-result");
    if (!window.confirm(btn.dataset.confirm)) return;
    out.className = "result";
    out.textContent = w.sent;
    let resp, body;
    try {
      resp = await fetch(`/api/v1/kiosks/${encodeURIComponent(kioskId)}/commands`, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
        body: JSON.stringify({name: btn.dataset.cmd, args: JSON.parse(btn.dataset.args || "{}")}),
      });
      body = await resp.json();
    } catch (err) { out.textContent = String(err); out.classList.add("bad"); return; }
    if (!resp.ok) { out.textContent = body.error || resp.statusText; out.classList.add("bad"); return; }
    const id = body.id;
    for (let i = 0; i < 120; i++) {  // up to one minute; the kiosk answers or the command expires
      await new Promise((r) => setTimeout(r, 500));
      const r = await fetch(`/api/v1/commands/${encodeURIComponent(id)}`, {credentials: "same-origin"});
      if (!r.ok) continue;
      const c = await r.json();
      if (c.status && c.status !== "queued" && c.status !== "sent") {
        out.textContent = `${btn.dataset.label}: ` + w.result.replace("{status}", (w.statuses || {})[c.status] || c.status) + (c.error ? ` — ${c.error}` : "")
          + (c.result && Object.keys(c.result).length ? " " + JSON.stringify(c.result) : "");
        out.classList.add(c.status === "succeeded" ? "good" : "bad");
        out.dataset.status = c.status;
        return;
      }
    }
  }

  function reloadOnAlarms() {
    // The connect-time event only carries the count; reload on real changes, but never while an
    // operator is typing a note (the page would eat it): then mark the page as out of date instead.
    stream({alarms: (a) => {
      if (!("raised" in a || "cleared" in a || "acked" in a)) return;
      const typing = [...document.querySelectorAll("input[name=note]")].some((i) => i.value);
      if (typing) { document.body.classList.add("stale"); return; }
      location.reload();
    }});
  }

  return {fleetLive, kioskPage, reloadOnAlarms, setAlarmCount};
})();
