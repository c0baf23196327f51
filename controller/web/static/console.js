// Operator console: live fleet updates over server-sent events and command buttons over the REST API.
// Plain browser JavaScript, no build step.
"use strict";
const Console = (() => {
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const words = () => JSON.parse((document.getElementById("i18n") || {}).textContent || "{}");
  // One clock: times in the fleet's zone (the server's time_zone, on <body data-tz>), as the pages
  // show them ("2026-03-11 23:08:05"), whatever zone the browser is in.
  const fmt = (ts) => {
    if (!ts) return "";
    const parts = {};
    const f = new Intl.DateTimeFormat("en-GB", {timeZone: document.body.dataset.tz || undefined, hourCycle: "h23",
      year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit"});
    for (const {type, value} of f.formatToParts(new Date(ts * 1000))) parts[type] = value;
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
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
    const row = document.getElementById("k-" + k.kiosk_id);
    if (row) fillRow(row, k);
  }

  // Data words (modes, devices, actions, ...) in the page's language: the "terms" the server put
  // in the page's i18n block (Translator.terms); an id it lacks is shown as it is.
  function term(w, kind, value) {
    if (value === null || value === undefined || value === "") return "";
    return ((w.terms || {})[kind] || {})[value] || String(value);
  }

  function detailText(w, detail) {
    // The same fields as Translator.detail: "paper: out · cover: closed".
    if (!detail || typeof detail !== "object") return term(w, "fault", detail);
    return Object.keys(detail).sort().filter((key) => {
      const v = detail[key];
      return v !== null && v !== "" && typeof v !== "object";
    }).map((key) => {
      const v = detail[key];
      const shown = typeof v === "boolean" ? (v ? w.yes : w.no) || String(v) : term(w, key, v);
      return (w.field || "{name}: {value}").replace("{name}", term(w, "field", key)).replace("{value}", shown);
    }).join(" · ");
  }

  function fillRow(row, k, flash = true) {
    const w = words();
    row.className = "st-" + k.status;
    row.querySelector(".status").innerHTML = "";
    const badge = document.createElement("span");
    badge.className = "badge st-" + k.status;
    badge.textContent = w[k.status] || k.status;
    row.querySelector(".status").appendChild(badge);
    row.querySelector(".mode").textContent = term(w, "mode", k.mode);
    row.querySelector(".seen").textContent = k.last_seen ? fmt(k.last_seen) : (w.never || "");
    const reason = row.querySelector(".reason");
    reason.textContent = term(w, "reason", k.reason);
    for (const name of Object.keys(k.devices || {}).sort()) {
      const action = k.devices[name].required_action;
      if (!action) continue;
      const div = document.createElement("div");
      div.className = "action";
      div.textContent = term(w, "device", name) + ": " + term(w, "action", action);
      reason.appendChild(div);
    }
    if (!flash) return;
    row.classList.add("flash");
    setTimeout(() => row.classList.remove("flash"), 1500);
  }

  function newRow(k) {
    // The same cells as the server-rendered rows in fleet.html.
    const tr = document.createElement("tr");
    tr.id = "k-" + k.kiosk_id;
    tr.dataset.kiosk = k.kiosk_id;
    const link = document.createElement("a");
    link.href = "/kiosks/" + encodeURIComponent(k.kiosk_id);
    link.textContent = k.kiosk_id;
    for (const cls of ["", "", "status", "mode", "seen", "reason"]) {
      const td = document.createElement("td");
      if (cls) td.className = cls;
      tr.appendChild(td);
    }
    tr.cells[0].appendChild(link);
    tr.cells[1].textContent = k.site || "";
    return tr;
  }

  // -- kiosks registered after the page was loaded ------------------------------------------------
  // The server announces them ("added"); where a new kiosk belongs depends on this page's filters,
  // sort and page, which the server knows best. So when one matches the filters the page asks the
  // API for itself again (the same query string): if a new kiosk lands on this page the rows are
  // laid out in the server's order, the new ones flashing; if it belongs on another page a notice
  // counts it with a refresh link, and the rows the operator is looking at stay where they are.
  const view = new URLSearchParams(location.search);
  const pending = new Set();  // new kiosks that match the filters, not yet placed
  const elsewhere = new Set();  // ... that belong on another page
  let placeTimer = null;
  let unseen = false;  // new kiosks were announced by count only

  function matchesView(k) {
    // FleetView.list's filters (controller/web/fleetview.py).
    const q = (view.get("q") || "").trim().toLowerCase();
    const status = view.get("status") || "", site = (view.get("site") || "").trim();
    const group = (view.get("group") || "").trim();
    return (!status || k.status === status) && (!site || k.site === site) && (!group || k.group === group)
      && (!q || [k.kiosk_id, k.site, k.reason].some((v) => (v || "").toLowerCase().includes(q)));
  }

  function kioskAdded(a) {
    for (const k of a.items || []) {
      if (!document.getElementById("k-" + k.kiosk_id) && matchesView(k)) pending.add(k.kiosk_id);
    }
    // More new kiosks than one event carries (a mass first start): ask the page anyway; the
    // notice then counts only the ones this browser was told about.
    if ((a.count || 0) > (a.items || []).length) unseen = true;
    schedulePlacing();
  }

  function schedulePlacing() {
    // One question at a time (answers arriving out of order would undo each other), at most
    // about three a second during a burst of registrations.
    if ((pending.size || unseen) && !placeTimer) placeTimer = setTimeout(placeNew, 300);
  }

  async function placeNew() {
    const ask = [...pending];
    pending.clear();
    unseen = false;
    let page = null;
    try {
      const r = await fetch("/api/v1/kiosks" + location.search, {credentials: "same-origin"});
      if (r.ok) page = await r.json();
    } catch (err) { page = null; }
    placeTimer = null;
    if (page) {
      place(page, ask);
    } else {  // the page's own query was refused or the console is away: say there is news
      for (const id of ask) elsewhere.add(id);
      showElsewhere();
    }
    schedulePlacing();
  }

  function place(page, ask) {
    const body = document.querySelector("#fleet tbody");
    const shown = new Map([...body.rows].map((tr) => [tr.dataset.kiosk, tr]));
    const here = new Set(page.items.map((k) => k.kiosk_id));
    if (page.items.some((k) => !shown.has(k.kiosk_id))) {
      // Rows already shown keep their live content; rows new to this page come from the answer.
      body.replaceChildren(...page.items.map((k) => {
        const tr = shown.get(k.kiosk_id);
        if (tr) return tr;
        const fresh = newRow(k);
        fillRow(fresh, k);
        return fresh;
      }));
      const empty = document.getElementById("fleet-empty");
      if (empty) empty.remove();
    }
    for (const id of ask) if (!here.has(id)) elsewhere.add(id);
    for (const id of here) elsewhere.delete(id);
    setPager(page);
    showElsewhere();
  }

  function showElsewhere() {
    const note = document.getElementById("new-kiosks");
    if (!note) return;
    note.hidden = elsewhere.size === 0;
    note.querySelector("span").textContent = (words().new_elsewhere || "{count}").replace("{count}", elsewhere.size);
  }

  function setPager(page) {
    const pager = document.getElementById("pager");
    if (!pager) return;
    const w = words();
    const link = (p, text) => {
      const a = document.createElement("a");
      const u = new URLSearchParams(location.search);
      u.set("page", p);
      a.href = "/fleet?" + u;
      a.textContent = text;
      return a;
    };
    const parts = [];
    if (page.page > 1) parts.push(link(page.page - 1, w.prev));
    parts.push(document.createTextNode(" " + (w.page || "").replace("{page}", page.page)
      .replace("{pages}", page.pages).replace("{total}", page.total) + " "));
    if (page.page < page.pages) parts.push(link(page.page + 1, w.next));
    pager.replaceChildren(...parts);
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

  function showCounts(c) {
    for (const [k, v] of Object.entries(c)) {
      const el = document.querySelector(`[data-count="${k}"]`);
      if (el) el.textContent = v;
    }
  }

  function fleetLive() {
    stream({
      kiosk: (k) => { updateRow(k); refreshSites(); },
      added: kioskAdded,
      summary: (c) => {
        // The stream counts the whole fleet; a page filtered by site or group asks for its own counts.
        const scope = new URLSearchParams();
        for (const key of ["site", "group"]) if (view.get(key)) scope.set(key, view.get(key));
        if ([...scope].length) {
          fetch("/api/v1/summary?" + scope, {credentials: "same-origin"}).then((r) => r.ok ? r.json() : null)
            .then((s) => s && showCounts(s.counts));
        } else {
          showCounts(c);
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
        document.getElementById("kstate").textContent = term(w, "state", k.state)
          + (k.reason ? ` (${term(w, "reason", k.reason)})` : "");
        const body = document.getElementById("devices");
        if (body) {  // devices change live too: paper out, cover open, required action
          body.innerHTML = "";
          for (const name of Object.keys(k.devices || {}).sort()) {
            const d = k.devices[name], tr = document.createElement("tr");
            tr.className = "dev-" + d.state;
            const cells = [[term(w, "device", name), ""], [term(w, "devstate", d.state), ""],
              [[term(w, "fault", d.fault), detailText(w, d.detail)].filter(Boolean).join(" — "), ""],
              [term(w, "action", d.required_action), "action"]];
            for (const [v, cls] of cells) {
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

  function showReason(el, texts, prefix) {
    // A reason as the server worded it in each console language (controller/web/rollout_words.py):
    // the catalogue's text, then a code without a text here and the data as it came, as codes.
    el.textContent = "";
    const p = (texts || {})[document.documentElement.lang];
    if (!p || !(p.text || p.code || p.detail)) return;
    el.append(prefix + p.text);
    for (const part of [p.code, p.detail]) {
      if (!part) continue;
      const code = document.createElement("code");
      code.className = "id";
      code.textContent = part;
      el.append(" ", code);
    }
  }

  function rolloutLive(rolloutId) {
    // One roll-out's page: its status, the counts per wave and each kiosk's row follow the
    // "rollout" events (controller/web/rollout_live.py); a frame names only the kiosks that changed.
    const w = words();
    stream({rollout: (r) => {
      if (r.id !== rolloutId) return;
      document.getElementById("ro-status").textContent = (w.status || {})[r.status] || r.status;
      document.getElementById("ro-wave").textContent = (w.current_wave || "{wave}").replace("{wave}", r.wave);
      showReason(document.getElementById("ro-reason"), r.reason_text, "· ");
      const budget = document.getElementById("ro-budget");
      if (budget) budget.textContent = (r.budget_text || {})[document.documentElement.lang] || "";
      for (const p of r.progress) {
        const row = document.getElementById("w-" + p.wave);
        if (!row) continue;
        for (const cell of row.querySelectorAll("[data-n]")) cell.textContent = String(p[cell.dataset.n]);
      }
      for (const row of document.querySelectorAll("tr[data-kiosk]")) {
        const k = r.kiosks[row.dataset.kiosk];
        if (!k) continue;
        row.dataset.state = k.state;
        row.querySelector(".wave").textContent = String(k.wave);
        row.querySelector(".state").textContent = (w.kiosk_state || {})[k.state] || k.state;
        showReason(row.querySelector(".reason"), k.reason_text, "");
      }
    }});
  }

  function rolloutsLive() {
    // The list of roll-outs: each row's status, progress per wave and reason follow the same events.
    const w = words();
    stream({rollout: (r) => {
      const row = [...document.querySelectorAll("tr[data-rollout]")].find((x) => x.dataset.rollout === r.id);
      if (!row) return;  // a roll-out created since the page loaded: it shows on the next visit
      row.querySelector(".status").textContent = (w.status || {})[r.status] || r.status;
      showReason(row.querySelector(".reason"), r.reason_text, "");
      const waves = row.querySelector(".waves");
      waves.textContent = "";
      for (const p of r.progress) {
        const pill = document.createElement("span");
        pill.className = "pill";
        pill.title = (w.wave_title || "{wave}").replace("{wave}", p.wave);
        pill.textContent = `${p.wave}: ${p.succeeded}/${p.total}` + (p.failed ? ` ✗${p.failed}` : "");
        waves.append(pill, " ");
      }
    }});
  }

  return {fleetLive, kioskPage, reloadOnAlarms, rolloutLive, rolloutsLive, setAlarmCount};
})();
