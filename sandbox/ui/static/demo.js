// The trainers' page: everything here goes through the control API, as any other client would (same-origin JSON).
const $ = (id) => document.getElementById(id);
const tokenInput = $("admin-token");
tokenInput.value = localStorage.getItem("sandboxAdminToken") || "";
let locked = false;          // the control API asked for the admin token: nothing is polled until one is given
let catalogue = [];          // GET /faults/catalogue: per vendor, its faults and each operation's
let requestsById = new Map();
let selectedId = null;       // the request opened in the detail panel
let journalSize = 0, eventCount = 0, ruleList = [];

// -- the control API ---------------------------------------------------------------------------------------
async function api(method, path, body, {world = true} = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (tokenInput.value) headers["X-Sandbox-Admin-Token"] = tokenInput.value;
  if (world && $("world").value) headers["X-Sandbox-Workspace"] = $("world").value;
  const response = await fetch(`/_sandbox${path}`, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  let data = {};
  try { data = await response.json(); } catch (e) { /* an empty answer */ }
  if (response.status === 401) {
    lock(tokenInput.value ? "That admin token was refused: check it and try again."
                          : "This sandbox was started with --admin-token: enter the token (top right) to see and control it.");
    throw new Error("admin token needed");
  }
  if (response.status === 403 && !path.startsWith("/workspaces")) {
    lock(data.error ? data.error.message : "The control API refused this page.");
    throw new Error("forbidden");
  }
  return {status: response.status, data};
}

function lock(message) {
  locked = true;
  $("token-prompt").textContent = message;
  $("token-prompt").hidden = false;
  tokenInput.classList.add("wanted");
  tokenInput.focus();
}

function notice(message, kind = "info") {
  $("notice").textContent = message;
  $("notice").className = `notice ${kind}`;
  $("notice").hidden = !message;
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  localStorage.setItem("sandboxAdminToken", tokenInput.value);
  locked = false;
  $("token-prompt").hidden = true;
  tokenInput.classList.remove("wanted");
  loadAll();
});

// -- small DOM helpers -------------------------------------------------------------------------------------
const cell = (text, className) => {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  return td;
};
function fill(tbody, rows) {
  tbody.replaceChildren(...rows.map((cells) => {
    if (cells instanceof HTMLElement) return cells;
    const tr = document.createElement("tr"); tr.append(...cells); return tr;
  }));
}
const pretty = (text) => { try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text || "(none)"; } };
const short = (value) => {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 80 ? text.slice(0, 79) + "…" : text;
};

// -- vendors and credentials -------------------------------------------------------------------------------
function loadVendors() {
  fill($("vendor-rows"), VENDORS.map(([name, base]) => {
    const link = document.createElement("a");
    link.href = `/_sandbox/specs/${name}.yaml`; link.textContent = `${name}.yaml`;
    const specCell = document.createElement("td"); specCell.append(link);
    return [cell(name), cell(location.origin + base), specCell];
  }));
}

const headerText = (headers) => Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join("\n");
function credentialRows(credentials) {
  return credentials.map((c) => [cell(c.name), cell(c.vendor), cell(c.tenant), cell(c.purpose), cell(headerText(c.headers), "mono")]);
}
async function loadCredentials() {
  const {data} = await api("GET", "/credentials");
  fill($("credential-rows"), credentialRows(data.credentials));
}

// -- worlds and workspaces ---------------------------------------------------------------------------------
async function loadWorlds() {
  const {data} = await api("GET", "/workspaces", undefined, {world: false});
  const chosen = $("world").value;
  const options = [new Option("default world", "")].concat(
    (data.workspaces || []).map((w) => new Option(`workspace ${w.id.slice(0, 10)}…`, w.id)));
  $("world").replaceChildren(...options);
  $("world").value = options.some((o) => o.value === chosen) ? chosen : "";
}
$("world").addEventListener("change", () => { selectedId = null; $("request-detail").hidden = true; loadAll(); });

$("create-workspace").onclick = async () => {
  const {status, data} = await api("POST", "/workspaces", {size: 20}, {world: false});
  if (status !== 201) { notice(data.error ? data.error.message : `Could not create a workspace (${status})`, "error"); return; }
  const box = $("workspace-result");
  const intro = document.createElement("p");
  intro.textContent = `Workspace ${data.id} (seed ${data.seed}, size ${data.size}): its credentials, for every vendor ` +
    `(${data.credentials.length}). Control calls act on it with X-Sandbox-Workspace: ${data.id}`;
  const watch = document.createElement("button");
  watch.textContent = "Watch this workspace"; watch.id = "watch-workspace";
  watch.onclick = async () => { await loadWorlds(); $("world").value = data.id; loadAll(); };
  const table = document.createElement("table");
  table.id = "workspace-credentials";
  const head = document.createElement("thead");
  head.innerHTML = "<tr><th>name</th><th>vendor</th><th>headers</th></tr>";
  const body = document.createElement("tbody");
  body.id = "workspace-credential-rows";
  fill(body, data.credentials.map((c) => [cell(c.name), cell(c.vendor), cell(headerText(c.headers), "mono")]));
  table.append(head, body);
  box.replaceChildren(intro, watch, table);
  loadWorlds();
};

$("reset").onclick = async () => {
  await api("POST", "/reset", {});
  $("story").textContent = "World reset to its seed: data, fault rules, journal, events and clock as at the start.";
  selectedId = null; $("request-detail").hidden = true;
  refresh();
};

// -- time --------------------------------------------------------------------------------------------------
async function loadClock() {
  const {data} = await api("GET", "/clock");
  $("clock-now").textContent = data.now.replace("T", " ").slice(0, 19) + " UTC";
  const ahead = Math.round(data.offsetSeconds);
  $("clock-state").textContent = data.frozen ? "frozen" : ahead === 0 ? "the wall clock"
    : `running, ${Math.abs(ahead)} s ${ahead > 0 ? "ahead of" : "behind"} the wall clock`;
  $("clock-freeze").hidden = data.frozen;
  $("clock-resume").hidden = !data.frozen;
}

async function moveClock(body, said) {
  const {status, data} = await api("POST", "/clock", body);
  $("clock-said").textContent = status === 200 ? said : data.error.message;
  await loadClock();
}
$("clock-freeze").onclick = () => moveClock({freeze: true}, "Frozen: the clock moves only when you move it.");
$("clock-resume").onclick = () => moveClock({resume: true}, "Running on from where it stood.");
$("clock-5min").onclick = () => moveClock({advanceSeconds: 300},
  "5 minutes later: a Capillary OAuth token issued before now has expired (it lives 300 s); the next call with it is a 401.");
$("clock-1day").onclick = () => moveClock({advanceSeconds: 86400},
  "A day later: tokens have expired, and a voucher whose expiryDate has passed reads expired.");

// -- events out --------------------------------------------------------------------------------------------
let lastOrder = null;  // the order the last simulated purchase made
const INBOX = "demo";
async function raiKey() {
  const {data} = await api("GET", "/credentials");
  return data.credentials.find((c) => c.vendor === "returning-ai").headers;
}
$("buy").onclick = async () => {
  const target = `${location.origin}/_sandbox/inbox/${INBOX}`;
  const {data: subscribed} = await api("GET", "/webhooks");
  if (!subscribed.webhooks.some((w) => w.url === target)) {
    await api("POST", "/webhooks", {url: target, events: ["returning-ai:purchased-store-item"]});
  }
  const {status, data} = await api("POST", "/simulate/returning-ai/purchases",
                                   {user: "member@example.com", productID: "507f1f77bcf86cd799439015"});
  if (status !== 201) { $("bought").textContent = data.error.message; return; }
  lastOrder = data;
  $("bought").textContent = `Order ${data.orderID} made: 250 coins spent, voucher ${data.voucherCode}. ` +
    "The webhook is on its way; then play the partner with the buttons.";
  $("next-calls").hidden = false;
  $("call-answer").textContent = "";
};
async function partnerCall(method, path, body) {
  const headers = {...await raiKey(), "Content-Type": "application/json"};
  const response = await fetch(path, {method, headers, body: JSON.stringify(body)});
  const data = await response.json();
  $("call-answer").textContent = `${method} ${path} → ${response.status} ${data.message || ""}`;
  refresh();
}
$("call-patch").onclick = () => partnerCall("PATCH", `/returning-ai/v1/purchase-histories/${lastOrder.orderID}`,
  {voucherCode: `DEMO-${lastOrder.orderID.slice(-6)}`, voucherExpiryDate: "31/12/2027"});
$("call-ship").onclick = () => partnerCall("PUT", "/returning-ai/v1/redemption-transactions/status",
  {transactionId: lastOrder.orderID, statusId: "695e2f8b3358520a2ecf86e4"});
$("call-refund").onclick = () => partnerCall("PUT", "/returning-ai/v1/redemption-transactions/status",
  {transactionId: lastOrder.orderID, statusId: "695e2f8b3358520a2ecf8604", refundCoins: true});
async function loadInbox() {
  const {data} = await api("GET", `/inbox/${INBOX}`);
  fill($("inbox-rows"), data.deliveries.slice(-10).reverse().map((d) => {
    let body = {};
    try { body = JSON.parse(d.body); } catch (e) { /* shown as received */ }
    return [cell(d.receivedAt.slice(11, 19)), cell(body.type), cell((body.data || {}).orderID), cell(d.headers["Webhook-Id"] || d.headers["webhook-id"])];
  }));
}

// -- faults ------------------------------------------------------------------------------------------------
let autoLatency = true;  // the latency field holds the page's default, not the trainer's choice
async function loadCatalogue() {
  const {data} = await api("GET", "/faults/catalogue");
  catalogue = data.vendors;
  const vendor = $("fault-vendor").value || "returning-ai";
  $("fault-vendor").replaceChildren(...catalogue.map((v) => new Option(v.vendor, v.vendor)));
  $("fault-vendor").value = catalogue.some((v) => v.vendor === vendor) ? vendor : catalogue[0].vendor;
  updateOperations();
}
const vendorEntry = () => catalogue.find((v) => v.vendor === $("fault-vendor").value);
function updateOperations() {
  const vendor = vendorEntry();
  const operations = vendor ? vendor.operations : [];
  $("fault-operation").replaceChildren(new Option("* every operation", "*"),
    ...operations.map((op) => new Option(op.operationId, op.operationId)));
  if (operations.length) $("fault-operation").value = operations[0].operationId;
  updateFaults();
}
function acceptedFaults() {
  const vendor = vendorEntry();
  if (!vendor) return [];
  const operation = $("fault-operation").value;
  const lists = vendor.operations.filter((op) => operation === "*" || op.operationId === operation).map((op) => op.faults);
  const names = lists.length ? lists.reduce((a, b) => a.filter((name) => b.includes(name))) : [];
  return vendor.faults.filter((f) => names.includes(f.name));
}
function updateFaults() {
  const previous = $("fault-name").value || "latency";
  const faults = acceptedFaults();
  $("fault-name").replaceChildren(...faults.map((f) => new Option(f.name, f.name)));
  $("fault-name").value = faults.some((f) => f.name === previous) ? previous : (faults[0] || {}).name;
  describeFault();
}
function describeFault() {
  const fault = acceptedFaults().find((f) => f.name === $("fault-name").value);
  const latency = $("fault-latency");
  if (autoLatency) latency.value = $("fault-name").value === "latency" ? 1500 : 0;  // a delay the audience sees
  $("fault-description").textContent = fault ? `${fault.name}: ${fault.description}` : "";
}
$("fault-vendor").addEventListener("change", updateOperations);
$("fault-operation").addEventListener("change", updateFaults);
$("fault-name").addEventListener("change", describeFault);
$("fault-latency").addEventListener("input", () => { autoLatency = false; });

$("fault-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const rule = {vendor: $("fault-vendor").value, operation: $("fault-operation").value, fault: $("fault-name").value,
                probability: Number($("fault-probability").value), latencyMs: Number($("fault-latency").value)};
  if ($("fault-count").value) rule.count = Number($("fault-count").value);
  const {status, data} = await api("POST", "/faults", rule);
  if (status !== 201) notice(data.error ? data.error.message : `The rule was refused (${status})`, "error");
  else notice(`Fault on: ${rule.fault} on ${rule.vendor} ${rule.operation === "*" ? "(every operation)" : rule.operation}` +
              (rule.latencyMs ? `, answers held ${rule.latencyMs} ms` : "") + ".");
  refresh();
});

async function loadFaults() {
  const {data} = await api("GET", "/faults");
  ruleList = data.rules;
  fill($("fault-rows"), ruleList.map((r) => {
    const off = document.createElement("button");
    off.textContent = "off"; off.className = "off";
    off.onclick = async () => { await api("DELETE", `/faults/${r.id}`); refresh(); };
    const td = document.createElement("td"); td.append(off);
    return [cell(r.vendor), cell(r.operation), cell(r.fault), cell(r.probability), cell(r.latencyMs), cell(r.fired), td];
  }));
}

// -- scenarios ---------------------------------------------------------------------------------------------
let pendingScenario = null;
async function loadScenarios() {
  const {data} = await api("GET", "/scenarios");
  $("scenario-buttons").replaceChildren(...data.scenarios.map((s) => {
    const button = document.createElement("button");
    button.textContent = s.title; button.dataset.name = s.name;
    button.onclick = () => confirmScenario(s);
    return button;
  }));
}
const ruleText = (r) => `${r.fault} on ${r.vendor} ${r.operation || "*"} (p ${r.probability ?? 1})`;
function confirmScenario(s) {
  pendingScenario = s;
  const replaced = ruleList.length ? `the ${ruleList.length} fault rule(s) now on (${ruleList.map(ruleText).join("; ")})`
                                   : "no fault rule (none is on)";
  const sets = s.faults.length ? `sets ${s.faults.length} rule(s): ${s.faults.map(ruleText).join("; ")}` : "sets no fault rule";
  const changes = s.changes.length ? `changes ${s.changes.length} record(s) (${s.changes.map((c) => `${c.collection} ${c.key}`).join(", ")})`
                                   : "changes no record";
  $("scenario-replaces").textContent =
    `Loading "${s.title}" resets this world${s.seed !== undefined ? ` to seed ${s.seed}` : ""}. It replaces ${replaced}, ` +
    `clears the journal (${journalSize} request(s)) and the events (${eventCount}), and undoes the data changes made ` +
    `since the seed. Then it ${sets} and ${changes}.`;
  $("scenario-confirm").hidden = false;
}
$("scenario-cancel").onclick = () => { pendingScenario = null; $("scenario-confirm").hidden = true; };
$("scenario-load").onclick = async () => {
  const s = pendingScenario;
  $("scenario-confirm").hidden = true;
  if (!s) return;
  const {status, data} = await api("POST", `/scenarios/${s.name}`);
  if (status !== 200) { notice(data.error ? data.error.message : `Not loaded (${status})`, "error"); return; }
  const r = data.replaced;
  $("story").textContent = `${data.title}: ${data.story} (Replaced ${r.faultRules.length} fault rule(s), ` +
    `${r.requests} request(s) and ${r.events} event(s).)`;
  selectedId = null; $("request-detail").hidden = true;
  refresh();
};

// -- the live feed and a request opened ----------------------------------------------------------------------
function decidedBy(r) {
  if (r.status === null) return `${r.rule}: dropped`;
  return r.rule;
}
function bodyMessage(text) {
  try {
    const body = JSON.parse(text);
    return body.message || (body.error && body.error.message) || (body.errors && body.errors[0] && body.errors[0].message) || "";
  } catch (e) { return ""; }
}
function why(r) {
  const parts = [];
  if (r.rule.startsWith("fault:")) {
    const name = r.rule.slice(6);
    const vendor = catalogue.find((v) => v.vendor === r.vendor);
    const fault = vendor && vendor.faults.find((f) => f.name === name);
    const operation = vendor && vendor.operations.find((op) => op.operationId === r.operation);
    const sentHeader = Object.entries(r.headers).find(([k]) => k.toLowerCase() === "x-sandbox-fault");
    let body = {}; try { body = JSON.parse(r.body || "{}"); } catch (e) { /* not JSON */ }
    const magic = operation && operation.magicValues.find((m) => m.fault === name && body && body[m.name] === m.value);
    const trigger = sentHeader ? `asked for by the request's header X-Sandbox-Fault: ${sentHeader[1]}`
      : magic ? `asked for by the magic value ${magic.name}: ${magic.value} in the body`
      : "a fault rule of this world fired (see Faults)";
    parts.push(`Decided by the fault ${name}: ${trigger}.`);
    if (fault) parts.push(fault.description);
  } else if (r.rule === "ok") {
    parts.push(`Answered normally: the operation ran and answered ${r.status}.`);
  } else if (r.rule === "conforms" || r.rule === "violations") {
    parts.push(`Forwarded by the validation proxy: ${r.rule === "conforms" ? "request and response conform" : (r.findings || []).join("; ")}.`);
  } else {
    const message = bodyMessage(r.response);
    parts.push(`Refused by the rule ${r.rule}${message ? `: ${message}` : "."}`);
  }
  if (r.status === null) parts.push("The connection was dropped on purpose: the client received no answer at all.");
  if (r.delayMs) parts.push(`The answer was held ${r.delayMs} ms on purpose (X-Sandbox-Delay or a latency rule).`);
  if (r.truncated) parts.push("Part of the exchange was cut to keep the journal bounded.");
  return parts.join(" ");
}
function showDetail(r) {
  $("detail-title").textContent = `#${r.id} ${r.method} ${r.path} → ${r.status === null ? "no answer" : r.status} in ${r.durationMs} ms`;
  $("detail-why").textContent = why(r);
  fill($("detail-request-headers"), Object.entries(r.headers).map(([k, v]) => [cell(k), cell(v, "mono")]));
  fill($("detail-response-headers"), Object.entries(r.responseHeaders || {}).map(([k, v]) => [cell(k), cell(v, "mono")]));
  $("detail-request-body").textContent = pretty(r.body);
  $("detail-response-body").textContent = r.status === null ? "(no answer: the connection was dropped)" : pretty(r.response);
  $("request-detail").hidden = false;
}
$("detail-close").onclick = () => { selectedId = null; $("request-detail").hidden = true; loadFeed(); };
$("request-rows").addEventListener("click", (event) => {
  const row = event.target.closest("tr");
  if (!row || !row.dataset.id) return;
  selectedId = Number(row.dataset.id);
  const entry = requestsById.get(selectedId);
  if (entry) showDetail(entry);
  for (const tr of $("request-rows").querySelectorAll("tr")) tr.classList.toggle("selected", tr === row);
});

async function loadFeed() {
  const {data} = await api("GET", "/requests");
  journalSize = data.requests.length;
  const newest = data.requests.slice(-50).reverse();
  requestsById = new Map(newest.map((r) => [r.id, r]));
  fill($("request-rows"), newest.map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.id = r.id; tr.tabIndex = 0; tr.className = "clickable" + (r.id === selectedId ? " selected" : "");
    const status = cell(r.status === null ? "dropped" : r.status, r.status !== null && r.status < 400 ? "status-ok" : "status-error");
    tr.append(cell(r.time.slice(11, 23)), cell(r.method), cell(r.path, "path"), status, cell(decidedBy(r)), cell(r.durationMs));
    return tr;
  }));
}

async function loadEvents() {
  const {data} = await api("GET", "/events");
  eventCount = data.events.length;
  fill($("event-rows"), data.events.slice(-30).reverse().map((e) => {
    const details = Object.entries(e.payload || {}).map(([k, v]) => `${k}: ${short(v)}`).join(" · ");
    return [cell(e.time.slice(11, 23)), cell(e.name), cell(details)];
  }));
}

async function refresh() {
  if (locked) return;
  try { await Promise.all([loadFaults(), loadFeed(), loadEvents(), loadClock(), loadInbox()]); } catch (e) { /* shown by lock() */ }
}
async function loadAll() {
  if (locked) return;
  try {
    await Promise.all([loadCatalogue(), loadCredentials(), loadScenarios(), loadWorlds()]);
    await refresh();
  } catch (e) { /* shown by lock() */ }
}
loadVendors();
loadAll();
setInterval(refresh, 1000);  // the live feed
