// nearcache status page: polls cluster.json once a second and renders it.
// Plain DOM, no framework, no build step; every value goes in as text.
"use strict";

var polls = 0;

function cell(row, text, cls) {
  var td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function fill(tbody, items, render) {
  while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
  items.forEach(function (it) {
    var tr = document.createElement("tr");
    render(tr, it);
    tbody.appendChild(tr);
  });
}

function flag(id, good, goodText, badText) {
  var el = document.getElementById(id);
  el.textContent = good ? goodText : badText;
  el.className = good ? "ok" : "bad";
}

function render(s) {
  document.getElementById("node").textContent = s.node;
  document.getElementById("addr").textContent = s.addr || "standalone";
  document.getElementById("updated").textContent = new Date(s.time).toLocaleTimeString();
  flag("trusted", s.trusted, "trusted", "degraded: reads bypass the cache");
  flag("ready", s.ready, "ready", "not ready: " + (s.ready_reason || ""));
  document.getElementById("members-alive").textContent = s.members_alive;
  document.getElementById("last-heard").textContent = s.last_heard_seconds.toFixed(3) + " s ago";

  var served = 0;
  s.members.forEach(function (m) { if (m.peer) served += m.peer.fills_served; });
  fill(document.querySelector("#members tbody"), s.members, function (tr, m) {
    var name = cell(tr, m.name + (m.self ? " (this node)" : ""), "member-name");
    name.dataset.member = m.name;
    if (m.http && !m.self) { // link to the member's own page
      var a = document.createElement("a");
      a.href = "http://" + m.http + "/debug/cluster";
      a.textContent = name.textContent;
      name.textContent = "";
      name.appendChild(a);
    }
    cell(tr, m.addr);
    cell(tr, m.state, m.state === "alive" ? "ok" : "bad");
    var p = m.peer;
    if (!p) {
      var td = cell(tr, m.peer_error ? "figures unavailable: " + m.peer_error : "", "muted");
      td.colSpan = 5;
      return;
    }
    cell(tr, p.trusted ? "trusted" : "degraded", p.trusted ? "ok" : "bad");
    cell(tr, p.groups.map(function (g) {
      return g.name + " " + (g.hit_ratio === null ? "n/a" : g.hit_ratio.toFixed(3));
    }).join(", "), "num");
    cell(tr, String(p.loads), "num");
    cell(tr, String(p.fills_served), "num member-served").dataset.member = m.name;
    cell(tr, served > 0 ? (100 * p.fills_served / served).toFixed(0) + "%" : "–", "num");
  });

  fill(document.querySelector("#groups tbody"), s.groups, function (tr, g) {
    cell(tr, g.name);
    var hr = cell(tr, g.hit_ratio === null ? "n/a" : g.hit_ratio.toFixed(3), "num hit-ratio");
    hr.dataset.group = g.name;
    [g.hits, g.misses, g.loads, g.load_errors, g.coalesced,
     g.fills_local + " / " + g.fills_owner + " / " + g.fills_fallback, g.fills_served,
     g.stale_rejected, g.bypass, g.degraded,
     g.invalidations_sent, g.invalidations_received, g.invalidations_applied, g.purges].forEach(function (v) {
      cell(tr, String(v), "num");
    });
    var p = g.propagation;
    cell(tr, p ? p.p50_ms.toFixed(2) + " / " + p.p99_ms.toFixed(2) + " / " + p.max_ms.toFixed(2) +
      " (" + p.window + " of " + p.count + ")" : "none yet", "num");
    var sm = g.sampler;
    cell(tr, !sm || sm.hour_checks === 0 ? "no checks yet" :
      "measured: " + sm.nines.toFixed(1) + " nines within the bound (" + sm.hour_beyond + " of " +
      sm.hour_checks + " checked hits beyond)", sm && sm.hour_beyond > 0 ? "num bad" : "num sampler");
  });

  var c = s.cluster;
  fill(document.querySelector("#cluster tbody"), [
    ["published", c.published], ["received", c.received], ["duplicates", c.duplicates],
    ["gaps detected", c.gaps_detected], ["repaired", c.repaired], ["unrepairable", c.unrepairable],
    ["pending gaps", c.pending_gaps], ["messages sent", c.messages_sent],
    ["messages received", c.messages_received], ["decode errors", c.decode_errors],
    ["rejoins", c.rejoins], ["degraded transitions", c.degraded_transitions]
  ], function (tr, kv) {
    var th = document.createElement("th");
    th.textContent = kv[0];
    tr.appendChild(th);
    cell(tr, String(kv[1]), "num");
  });
}

function poll() {
  fetch("cluster.json?peers=1", { cache: "no-store" })
    .then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    })
    .then(function (s) {
      render(s);
      polls++;
      document.getElementById("polls").textContent = polls;
      document.getElementById("error").textContent = "";
    })
    .catch(function (e) {
      document.getElementById("error").textContent = "cannot reach the node: " + e.message;
    })
    .finally(function () { setTimeout(poll, 1000); });
}

poll();
