// Tributary's web console: SQL editor and results, catalog, live tail, jobs.
// Plain browser JavaScript, no build step; everything it shows comes from
// the JSON API of the server that serves it.
"use strict";

const PAGE_ROWS = 100;
const TAIL_ROWS_KEPT = 500;
const JOBS_REFRESH_MS = 2000;
const CHART_WINDOW_MS = 5 * 60 * 1000;
const LAG_CHART_FLOOR = 100;
const HISTORY_KEY = "tributary.history";
const HISTORY_KEPT = 50;
const HISTORY_STATEMENT_MAX = 20000;

const $ = (id) => document.getElementById(id);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body;
  try {
    body = await response.json();
  } catch {
    body = { error: { message: `${response.status} ${response.statusText}` } };
  }
  return { ok: response.ok, body };
}

// ---------------------------------------------------------------- editor

const KEYWORDS = new Set(`select from where group by having order limit offset as and or not in is
null true false insert into values create drop alter stream streams materialized view views sink
sinks show describe subscribe to copy with emit on window close late data watermark for interval
tumble hop join left right inner outer union all distinct case when then else end cast count sum
avg min max filter explain jobs consumer groups if exists partitions table between like asc desc
over partition set key format`.split(/\s+/));

function highlight(text, errorAt) {
  const out = document.createDocumentFragment();
  const token = /(--[^\n]*)|('(?:[^']|'')*'?)|("(?:[^"]|"")*"?)|(\b\d+(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)|(\s+)|(.)/g;
  let match;
  while ((match = token.exec(text)) !== null) {
    const [whole, comment, string, , number, word] = match;
    let cls = null;
    if (comment) cls = "com";
    else if (string) cls = "str";
    else if (number) cls = "num";
    else if (word && KEYWORDS.has(word.toLowerCase())) cls = "kw";
    const start = match.index;
    if (errorAt !== null && errorAt >= start && errorAt < start + whole.length && !/^\s+$/.test(whole)) {
      cls = (cls ? cls + " " : "") + "err";
    }
    out.append(cls ? element("span", { class: cls }, whole) : document.createTextNode(whole));
  }
  // A trailing newline needs a character after it to take up a line.
  out.append("\n");
  return out;
}

let errorPosition = null;

function renderHighlight() {
  const pre = $("highlight");
  pre.replaceChildren(highlight($("editor").value, errorPosition));
  pre.scrollTop = $("editor").scrollTop;
}

function setupEditor() {
  const editor = $("editor");
  editor.addEventListener("input", () => {
    errorPosition = null;
    renderHighlight();
  });
  editor.addEventListener("scroll", () => {
    $("highlight").scrollTop = editor.scrollTop;
  });
  editor.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      runEditor();
    } else if (event.key === "Tab") {
      event.preventDefault();
      const { selectionStart: start, selectionEnd: end, value } = editor;
      editor.value = value.slice(0, start) + "  " + value.slice(end);
      editor.selectionStart = editor.selectionEnd = start + 2;
      renderHighlight();
    }
  });
  $("run").addEventListener("click", runEditor);
  $("history").addEventListener("change", (event) => {
    if (event.target.value) {
      editor.value = event.target.value;
      errorPosition = null;
      renderHighlight();
      event.target.value = "";
      editor.focus();
    }
  });
  renderHistory();
  renderHighlight();
}

function savedStatements() {
  try {
    return JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]");
  } catch {
    return [];
  }
}

function remember(sql) {
  const trimmed = sql.trim();
  if (trimmed.length > HISTORY_STATEMENT_MAX) return;
  const kept = [trimmed, ...savedStatements().filter((s) => s !== trimmed)].slice(0, HISTORY_KEPT);
  try {
    localStorage.setItem(HISTORY_KEY, JSON.stringify(kept));
  } catch {
    // Storage full or off: the history is a convenience, the run goes on.
  }
  renderHistory();
}

function renderHistory() {
  const select = $("history");
  select.replaceChildren(element("option", { value: "" }, "History"));
  for (const sql of savedStatements()) {
    const label = sql.replace(/\s+/g, " ").slice(0, 80);
    select.append(element("option", { value: sql }, label));
  }
}

// ---------------------------------------------------------------- running SQL

async function runEditor() {
  // Sent as typed, so the error position the server gives points into
  // the editor's text.
  const sql = $("editor").value;
  if (!sql.trim()) return;
  remember(sql);
  $("status").textContent = "running…";
  $("run").disabled = true;
  const started = performance.now();
  let outcome;
  try {
    outcome = await api("/api/sql", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sql }),
    });
  } catch (error) {
    outcome = { ok: false, body: { error: { message: `the server did not answer: ${error}` } } };
  } finally {
    $("run").disabled = false;
  }
  const took = performance.now() - started;
  $("status").textContent = `${outcome.ok ? "done" : "failed"} in ${took.toFixed(0)} ms`;
  const results = $("results");
  results.replaceChildren();
  for (const result of outcome.body.results || []) {
    results.append(renderResult(result));
  }
  const error = outcome.body.error;
  if (error) {
    results.append(renderError(error));
    // The server counts characters; JavaScript strings count UTF-16 units.
    errorPosition = error.position ? [...sql].slice(0, error.position - 1).join("").length : null;
    renderHighlight();
  }
  if (/^\s*(create|drop|alter)\b/im.test(sql)) {
    loadCatalog();
    checkHealth();
  }
}

function renderError(error) {
  const box = element("div", { class: "error", role: "alert" });
  box.append(element("span", { class: "sqlstate" }, error.sqlstate ? `ERROR ${error.sqlstate}: ` : "ERROR: "));
  box.append(element("span", { class: "message" }, error.message));
  if (error.position) box.append(element("div", { class: "position" }, `at character ${error.position}`));
  return box;
}

function renderResult(result) {
  const box = element("div", { class: "result" });
  if (result.kind === "command") {
    const rows = result.rows === null || result.rows === undefined ? "" : ` ${result.rows}`;
    box.append(element("div", { class: "command" }, `${result.tag}${rows}`,
      element("span", { class: "muted" }, ` · ${result.elapsed_ms.toFixed(1)} ms`)));
    if (result.notice) box.append(element("div", { class: "notice" }, `NOTICE: ${result.notice}`));
    return box;
  }
  const view = { rows: result.rows.slice(), page: 0, sortColumn: null, descending: false };
  const meta = element("div", { class: "result-meta" });
  const scroll = element("div", { class: "table-scroll" });
  box.append(meta, scroll);
  const draw = () => {
    const pages = Math.max(1, Math.ceil(view.rows.length / PAGE_ROWS));
    view.page = Math.min(view.page, pages - 1);
    const count = `${result.row_count} row${result.row_count === 1 ? "" : "s"}`;
    const shown = result.truncated ? ` (first ${result.rows.length} shown)` : "";
    const pager = element("span", { class: "pager" },
      element("button", { class: "prev", onclick: () => { view.page -= 1; draw(); }, ...(view.page === 0 ? { disabled: "" } : {}) }, "‹ Prev"),
      `page ${view.page + 1} of ${pages}`,
      element("button", { class: "next", onclick: () => { view.page += 1; draw(); }, ...(view.page >= pages - 1 ? { disabled: "" } : {}) }, "Next ›"));
    meta.replaceChildren(element("span", { class: "row-count" }, count + shown),
      element("span", { class: "muted" }, `${result.elapsed_ms.toFixed(1)} ms`), pager);
    const table = renderTable(result.columns, view.rows.slice(view.page * PAGE_ROWS, (view.page + 1) * PAGE_ROWS), view, (column) => {
      view.descending = view.sortColumn === column ? !view.descending : false;
      view.sortColumn = column;
      view.rows.sort((a, b) => compareValues(a[column], b[column]) * (view.descending ? -1 : 1));
      view.page = 0;
      draw();
    });
    scroll.replaceChildren(table);
  };
  draw();
  return box;
}

function compareValues(a, b) {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

function renderTable(columns, rows, view, onSort, rowClass) {
  const table = element("table", { class: "result-table" });
  const head = element("tr");
  columns.forEach((column, index) => {
    let cls = "";
    if (view && view.sortColumn === index) cls = view.descending ? "sorted-desc" : "sorted-asc";
    head.append(element("th", { class: cls, title: "Sort", onclick: () => onSort && onSort(index) },
      column.name, element("span", { class: "type" }, column.type.toLowerCase())));
  });
  table.append(element("thead", {}, head));
  const body = element("tbody");
  for (const row of rows) {
    const tr = element("tr", rowClass ? { class: rowClass(row) } : {});
    for (const value of row) {
      if (value === null) tr.append(element("td", { class: "null" }, "NULL"));
      else if (typeof value === "number") tr.append(element("td", { class: "number" }, value));
      else tr.append(element("td", {}, String(value)));
    }
    body.append(tr);
  }
  table.append(body);
  return table;
}

// ---------------------------------------------------------------- catalog

async function loadCatalog() {
  const target = $("catalog-body");
  const { ok, body } = await api("/api/catalog").catch((e) => ({ ok: false, body: { error: { message: String(e) } } }));
  if (!ok) {
    target.replaceChildren(renderError(body.error));
    return;
  }
  target.classList.remove("muted");
  target.replaceChildren(
    catalogGroup("Streams", body.streams, (s) => [
      `${s.partitions} partition${s.partitions === 1 ? "" : "s"} · ${s.format}`,
      `${s.records} records · ${formatBytes(s.bytes)}`,
      `retention ${s.retention || "forever"}${s.key ? ` · key ${s.key}` : ""}`,
    ]),
    catalogGroup("Materialized views", body.views, (v) => [`${v.changes} changes · from ${v.inputs}`]),
    catalogGroup("Sinks", body.sinks, (s) => [`into ${s.stream} · ${s.records} records`, `from ${s.inputs}`]),
  );
}

function catalogGroup(title, objects, facts) {
  const group = element("div", { class: "catalog-group" }, element("h3", {}, `${title} (${objects.length})`));
  if (objects.length === 0) group.append(element("div", { class: "muted" }, "none"));
  for (const object of objects) {
    const item = element("details", { class: "catalog-item", "data-name": object.name });
    item.append(element("summary", {}, object.name));
    for (const line of facts(object)) item.append(element("div", { class: "facts" }, line));
    if (object.columns) {
      const list = element("ul");
      for (const column of object.columns.filter((c) => c.note !== "metadata")) {
        list.append(element("li", {}, `${column.column} `, element("span", {}, column.type.toLowerCase()),
          column.note ? element("em", { class: "muted" }, ` ${column.note}`) : null));
      }
      item.append(list);
      const quoted = `"${object.name.replace(/"/g, '""')}"`;
      item.append(element("div", { class: "actions" },
        element("button", { onclick: () => { $("editor").value = `SELECT * FROM ${quoted} LIMIT 100;`; renderHighlight(); runEditor(); } }, "query"),
        element("button", { onclick: () => { $("tail-input").value = object.name; startTail(); } }, "tail")));
    }
    group.append(item);
  }
  return group;
}

function formatBytes(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

// ---------------------------------------------------------------- live tail

const tail = { source: null, columns: [], rows: [], paused: false, buffered: [], waiting: 0, fresh: 0, drawPending: false };

function tailStatement(text) {
  const trimmed = text.trim().replace(/;$/, "");
  if (/^(copy\s*\(\s*)?subscribe\b/i.test(trimmed)) return trimmed;
  return `SUBSCRIBE TO "${trimmed.replace(/"/g, '""')}"`;
}

function startTail() {
  stopTail();
  const input = $("tail-input").value;
  if (!input.trim()) return;
  const sql = tailStatement(input);
  tail.columns = [];
  tail.rows = [];
  tail.buffered = [];
  tail.waiting = 0;
  tail.paused = false;
  $("tail-rows").replaceChildren();
  setTailStatus(`connecting: ${sql}`);
  const source = new EventSource(`/api/subscribe?sql=${encodeURIComponent(sql)}`);
  tail.source = source;
  source.addEventListener("columns", (event) => {
    tail.columns = JSON.parse(event.data);
    setTailStatus("live");
    drawTail(0);
  });
  source.addEventListener("rows", (event) => {
    const rows = JSON.parse(event.data);
    if (tail.paused) {
      // Only the newest rows can be shown on Resume; the rest are counted.
      tail.waiting += rows.length;
      tail.buffered = tail.buffered.concat(rows).slice(-TAIL_ROWS_KEPT);
      setTailStatus(`paused · ${tail.waiting} new rows waiting`);
      return;
    }
    addTailRows(rows);
  });
  source.addEventListener("failure", (event) => {
    $("tail-rows").prepend(renderError({ message: event.data }));
  });
  source.addEventListener("error", () => {
    // The statement was refused (its JSON error is not an event stream)
    // or the connection ended. Reconnecting would replay a view's history
    // from the start, so stop, and ask once for the reason.
    if (tail.source !== source) return;
    stopTail();
    explainTailFailure(sql);
  });
  $("tail-pause").disabled = false;
  $("tail-stop").disabled = false;
  $("tail-pause").textContent = "Pause";
}

async function explainTailFailure(sql) {
  const response = await fetch(`/api/subscribe?sql=${encodeURIComponent(sql)}`, { headers: { accept: "application/json" } })
    .catch(() => null);
  if (!response || response.headers.get("content-type")?.includes("text/event-stream")) {
    response?.body?.cancel();
    setTailStatus("disconnected");
    return;
  }
  const body = await response.json().catch(() => ({ error: { message: `${response.status}` } }));
  $("tail-rows").replaceChildren(renderError(body.error));
  setTailStatus("refused");
}

// Rows are drawn once per animation frame however many batches came in
// it: a view's history arrives as thousands of small batches at once.
function addTailRows(rows) {
  tail.rows = tail.rows.concat(rows).slice(-TAIL_ROWS_KEPT);
  tail.fresh += rows.length;
  if (tail.drawPending) return;
  tail.drawPending = true;
  requestAnimationFrame(() => {
    tail.drawPending = false;
    drawTail(Math.min(tail.fresh, tail.rows.length));
    tail.fresh = 0;
  });
}

function drawTail(fresh) {
  const opColumn = tail.columns.findIndex((c) => c.name === "op");
  const firstFresh = tail.rows.length - fresh;
  const rows = tail.rows.map((row, index) => ({ row, fresh: index >= firstFresh }));
  const table = renderTable(tail.columns, rows.map((r) => r.row), null, null, (row) => {
    const classes = [];
    if (opColumn >= 0 && row[opColumn] === "-") classes.push("retraction");
    return classes.join(" ");
  });
  table.querySelectorAll("tbody tr").forEach((tr, index) => {
    if (rows[index].fresh) tr.classList.add("fresh");
  });
  table.id = "tail-table";
  const scroll = element("div", { class: "table-scroll" }, table);
  $("tail-rows").replaceChildren(scroll);
  // The newest rows are at the bottom; keep them in sight.
  scroll.scrollTop = scroll.scrollHeight;
  setTailStatus(`${tail.paused ? "paused" : "live"} · ${tail.rows.length} row${tail.rows.length === 1 ? "" : "s"}`);
}

function togglePause() {
  tail.paused = !tail.paused;
  $("tail-pause").textContent = tail.paused ? "Resume" : "Pause";
  if (!tail.paused && tail.buffered.length > 0) {
    const rows = tail.buffered;
    tail.buffered = [];
    tail.waiting = 0;
    addTailRows(rows);
  } else {
    setTailStatus(tail.paused ? "paused" : "live");
  }
}

function stopTail() {
  if (tail.source) {
    tail.source.close();
    tail.source = null;
    setTailStatus("stopped");
  }
  $("tail-pause").disabled = true;
  $("tail-stop").disabled = true;
}

function setTailStatus(text) {
  $("tail-status").textContent = text;
}

// ---------------------------------------------------------------- jobs

const jobHistory = new Map();

async function refreshJobs() {
  const { ok, body } = await api("/api/jobs").catch((e) => ({ ok: false, body: { error: { message: String(e) } } }));
  const target = $("jobs");
  if (!ok) {
    target.replaceChildren(renderError(body.error));
    return;
  }
  const now = body.at_ms;
  const table = element("table", { class: "result-table", id: "jobs-table" });
  table.append(element("thead", {}, element("tr", {},
    ...["job", "kind", "status", "inputs", "lag", "rows/s in", "rows/s out", "watermark", "late rows", "rows/s in, 5 min", "lag, 5 min"]
      .map((h) => element("th", {}, h)))));
  const body_ = element("tbody");
  for (const job of body.jobs) {
    const points = jobHistory.get(job.name) || [];
    const last = points[points.length - 1];
    let rateIn = 0;
    let rateOut = 0;
    if (last && now > last.at && job.rows_in >= last.rowsIn) {
      rateIn = ((job.rows_in - last.rowsIn) * 1000) / (now - last.at);
      rateOut = ((job.rows_out - last.rowsOut) * 1000) / (now - last.at);
    }
    // The first read has no rate yet: it only sets where counting starts.
    points.push({ at: now, rowsIn: job.rows_in, rowsOut: job.rows_out, rateIn, lag: job.lag, counted: Boolean(last) });
    while (points.length && points[0].at < now - CHART_WINDOW_MS) points.shift();
    jobHistory.set(job.name, points);
    body_.append(element("tr", {},
      element("td", {}, job.name),
      element("td", {}, job.kind === "materialized view" ? "view" : job.kind),
      element("td", { class: `status status-${job.status.split(/[ :]/)[0]}` }, job.status),
      element("td", {}, job.inputs),
      element("td", { class: "number" }, job.lag),
      element("td", { class: "number" }, rateIn.toFixed(0)),
      element("td", { class: "number" }, rateOut.toFixed(0)),
      element("td", { title: job.watermark ?? "no watermark" }, job.watermark ? job.watermark.replace(/^\S* /, "") : "—"),
      element("td", { class: "number" }, job.late_rows),
      element("td", {}, sparkline(points.filter((p) => p.counted).map((p) => [p.at, p.rateIn]), now, "#1f6feb", 1)),
      element("td", {}, sparkline(points.map((p) => [p.at, p.lag]), now, "#b35900", LAG_CHART_FLOOR))));
  }
  table.append(body_);
  target.replaceChildren(body.jobs.length ? table : element("p", { class: "muted" },
    "No jobs yet: CREATE MATERIALIZED VIEW or CREATE SINK starts one."));
}

// `floor`: the smallest top of the scale, so that a lag of 1 record does
// not fill the chart.
function sparkline(points, now, color, floor) {
  const width = 100;
  const height = 32;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const max = Math.max(floor, ...points.map(([, v]) => v));
  // The time axis spans what has been seen, from one minute up to five.
  const oldest = points.length ? points[0][0] : now;
  const span = Math.min(CHART_WINDOW_MS, Math.max(60 * 1000, now - oldest));
  const x = (at) => width - ((now - at) / span) * width;
  const y = (v) => height - 2 - (v / max) * (height - 4);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", color);
  line.setAttribute("stroke-width", "1.5");
  line.setAttribute("points", points.map(([at, v]) => `${x(at).toFixed(1)},${y(v).toFixed(1)}`).join(" "));
  const label = document.createElementNS(ns, "title");
  label.textContent = `max ${max.toFixed(0)} over the last ${Math.round(span / 1000)} s`;
  svg.append(label, line);
  return svg;
}

// ---------------------------------------------------------------- start

// The page shown is in the address (`#jobs`), so it can be linked to.
function showPage(pageId) {
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.dataset.page === pageId));
  document.querySelectorAll(".page").forEach((p) => p.classList.toggle("active", p.id === pageId));
}

function setupTabs() {
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => {
      showPage(tab.dataset.page);
      history.replaceState(null, "", tab.dataset.page === "jobs-page" ? "#jobs" : "#");
    });
  }
  if (location.hash === "#jobs") showPage("jobs-page");
}

// A link to `#sql=<statement>` opens the console with it in the editor,
// and one to `#tail=<stream, view or SUBSCRIBE>` with that live tail open.
function openLinked() {
  if (location.hash.startsWith("#sql=")) {
    // Filled in, never run: a link must not act on the user's behalf.
    $("editor").value = decodeURIComponent(location.hash.slice(5));
    renderHighlight();
    $("editor").focus();
  } else if (location.hash.startsWith("#tail=")) {
    $("tail-input").value = decodeURIComponent(location.hash.slice(6));
    startTail();
  }
}

async function checkHealth() {
  const { ok, body } = await api("/health").catch(() => ({ ok: false, body: {} }));
  $("health").textContent = ok ? `up · ${body.streams} streams` : "server unreachable";
}

setupTabs();
setupEditor();
$("catalog-refresh").addEventListener("click", loadCatalog);
$("tail-start").addEventListener("click", startTail);
$("tail-input").addEventListener("keydown", (event) => { if (event.key === "Enter") startTail(); });
$("tail-pause").addEventListener("click", togglePause);
$("tail-stop").addEventListener("click", stopTail);
loadCatalog();
checkHealth();
refreshJobs();
openLinked();
setInterval(refreshJobs, JOBS_REFRESH_MS);
setInterval(checkHealth, 10000);
