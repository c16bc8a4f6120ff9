// OutageDesk operator dashboard: plain browser JavaScript, no libraries, no build step.
// Every figure comes from /api/v1 with a bearer token; DOM nodes are built with textContent
// (never innerHTML) so nothing from the API is interpreted as markup.
(() => {
  "use strict";

  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const TZ = config.time_zone;
  const STORAGE_KEY = "outagedesk.token";
  const OPEN_STATUSES = ["detected", "confirmed", "dispatched", "on_site", "scheduled", "in_progress"];
  const AWAITING_CLOSE = ["restored", "resolved"];
  const SLA_ORDER = ["acknowledge", "notice", "on_site", "restore_after_arrival", "restore"];
  const REFRESH_DEBOUNCE_MS = 1000;
  const FEED_MAX = 200;

  const state = { feeders: new Map(), crews: new Map(), incidents: [], closed: new Set(),
                  refreshTimer: null, loading: false, again: false };

  // ---------------------------------------------------------------- small helpers
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("data-") || key === "title" || key === "href" || key === "open") node.setAttribute(key, value === true ? "" : value);
      else node[key] = value;
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const fmtParts = new Intl.DateTimeFormat("en-GB", { timeZone: TZ, year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  function parts(iso) {
    const out = {};
    for (const p of fmtParts.formatToParts(new Date(iso))) out[p.type] = p.value;
    return out;
  }
  function localTime(iso) { // "07-15 01:20" in the operators' time zone
    if (!iso) return "—";
    const p = parts(iso);
    return `${p.month}-${p.day} ${p.hour}:${p.minute}`;
  }
  function localClock(iso) { const p = parts(iso); return `${p.hour}:${p.minute}:${p.second}`; }
  function localDate(date) { const p = parts(date.toISOString()); return `${p.year}-${p.month}-${p.day}`; }
  const number = new Intl.NumberFormat("en-US");
  function label(text) { return String(text).replaceAll("_", " "); }
  function plural(n, word) { return `${number.format(n)} ${word}${n === 1 ? "" : "s"}`; }

  function setStatus(text, isError) {
    const node = document.getElementById("status");
    node.textContent = text;
    node.classList.toggle("error", Boolean(isError));
  }

  // ---------------------------------------------------------------- token and API calls
  function token() { return config.token || sessionStorage.getItem(STORAGE_KEY) || ""; }

  function askForToken(message) {
    const form = document.getElementById("token-form");
    form.hidden = false;
    setStatus(message, true);
  }

  class ApiError extends Error {
    constructor(status, detail) { super(detail); this.status = status; }
  }

  async function api(path, options) {
    const headers = Object.assign({ Authorization: `Bearer ${token()}` }, (options && options.headers) || {});
    const response = await fetch(path, Object.assign({ cache: "no-store" }, options || {}, { headers }));
    if (!response.ok) {
      let detail = `${response.status} ${response.statusText}`;
      try { const body = await response.json(); detail = body.detail || body.title || detail; } catch (e) { /* not JSON */ }
      if (response.status === 401 && !config.token) {
        sessionStorage.removeItem(STORAGE_KEY);
        askForToken(`The token was not accepted: ${detail}`);
      }
      throw new ApiError(response.status, detail);
    }
    return response;
  }

  async function allPages(path) {
    const items = [];
    let cursor = null;
    for (let page = 0; page < 100; page++) { // at most 20,000 rows: a guard, not a real limit
      const sep = path.includes("?") ? "&" : "?";
      const url = cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path;
      const body = await (await api(url)).json();
      items.push(...body.items);
      cursor = body.next_cursor;
      if (!cursor) break;
    }
    return items;
  }

  // ---------------------------------------------------------------- loading
  async function loadReference() {
    const feeders = (await (await api("/api/v1/feeders")).json()).items;
    state.feeders = new Map(feeders.map((f) => [f.id, f]));
    try {
      const crews = await allPages("/api/v1/crews?limit=200");
      state.crews = new Map(crews.map((c) => [c.id, c]));
    } catch (e) { state.crews = new Map(); } // crew names are a nicety; ids still show
  }

  function wantedStatuses() {
    const restored = document.getElementById("show-restored").checked;
    return restored ? OPEN_STATUSES.concat(AWAITING_CLOSE) : OPEN_STATUSES;
  }

  async function refresh() {
    if (!token()) { askForToken("Enter a bearer token (viewer or above) to see incidents."); return; }
    if (state.loading) { state.again = true; return; }
    state.loading = true;
    try {
      if (state.feeders.size === 0) await loadReference();
      state.incidents = await allPages(`/api/v1/incidents?status=${wantedStatuses().join(",")}&limit=200`);
      render();
      setStatus(`refreshed ${localClock(new Date().toISOString())} · ${plural(state.incidents.length, "incident")} shown`);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) setStatus(`Could not load: ${e.message}`, true);
    } finally {
      state.loading = false;
      if (state.again) { state.again = false; scheduleRefresh(); }
    }
  }

  function scheduleRefresh() { // events arrive in bursts; one reload per burst
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(refresh, REFRESH_DEBOUNCE_MS);
  }

  // ---------------------------------------------------------------- rendering
  function isOpen(incident) { return OPEN_STATUSES.includes(incident.status); }

  function renderCounts() {
    const open = state.incidents.filter(isOpen);
    const byKind = {}; const byStatus = {};
    let out = 0; let breached = 0; let atRisk = 0;
    for (const i of open) {
      byKind[i.kind] = (byKind[i.kind] || 0) + 1;
      byStatus[i.status] = (byStatus[i.status] || 0) + 1;
      if (i.kind !== "voltage") out += i.customers_out || 0;
      const sla = Object.values(i.sla || {});
      if (sla.includes("breached")) breached += 1;
      else if (sla.includes("at_risk")) atRisk += 1;
    }
    const detail = (counts) => Object.entries(counts).map(([k, n]) => `${label(k)} ${n}`).join(" · ") || "none";
    const card = (name, value, text, alert) => el("div", { class: alert ? "card alert" : "card", "data-count": name },
      el("div", { class: "label" }, label(name)), el("div", { class: "value" }, number.format(value)),
      el("div", { class: "detail" }, text));
    document.getElementById("counts").replaceChildren(
      card("open incidents", open.length, detail(byKind)),
      card("by status", open.length, detail(byStatus)),
      card("customers out", out, "in open outages"),
      card("SLA breached", breached, "open incidents with a breached target", breached > 0),
      card("SLA at risk", atRisk, "open incidents at risk, none breached"),
    );
  }

  function slaChips(sla) {
    const entries = Object.entries(sla || {});
    entries.sort((a, b) => (SLA_ORDER.indexOf(a[0]) + 99) % 99 - (SLA_ORDER.indexOf(b[0]) + 99) % 99);
    return entries.map(([target, status]) => el("span", { class: `chip ${status}`, "data-sla": status,
      title: `${label(target)}: ${label(status)}` }, label(target)));
  }

  function point(incident) {
    if (incident.customer_id) return [el("span", { class: "kind" }, "customer "), incident.customer_id];
    if (incident.transformer_id) return [el("span", { class: "kind" }, "transformer "), incident.transformer_id];
    if (incident.device_id) return [el("span", { class: "kind" }, "device "), incident.device_id];
    return ["feeder"];
  }

  function crew(incident) {
    if (!incident.crew_id) return "—";
    const known = state.crews.get(incident.crew_id);
    return el("span", { title: incident.crew_id }, known ? known.name : incident.crew_id);
  }

  function row(incident, depth, present) {
    const orphan = incident.parent_incident_id && !present.has(incident.parent_incident_id);
    const slips = incident.etr_slips || 0;
    return el("tr", { class: [depth > 0 || orphan ? "nested" : "", isOpen(incident) ? "" : "closed-ish"].join(" ").trim(),
                      "data-incident-id": incident.id, "data-status": incident.status },
      el("td", { class: "id", style: depth > 1 ? `padding-left:${8 + 14 * depth}px` : null },
        el("code", {}, incident.id),
        orphan ? el("div", { class: "note" }, `nested in ${incident.parent_incident_id}`) : null),
      el("td", {}, el("span", { class: `badge ${incident.kind}` }, incident.kind), " ", label(incident.status)),
      el("td", { class: "point" }, point(incident)),
      el("td", { class: "num" }, number.format(incident.customers_out || 0),
        el("span", { class: "note" }, ` / ${number.format(incident.customers_affected || 0)}`)),
      el("td", { class: "num" }, localTime(incident.detected_at)),
      el("td", { class: slips > 0 ? "num etr slipped" : "num etr", title: slips > 0 ? `ETR slipped ${slips}×` : null },
        localTime(incident.etr), slips > 0 ? ` (+${slips})` : ""),
      el("td", {}, crew(incident)),
      el("td", { class: "sla" }, slaChips(incident.sla)),
    );
  }

  function ordered(incidents) { // parents first, each followed by its nested incidents
    const present = new Set(incidents.map((i) => i.id));
    const children = new Map();
    const roots = [];
    for (const i of incidents) {
      if (i.parent_incident_id && present.has(i.parent_incident_id)) {
        if (!children.has(i.parent_incident_id)) children.set(i.parent_incident_id, []);
        children.get(i.parent_incident_id).push(i);
      } else roots.push(i);
    }
    const byTime = (a, b) => a.detected_at.localeCompare(b.detected_at) || a.id.localeCompare(b.id);
    const out = [];
    const walk = (i, depth) => {
      out.push([i, depth]);
      for (const c of (children.get(i.id) || []).sort(byTime)) walk(c, depth + 1);
    };
    roots.sort(byTime).forEach((i) => walk(i, 0));
    return [out, present];
  }

  function details(key, cls, summary, ...body) {
    const node = el("details", { class: cls, open: !state.closed.has(key), "data-key": key }, el("summary", {}, summary), ...body);
    node.addEventListener("toggle", () => { if (node.open) state.closed.delete(key); else state.closed.add(key); });
    return node;
  }

  function renderTree() {
    const byFeeder = new Map();
    for (const i of state.incidents) {
      if (!byFeeder.has(i.feeder_id)) byFeeder.set(i.feeder_id, []);
      byFeeder.get(i.feeder_id).push(i);
    }
    const substations = new Map(); // substation → [feeder, ...] (all feeders, for the quiet count)
    for (const f of state.feeders.values()) {
      if (!substations.has(f.substation)) substations.set(f.substation, []);
      substations.get(f.substation).push(f);
    }
    for (const id of byFeeder.keys()) { // incidents on a feeder the topology no longer has
      if (!state.feeders.has(id)) {
        const f = { id, name: id, substation: "(unknown)", area: "" };
        if (!substations.has(f.substation)) substations.set(f.substation, []);
        substations.get(f.substation).push(f);
      }
    }
    const tree = [];
    for (const [substation, feeders] of [...substations.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
      const active = feeders.filter((f) => byFeeder.has(f.id));
      if (active.length === 0) continue;
      const items = [];
      let subOut = 0; let subCount = 0;
      for (const f of active) {
        const incidents = byFeeder.get(f.id);
        const [rows, present] = ordered(incidents);
        const out = incidents.filter(isOpen).reduce((n, i) => n + (i.kind === "voltage" ? 0 : i.customers_out || 0), 0);
        const breached = incidents.some((i) => Object.values(i.sla || {}).includes("breached"));
        subOut += out; subCount += incidents.length;
        items.push(details(`feeder:${f.id}`, "feeder",
          [f.name, " ", el("span", { class: "fid" }, `${f.id}`), " ", el("span", { class: "area" }, f.area),
           el("span", { class: breached ? "counts-inline hot" : "counts-inline" },
             `${plural(incidents.length, "incident")} · ${number.format(out)} customers out${breached ? " · SLA breached" : ""}`)],
          el("table", { class: "incidents", "data-feeder": f.id },
            el("thead", {}, el("tr", {}, ["Incident", "Kind / status", "Point", "Out / affected", "Detected", "ETR", "Crew", "SLA"]
              .map((h) => el("th", {}, h)))),
            el("tbody", {}, rows.map(([i, depth]) => row(i, depth, present))))));
      }
      const quiet = feeders.length - active.length;
      tree.push(details(`substation:${substation}`, "substation",
        [`Substation ${substation}`, el("span", { class: "counts-inline" },
          `${plural(subCount, "incident")} · ${number.format(subOut)} customers out`)],
        ...items,
        quiet > 0 ? el("p", { class: "note feeder" }, `${quiet} other feeder${quiet === 1 ? "" : "s"} with no open incidents`) : null));
    }
    const node = document.getElementById("tree");
    node.replaceChildren(...(tree.length ? tree : [el("p", { class: "note", "data-empty": "true" }, "No open incidents.")]));
  }

  function render() { renderCounts(); renderTree(); }

  // ---------------------------------------------------------------- live feed (SSE over fetch)
  // EventSource cannot send an Authorization header, so the stream is read with fetch() and
  // parsed here; reconnecting sends Last-Event-ID so no event is lost across a drop.
  const feed = { lastId: String(config.feed_after), retryMs: 2000 };

  function setFeedState(text, cls) {
    const node = document.getElementById("feed-state");
    node.textContent = text;
    node.className = `feed-state ${cls || ""}`;
  }

  function showEvent(id, type, data) {
    let event;
    try { event = JSON.parse(data); } catch (e) { return; }
    const snap = event.incident || {};
    const item = el("li", { "data-event-id": id, "data-incident-id": event.incident_id },
      el("span", { class: "when" }, localTime(event.occurred_at)),
      el("span", { class: `type ${type}` }, label(type || event.type)),
      el("code", {}, event.incident_id),
      snap.status ? el("span", { class: "note" }, ` → ${label(snap.status)}`) : null,
      snap.customers_out ? el("span", { class: "note" }, ` · ${number.format(snap.customers_out)} out`) : null);
    const list = document.getElementById("feed");
    list.prepend(item);
    while (list.children.length > FEED_MAX) list.lastElementChild.remove();
    scheduleRefresh();
  }

  async function readStream(response) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let id = null; let type = ""; let data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let newline;
      while ((newline = buffer.search(/\r\n|\n|\r/)) >= 0) {
        let line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") { // blank line: dispatch
          if (id !== null) feed.lastId = id;
          if (data.length) showEvent(feed.lastId, type, data.join("\n"));
          type = ""; data = [];
          continue;
        }
        if (line.startsWith(":")) continue; // keep-alive comment
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? "" : line.slice(colon + 1);
        if (val.startsWith(" ")) val = val.slice(1);
        if (field === "id") id = val;
        else if (field === "event") type = val;
        else if (field === "data") data.push(val);
        else if (field === "retry" && /^\d+$/.test(val)) feed.retryMs = Number(val);
      }
    }
  }

  async function streamEvents() {
    for (;;) {
      if (token()) {
        try {
          const response = await api("/api/v1/events", { headers: { "Last-Event-ID": feed.lastId, Accept: "text/event-stream" } });
          setFeedState("live", "live");
          await readStream(response);
          setFeedState("reconnecting", "");
        } catch (e) {
          setFeedState(`disconnected (${e.message})`, "error");
        }
      }
      await new Promise((resolve) => setTimeout(resolve, feed.retryMs));
    }
  }

  // ---------------------------------------------------------------- reports (Blob URLs)
  function reportPeriod() {
    const start = document.getElementById("report-start").value;
    const end = document.getElementById("report-end").value;
    return [`${start}T00:00:00${config.utc_offset}`, `${end}T00:00:00${config.utc_offset}`];
  }

  async function openReport(kind) {
    // open the tab now, inside the click, so pop-up blockers allow it; fill it when loaded
    const tab = window.open("", "_blank");
    const note = document.getElementById("report-note");
    if (tab) tab.document.title = "Loading report…";
    try {
      const [start, end] = reportPeriod();
      const query = new URLSearchParams({ start, end, format: "html" });
      const html = await (await api(`/api/v1/reports/${kind}?${query}`)).blob();
      const url = URL.createObjectURL(new Blob([html], { type: "text/html" }));
      if (tab) tab.location.href = url; else window.location.href = url;
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      note.textContent = `Opened the ${kind} report.`;
    } catch (e) {
      if (tab) tab.close();
      note.textContent = e instanceof ApiError && e.status === 403
        ? "Reports need a token with the manager role." : `Could not open the report: ${e.message}`;
    }
  }

  // ---------------------------------------------------------------- start
  function start() {
    document.getElementById("tz").textContent = `${TZ} · clock ${localTime(config.now)}`;
    const end = new Date(new Date(config.now).getTime() + 86400000);
    document.getElementById("report-end").value = localDate(end);
    document.getElementById("report-start").value = localDate(new Date(end.getTime() - 7 * 86400000));
    for (const link of document.querySelectorAll("[data-report]")) {
      link.addEventListener("click", (event) => { event.preventDefault(); openReport(link.dataset.report); });
    }
    const showRestored = document.getElementById("show-restored");
    showRestored.checked = new URLSearchParams(window.location.search).get("restored") === "1";
    showRestored.addEventListener("change", refresh);
    document.getElementById("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = document.getElementById("token-input").value.trim();
      if (!value) return;
      sessionStorage.setItem(STORAGE_KEY, value);
      document.getElementById("token-form").hidden = true;
      state.feeders = new Map();
      refresh();
    });
    if (!config.token) document.getElementById("token-form").hidden = Boolean(token());
    refresh();
    streamEvents();
  }

  start();
})();
