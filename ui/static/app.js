// The live frame monitor. Reads only this node's public endpoints:
// /api/v1/node, the supply audit and reconciliation (polled) and the event
// stream (server-sent events). Everything from the network is written with
// textContent, never parsed as HTML.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 2000;
  const MAX_EVENTS = 100;

  function cell(row, text, cls) {
    const td = row.insertCell();
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  async function getJSON(path) {
    const r = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return r.json();
  }

  async function loadNode() {
    try {
      const n = await getJSON("/api/v1/node");
      $("frame").textContent = n.frame;
      $("registry").textContent = n.registry;
    } catch (e) { /* shown as … */ }
  }

  const TERMS = [
    ["tokens_issued", "tokens issued"], ["compensation_issued", "compensation issued"],
    ["tokens_destroyed", "tokens destroyed"], ["transit_net", "transit net"],
    ["net_supply", "net supply"], ["total_circulating", "total circulating"],
    ["events_applied", "events applied"],
  ];

  async function pollAudit() {
    try {
      const a = await getJSON("/api/v1/projections/supply-audit");
      const d = $("delta");
      d.textContent = String(a.delta);
      d.dataset.delta = String(a.delta);
      d.className = a.delta === 0 ? "ok" : "bad";
      const ok = $("audit-ok");
      ok.textContent = a.ok ? "OK" : "FAILING";
      ok.className = a.ok ? "ok" : "bad";
      const body = $("terms").tBodies[0];
      body.replaceChildren();
      for (const [k, label] of TERMS) {
        const row = body.insertRow();
        cell(row, label);
        cell(row, String(a[k]), "num");
      }
      $("terms").dataset.eventsApplied = String(a.events_applied);
      $("audit-failures").textContent = (a.failures || []).join("; ");
      $("audit-updated").textContent = new Date().toLocaleTimeString();
    } catch (e) {
      $("audit-ok").textContent = "unavailable";
      $("audit-ok").className = "bad";
    }
  }

  async function pollRecon() {
    try {
      const r = await getJSON("/api/v1/projections/reconciliation");
      const body = $("recon").tBodies[0];
      body.replaceChildren();
      for (const g of r.registries || []) {
        const row = body.insertRow();
        cell(row, g.registry);
        cell(row, String(g.folded_seq), "num");
        cell(row, g.checkpoint_seq == null ? "—" : String(g.checkpoint_seq), "num");
        cell(row, String(g.delta_units ?? 0), "num");
        cell(row, String(g.missing_seqs ?? 0), "num");
      }
      const fails = r.failures || [];
      const s = $("recon-summary");
      s.textContent = (fails.length ? "failing: " + fails.join("; ") : "no failures") +
        (r.passed_at ? " · last pass " + new Date(r.passed_at).toLocaleTimeString() : " · no pass yet");
      s.className = fails.length ? "bad" : "ok";
    } catch (e) {
      $("recon-summary").textContent = "unavailable";
    }
  }

  // The newest paid call, joined by hold ID from its events.
  const calls = new Map();
  let lastHold = null;

  function payload(ev) {
    return ev.payload && typeof ev.payload === "object" ? ev.payload : {};
  }

  function trackPayment(ev) {
    const p = payload(ev);
    if (!p.hold_id) return;
    let c = calls.get(p.hold_id);
    if (!c) {
      c = { hold: p.hold_id };
      calls.set(p.hold_id, c);
      if (calls.size > 50) calls.delete(calls.keys().next().value);
    }
    c.payer = p.payer || c.payer;
    c.payee = p.payee || c.payee;
    if (ev.type === "PaymentTokenIssued") c.issued = { at: ev.occurred_at, max: p.max_units, currency: p.currency };
    if (ev.type === "PaymentSettled") c.settled = { at: ev.occurred_at, units: p.units, fee: p.fee_units, net: p.net_units, transfer: p.transfer_id };
    if (ev.type === "PaymentReleased") c.released = { at: ev.occurred_at, by: p.by };
    lastHold = p.hold_id;
    renderTrace();
  }

  function renderTrace() {
    const c = calls.get(lastHold);
    if (!c) return;
    const t = $("trace");
    t.replaceChildren();
    const head = document.createElement("p");
    head.textContent = (c.payer || "?") + " → " + (c.payee || "?") + " · hold " + c.hold;
    t.appendChild(head);
    const ol = document.createElement("ol");
    const step = (id, text) => {
      const li = document.createElement("li");
      li.id = id;
      li.textContent = text;
      ol.appendChild(li);
    };
    step("trace-issued", c.issued ? "token issued: up to " + c.issued.max + " " + (c.issued.currency || "") + " units held" : "token issued: (not seen)");
    if (c.settled) {
      step("trace-settled", "call served and settled: " + c.settled.units + " units (transfer " + c.settled.transfer + ")");
      step("trace-fee", "fee " + c.settled.fee + " units · payee nets " + c.settled.net + " units");
    } else if (c.released) {
      step("trace-released", "released by " + c.released.by + ": nothing moved");
    } else {
      step("trace-pending", "awaiting settlement");
    }
    t.appendChild(ol);
  }

  let count = 0;
  function addEvent(ev) {
    count++;
    $("event-count").textContent = String(count);
    const li = document.createElement("li");
    li.className = "event";
    li.dataset.type = ev.type;
    li.textContent = new Date(ev.occurred_at).toLocaleTimeString() + "  " + ev.type + "  " +
      ev.registry + "/" + ev.source + "  " + ev.subject;
    const list = $("events");
    list.insertBefore(li, list.firstChild);
    while (list.children.length > MAX_EVENTS) list.removeChild(list.lastChild);
    if (ev.type.startsWith("Payment")) trackPayment(ev);
  }

  function stream() {
    const es = new EventSource("/api/v1/events/stream");
    const status = $("stream-status");
    es.onopen = () => { status.textContent = "live"; status.className = "ok"; };
    es.onerror = () => { status.textContent = "reconnecting…"; status.className = "bad"; };
    es.addEventListener("event", (m) => {
      try { addEvent(JSON.parse(m.data)); } catch (e) { /* a malformed message is dropped */ }
    });
    es.addEventListener("gap", (m) => {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "… " + Number(m.data) + " older events not shown";
      $("events").insertBefore(li, $("events").firstChild);
    });
  }

  loadNode();
  pollAudit();
  pollRecon();
  setInterval(pollAudit, POLL_MS);
  setInterval(pollRecon, POLL_MS * 2);
  stream();
})();
