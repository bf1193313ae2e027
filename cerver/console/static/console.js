// Cerver console: actions call the JSON API (same origin, the console cookie authenticates),
// the session page follows GET /v2/sessions/{id}/events, the sessions table refreshes itself.
// Every string from the server is set with textContent, never parsed as HTML.
"use strict";

(() => {
  const $ = (sel, root = document) => root.querySelector(sel);

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  // -- messages ------------------------------------------------------------------------------

  function flash(message, code, ok = false) {
    const box = $("#flash");
    box.replaceChildren(el("span", { text: message }), code ? el("span", { className: "code", text: code }) : null);
    box.className = ok ? "flash ok" : "flash";
    box.hidden = false;
    box.scrollIntoView({ block: "nearest" });
  }

  function apiError(data, status) {
    let detail = data && data.detail;
    if (Array.isArray(detail)) {  // FastAPI's 422: one line per invalid field
      detail = detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    }
    flash(detail || `The gateway answered ${status}.`, data && data.code ? `${data.code} · ${status}` : `${status}`);
  }

  // -- actions -------------------------------------------------------------------------------

  function formBody(form) {
    const body = {};
    for (const field of form.elements) {
      if (!field.name) continue;
      if (field.multiple) {
        const values = [...field.selectedOptions].map((o) => o.value);
        if (values.length) body[field.name] = values;
        continue;
      }
      const value = field.value.trim();
      if (value === "") continue;
      body[field.name] = field.dataset.type === "int" ? parseInt(value, 10) : value;
    }
    return body;
  }

  const then = {
    reload: () => location.reload(),
    stay: () => {},
    "open-session": (data) => { location.href = `/console/sessions/${encodeURIComponent(data.session_id)}`; },
    "stress-report": (data) => drawStressReport(data),
  };

  async function submit(form) {
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    const [method, url] = form.dataset.api.split(" ");
    const body = formBody(form);
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    $("#flash").hidden = true;
    if (form.id === "turn-form") form.reset();  // the turn streams into the transcript
    try {
      const response = await fetch(url, {
        method,
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
      });
      let data = {};
      try { data = await response.json(); } catch (_) { /* an empty body */ }
      if (!response.ok) return apiError(data, response.status);
      if (data.status === "failed" && data.error) apiError(data.error, response.status);
      (then[form.dataset.then] || then.stay)(data, form);
    } catch (error) {
      flash(`Could not reach the gateway: ${error.message}`);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.dataset.api) return;
    event.preventDefault();
    submit(form);
  });

  // An entry's #seq fills the fork form: fork the session at that entry.
  document.addEventListener("click", (event) => {
    const seq = event.target.closest && event.target.closest("[data-fork-seq]");
    const field = $("#fork-seq");
    if (!seq || !field) return;
    field.value = seq.dataset.forkSeq;
    field.focus();
  });

  // -- the sessions table refreshes itself ---------------------------------------------------

  const rows = $("tbody[data-live-rows]");
  if (rows) {
    setInterval(async () => {
      if (document.hidden) return;
      const url = new URL(location.href);
      url.searchParams.set("partial", "rows");
      const response = await fetch(url, { credentials: "same-origin" });
      if (response.ok && !response.redirected) rows.innerHTML = await response.text();
    }, 5000);
  }

  // -- a session's live tail -----------------------------------------------------------------

  const session = $("#session");
  if (session) followSession(session);

  function usd(value) {
    if (value === null || value === undefined) return null;
    return value < 1 ? `$${value.toFixed(4)}` : `$${value.toFixed(2)}`;
  }

  function provenance(e) {
    const usage = e.usage || null;
    return el("div", { className: "prov" },
      el("span", { className: "seq", "data-fork-seq": e.seq, title: "Fork the session at this entry", text: `#${e.seq}` }),
      e.harness && e.role !== "user" ? el("span", { text: e.harness }) : null,
      e.model && e.role !== "user" ? el("span", { className: "mono", text: e.model }) : null,
      e.provider && e.role !== "user" ? el("span", { text: e.provider }) : null,
      usage ? el("span", { text: `${usage.input_tokens} in / ${usage.output_tokens} out` }) : null,
      usage && usage.cost_usd !== null ? el("span", { text: usd(usage.cost_usd) }) : null,
      e.latency_ms !== null && e.latency_ms !== undefined ? el("span", { text: `${Math.round(e.latency_ms)} ms` }) : null,
      e.run_id ? el("span", { className: "mono faint", text: e.run_id }) : null);
  }

  function folded(e, label, body, isError) {
    const summary = el("summary", {},
      el("span", { className: isError ? "chip chip-error" : "chip", text: label }), " ",
      el("code", { text: (e.content || "").slice(0, 140) }));
    return el("details", { className: "entry tool", "data-seq": e.seq, "data-kind": e.kind },
      summary, el("pre", { text: body }), provenance(e));
  }

  function drawEntry(e) {
    const parts = e.parts || [];
    switch (e.kind) {
      case "tool_call": {
        const call = parts.find((p) => p.type === "tool_call");
        return folded(e, "tool call", call ? JSON.stringify(call.arguments, null, 2) : e.content);
      }
      case "tool_result": {
        const result = parts.find((p) => p.type === "tool_result");
        return folded(e, "tool result", e.content, result && result.is_error);
      }
      case "reasoning":
        return folded(e, "reasoning", e.content);
      case "harness_switched":
        return el("div", { className: "entry marker", "data-seq": e.seq, "data-kind": e.kind },
          el("span", { className: "chip chip-switch", text: "harness switched" }), ` ${e.content}`);
      case "compute_switched":
        return el("div", { className: "entry marker", "data-seq": e.seq, "data-kind": e.kind },
          el("span", { className: "chip chip-switch", text: "compute moved" }), ` ${e.content}`);
      case "fanout":
      case "verdict": {
        const fanoutId = (e.metadata || {}).fanout_id;
        return el("div", { className: `entry marker ${e.kind}`, "data-seq": e.seq, "data-kind": e.kind },
          el("span", { className: e.kind === "fanout" ? "chip chip-fanout" : "chip chip-verdict", text: e.kind === "fanout" ? "fan-out" : "verdict" }),
          ` ${e.content} `,
          fanoutId ? el("a", { href: `/console/fanouts/${encodeURIComponent(fanoutId)}`, text: "open" }) : null);
      }
      case "error":
        return el("div", { className: "entry error-entry", "data-seq": e.seq, "data-kind": e.kind },
          el("span", { className: "chip chip-error", text: (e.metadata || {}).code || "error" }), ` ${e.content}`, provenance(e));
      default:
        return el("div", { className: `entry bubble role-${e.role}`, "data-seq": e.seq, "data-kind": e.kind },
          el("div", { className: "who-line", text: e.role }),
          el("div", { className: "text", text: e.content }),
          provenance(e));
    }
  }

  function followSession(root) {
    const transcript = $("#transcript");
    const state = $("#tail-state");
    const id = root.dataset.sessionId;
    let streaming = null;

    const show = (entry) => {
      if (!entry || entry.seq === null || entry.seq === undefined) return;
      if (transcript.querySelector(`[data-seq="${entry.seq}"]`)) return;  // already drawn
      const empty = $("#no-entries");
      if (empty) empty.remove();
      if (entry.role === "assistant" && entry.kind === "text" && streaming) {
        streaming.remove();
        streaming = null;
      }
      transcript.append(drawEntry(entry));
      root.dataset.lastSeq = entry.seq;
      transcript.lastElementChild.scrollIntoView({ block: "nearest" });
    };
    const data = (event) => { try { return JSON.parse(event.data); } catch (_) { return null; } };

    const source = new EventSource(`/v2/sessions/${encodeURIComponent(id)}/events?after=${root.dataset.lastEventId}`);
    source.onopen = () => { state.textContent = "live tail"; };
    source.addEventListener("turn.started", (event) => {
      const payload = data(event);
      $("#session-status").textContent = "running";
      $("#session-status").className = "badge status-running";
      if (payload) show(payload.input);
    });
    source.addEventListener("text_delta", (event) => {
      const payload = data(event);
      if (!payload) return;
      if (!streaming) {
        streaming = el("div", { className: "entry bubble role-assistant streaming", id: "streaming" },
          el("div", { className: "who-line", text: "assistant · streaming" }), el("div", { className: "text" }));
        transcript.append(streaming);
      }
      streaming.querySelector(".text").textContent += payload.text;
      streaming.scrollIntoView({ block: "nearest" });
    });
    for (const name of ["message", "tool_call", "tool_result", "harness_switched", "compute_switched", "fanout", "verdict"]) {
      source.addEventListener(name, (event) => show(data(event)));
    }
    source.addEventListener("error", (event) => {
      if (!event.data) { state.textContent = "reconnecting…"; return; }  // the connection, not the turn
      const payload = data(event);
      if (payload && payload.detail) flash(payload.detail, payload.code);
    });
    source.addEventListener("turn.completed", async (event) => {
      const payload = data(event);
      if (streaming) { streaming.remove(); streaming = null; }
      if (payload && payload.message) show(payload.message);
      $("#session-status").textContent = "ready";
      $("#session-status").className = "badge status-ready";
      // Refresh the metrics panel from the server-rendered page.
      const response = await fetch(location.href, { credentials: "same-origin" });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.querySelector("#metrics");
      if (fresh) $("#metrics").replaceWith(fresh);
    });
  }

  // -- the stress-test report ------------------------------------------------------------------

  function drawStressReport(report) {
    const target = $("#stress-report");
    const results = report.providers || [];
    const best = Math.max(...results.map((r) => r.score || 0), 0);
    const head = el("tr", {}, ...["Rank", "Provider", "Score", "Startup p50", "Startup p95", "Exec p50", "Failure rate", "Cost", "Basis"]
      .map((h) => el("th", { text: h })));
    const ms = (v) => (v === null || v === undefined ? "—" : `${Math.round(v)} ms`);
    const body = results.map((r) => {
      const bar = el("div", { className: "bar" }, el("span", { style: `width: ${best ? ((r.score || 0) / best) * 100 : 0}%` }));
      return el("tr", {},
        el("td", { text: r.rank ?? "—" }),
        el("td", {}, el("strong", { text: r.provider }), r.excluded_reason ? el("div", { className: "sub", text: r.excluded_reason }) : null),
        el("td", { className: "chart" }, bar, el("span", { className: "small", text: r.score === null || r.score === undefined ? "excluded" : r.score.toFixed(3) })),
        el("td", { className: "num", text: ms((r.startup_ms || {}).p50) }),
        el("td", { className: "num", text: ms((r.startup_ms || {}).p95) }),
        el("td", { className: "num", text: ms((r.exec_latency_ms || {}).p50) }),
        el("td", { className: "num", text: r.failure_rate === undefined || r.failure_rate === null ? "—" : `${(r.failure_rate * 100).toFixed(1)} %` }),
        el("td", { className: "num", text: usd(r.cost_estimate_usd) || "—" }),
        el("td", { className: "small muted", text: r.measured ? "measured" : r.basis || "" }));
    });
    target.replaceChildren(
      el("p", { className: "muted", text: `Recommended: ${report.recommended_provider || "none"} · ${report.mode} · ${report.sample_size} samples` }),
      el("table", { className: "grid", id: "stress-table" }, el("thead", {}, head), el("tbody", {}, ...body)));
  }
})();
