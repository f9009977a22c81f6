// The trainers' page: everything here goes through the control API, as any other client would (same-origin JSON).
const $ = (id) => document.getElementById(id);
const tokenInput = $("admin-token");
tokenInput.value = localStorage.getItem("sandboxAdminToken") || "";
$("token-form").hidden = !tokenInput.value;  // shown when a token is in use or the control API asks for one
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
  $("token-form").hidden = false;
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
// A path that may wrap after each slash (not in the middle of a segment unless it must).
function pathNodes(path) {
  return path.split(/(?<=\/)/).flatMap((part, i) => i ? [document.createElement("wbr"), part] : [part]);
}
// Copy text: the Clipboard API where the page is a secure context (127.0.0.1, localhost, https), else a selection.
async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) { await navigator.clipboard.writeText(text); return true; }
  } catch (e) { /* fall back to a selection */ }
  const area = document.createElement("textarea");
  area.value = text; area.setAttribute("readonly", ""); area.style.position = "fixed"; area.style.opacity = "0";
  document.body.append(area); area.select();
  let done = false;
  try { done = document.execCommand("copy"); } catch (e) { done = false; }
  area.remove();
  return done;
}
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  const done = await copyText(button.dataset.copy);
  button.textContent = done ? "copied" : "select it";
  button.classList.toggle("done", done);
  setTimeout(() => { button.textContent = "copy"; button.classList.remove("done"); }, 1500);
});
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

// A credential's headers, one a line, each with a button that copies the line as a client sends it.
function headerLines(headers) {
  const td = document.createElement("td");
  td.className = "secrets";
  for (const [name, value] of Object.entries(headers)) {
    const line = document.createElement("div");
    line.className = "secret";
    const copy = document.createElement("button");
    copy.type = "button"; copy.className = "copy"; copy.textContent = "copy";
    copy.dataset.copy = `${name}: ${value}`; copy.title = `Copy "${name}: ${value}"`;
    const code = document.createElement("code");
    code.textContent = `${name}: ${value}`;
    line.append(copy, code);
    td.append(line);
  }
  return td;
}
// The name, with its purpose and tenant under it; the vendor; the headers, which get the width.
function nameCell(name, note) {
  const td = cell(name, "name");
  if (note) { const small = document.createElement("div"); small.className = "hint"; small.textContent = note; td.append(small); }
  return td;
}
function credentialRows(credentials) {
  return credentials.map((c) => [nameCell(c.name, [c.purpose, c.tenant ? `Tenant ${c.tenant}.` : ""].filter(Boolean).join(" ")),
                                 cell(c.vendor, "vendor"), headerLines(c.headers)]);
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
$("world").addEventListener("change", () => {
  selectedId = null; $("request-detail").hidden = true; forgetRules(); feedShown = ""; loadAll();
});

$("create-workspace").onclick = async () => {
  const {status, data} = await api("POST", "/workspaces", {size: 20}, {world: false});
  if (status !== 201) { notice(data.error ? data.error.message : `Could not create a workspace (${status})`, "error"); return; }
  const box = $("workspace-result");
  $("workspace-said").textContent = `Workspace ${data.id.slice(0, 10)}… made: its credentials are in the New workspace ` +
    "panel below.";
  $("workspace-said").hidden = false;
  const intro = document.createElement("p");
  intro.textContent = `Workspace ${data.id} (seed ${data.seed}, size ${data.size}): its credentials, for every vendor ` +
    `(${data.credentials.length}). Control calls act on it with X-Sandbox-Workspace: ${data.id}`;
  const watch = document.createElement("button");
  watch.textContent = "Watch this workspace"; watch.id = "watch-workspace";
  watch.onclick = async () => {
    await loadWorlds(); $("world").value = data.id;
    selectedId = null; $("request-detail").hidden = true; forgetRules(); feedShown = ""; loadAll();
  };
  const table = document.createElement("table");
  table.id = "workspace-credentials"; table.className = "creds";
  const head = document.createElement("thead");
  head.innerHTML = "<tr><th>name</th><th>vendor</th><th>headers</th></tr>";
  const body = document.createElement("tbody");
  body.id = "workspace-credential-rows";
  fill(body, data.credentials.map((c) => [cell(c.name, "name"), cell(c.vendor, "vendor"), headerLines(c.headers)]));
  table.append(head, body);
  box.replaceChildren(intro, watch, table);
  $("workspace").hidden = false;
  $("workspace").scrollIntoView({block: "nearest"});
  loadWorlds();
};

let loadedScenario = null;  // the title of the scenario this page loaded last, until a reset
const worldName = () => $("world").value ? `workspace ${$("world").value.slice(0, 10)}…` : "the default world";
const counted = (n, one, many) => `${n} ${n === 1 ? one : many}`;
$("reset").onclick = async () => {
  let start = "";
  try {
    const {status, data} = await api("GET", "/health");
    if (status === 200) start = ` to seed ${data.seed}, size ${data.size}`;
  } catch (e) { return; }
  const scenario = loadedScenario ? `the scenario "${loadedScenario}"` : "any scenario loaded";
  $("reset-says").textContent = `Reset ${worldName()}${start}? It clears the journal (${counted(journalSize, "request", "requests")}), ` +
    `the events (${eventCount}), the fault rules on (${ruleList.length}) and ${scenario}, undoes every data change ` +
    "since the seed and puts the clock back where the world started. Workspaces are kept.";
  $("reset-said").hidden = true;
  $("reset-ask").hidden = false;
  $("reset-confirm").focus();
};
$("reset-cancel").onclick = () => {
  $("reset-ask").hidden = true;
  $("reset-said").textContent = "Reset cancelled: nothing changed.";
  $("reset-said").hidden = false;
};
$("reset-confirm").onclick = async () => {
  $("reset-ask").hidden = true;
  const before = {requests: journalSize, events: eventCount, rules: ruleList.length, scenario: loadedScenario};
  const {status, data} = await api("POST", "/reset", {});
  if (status !== 200) {
    $("reset-said").textContent = `Not reset: ${data.error ? data.error.message : status}`;
    $("reset-said").hidden = false;
    return;
  }
  $("reset-said").textContent = `Reset ${worldName()}: seed ${data.seed}, size ${data.size}; journal ` +
    `(${counted(before.requests, "request", "requests")}), events (${before.events}), fault rules (${before.rules}) and ` +
    `scenario${before.scenario ? ` "${before.scenario}"` : ""} cleared; data and clock back to the start.`;
  $("reset-said").hidden = false;
  loadedScenario = null;
  $("story").textContent = "";
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
    return [cell(d.receivedAt.slice(11, 19), "time"), cell(body.type), cell((body.data || {}).orderID), cell(d.headers["Webhook-Id"] || d.headers["webhook-id"])];
  }));
}

// -- faults ------------------------------------------------------------------------------------------------
let autoLatency = true;  // the latency field holds the page's default, not the trainer's choice
async function loadCatalogue() {
  const {data} = await api("GET", "/faults/catalogue");
  catalogue = data.vendors;
  const vendor = $("fault-vendor").value || "returning-ai";
  const operation = $("fault-operation").value;
  $("fault-vendor").replaceChildren(...catalogue.map((v) => new Option(v.vendor, v.vendor)));
  $("fault-vendor").value = catalogue.some((v) => v.vendor === vendor) ? vendor : catalogue[0].vendor;
  updateOperations(operation);
}
const vendorEntry = () => catalogue.find((v) => v.vendor === $("fault-vendor").value);
// Every operation of the vendor unless the trainer picks one: a rule switched on live then catches the call being
// demoed, whichever it is.
function updateOperations(keep) {
  const vendor = vendorEntry();
  const operations = vendor ? vendor.operations : [];
  $("fault-operation").replaceChildren(new Option("* every operation", "*"),
    ...operations.map((op) => new Option(op.operationId, op.operationId)));
  $("fault-operation").value = typeof keep === "string" && operations.some((op) => op.operationId === keep) ? keep : "*";
  updateFaults();
}
function describeScope() {
  const vendor = $("fault-vendor").value, operation = $("fault-operation").value;
  const count = (vendorEntry() || {operations: []}).operations.length;
  $("fault-scope").textContent = operation === "*"
    ? `Every operation of ${vendor} (${count}): the rule catches whichever ${vendor} call you make next.`
    : `Only ${operation}: other ${vendor} calls answer as usual.`;
  $("fault-scope").classList.toggle("narrow", operation !== "*");
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
  describeScope();
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
              (rule.latencyMs ? `, answers held ${rule.latencyMs} ms` : "") + ". Its Switch off button is in the list.");
  refresh();
});

// A rule's row is kept from one poll to the next (its cells' text updated), so the Switch off button under the
// pointer is never swapped for another between press and release: one click is enough.
const ruleRows = new Map();    // rule id -> its row
const switchedOff = new Map(); // id switched off here -> the polls started by then, whose answer may still list it
let faultPolls = 0;
function forgetRules() { ruleRows.clear(); switchedOff.clear(); $("fault-rows").replaceChildren(); }
function ruleRow(r) {
  const tr = document.createElement("tr");
  const what = document.createElement("td"); what.className = "rule";
  const name = document.createElement("strong"), where = document.createElement("span"), terms = document.createElement("div");
  terms.className = "hint";
  what.append(name, where, terms);
  const fired = cell("", "fired");
  const off = document.createElement("button");
  off.type = "button"; off.className = "off"; off.textContent = "Switch off"; off.dataset.id = r.id;
  const td = document.createElement("td"); td.className = "act"; td.append(off);
  tr.append(what, fired, td);
  return tr;
}
function showRule(tr, r) {
  const [name, where, terms] = tr.cells[0].children;
  name.textContent = r.fault;
  where.textContent = ` on ${r.vendor}, ${r.operation === "*" ? "every operation" : r.operation}`;
  terms.textContent = [`p ${r.probability}`, r.latencyMs ? `held ${r.latencyMs} ms` : "",
                       r.count === null || r.count === undefined ? "" : `${r.count} more time(s)`,
                       r.applied ? "applied" : ""].filter(Boolean).join(" · ");
  tr.cells[1].textContent = r.fired;
  tr.cells[2].firstChild.title = `Switch off: ${ruleText(r)}`;
}
async function loadFaults() {
  const poll = ++faultPolls;
  const {data} = await api("GET", "/faults");
  ruleList = data.rules.filter((r) => !(switchedOff.get(r.id) >= poll));
  for (const [id, last] of switchedOff) if (poll > last) switchedOff.delete(id);  // a later rule may reuse the id
  const body = $("fault-rows");
  const ids = new Set(ruleList.map((r) => r.id));
  for (const [id, tr] of ruleRows) if (!ids.has(id)) { tr.remove(); ruleRows.delete(id); }
  ruleList.forEach((r, i) => {
    if (!ruleRows.has(r.id)) ruleRows.set(r.id, ruleRow(r));
    const tr = ruleRows.get(r.id);
    showRule(tr, r);
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
  });
  $("no-rules").hidden = ruleList.length > 0;
}
$("fault-rows").addEventListener("click", async (event) => {
  const button = event.target.closest("button.off");
  if (!button || button.disabled) return;
  const id = Number(button.dataset.id);
  const rule = ruleList.find((r) => r.id === id);
  button.disabled = true; button.textContent = "switching off…";
  const {status, data} = await api("DELETE", `/faults/${id}`);
  if (status === 200 || status === 404) {  // 404: gone already
    switchedOff.set(id, faultPolls);
    const tr = ruleRows.get(id);
    if (tr) { tr.remove(); ruleRows.delete(id); }
    ruleList = ruleList.filter((r) => r.id !== id);
    $("no-rules").hidden = ruleList.length > 0;
    notice(rule ? `Fault off: ${ruleText(rule)}.` : "Fault rule off.");
  } else {
    button.disabled = false; button.textContent = "Switch off";
    notice(data.error ? data.error.message : `Not switched off (${status})`, "error");
  }
  refresh();
});

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
  loadedScenario = data.title;
  forgetRules();
  $("story").textContent = `${data.title}: ${data.story} (Replaced ${r.faultRules.length} fault rule(s), ` +
    `${r.requests} request(s) and ${r.events} event(s).)`;
  showSteps(s.steps);
  selectedId = null; $("request-detail").hidden = true;
  refresh();
};

// A scenario's story as numbered steps: a step with a request has a button that sends it with the watched world's
// demo credential and shows the answer beside it; the next step is then marked as the one to tell.
const BASES = {...Object.fromEntries(VENDORS), sandbox: "/_sandbox"};
function showSteps(steps) {
  $("story-steps").replaceChildren(...steps.map((step, number) => {
    const li = document.createElement("li");
    li.className = "step" + (number === 0 ? " next" : "");
    const say = document.createElement("p"); say.textContent = step.say;
    li.append(say);
    if (step.request) {
      const q = step.request;
      const button = document.createElement("button");
      button.textContent = `Send ${q.method} ${q.path}` + (step.repeat > 1 ? ` (${step.repeat} times)` : "");
      const answer = document.createElement("p"); answer.className = "answer";
      button.onclick = () => sendStep(step, li, answer);
      li.append(button, answer);
    }
    return li;
  }));
}
async function sendStep(step, li, answer) {
  const q = step.request;
  const headers = q.body === undefined ? {} : {"Content-Type": "application/json"};
  if (q.vendor === "sandbox") {
    if (tokenInput.value) headers["X-Sandbox-Admin-Token"] = tokenInput.value;
    if ($("world").value) headers["X-Sandbox-Workspace"] = $("world").value;
  } else {
    const {data} = await api("GET", "/credentials");
    const mine = data.credentials.filter((c) => c.vendor === q.vendor);
    Object.assign(headers, (mine.find((c) => !q.credential || c.name === q.credential) || mine[0]).headers);
  }
  let status = "no answer (the connection was dropped)", text = "";
  for (let n = 0; n < (step.repeat || 1); n += 1) {
    try {
      const response = await fetch(BASES[q.vendor] + q.path, {method: q.method, headers,
        body: q.body === undefined ? undefined : JSON.stringify(q.body)});
      status = response.status; text = await response.text();
    } catch (e) { status = "no answer (the connection was dropped)"; text = ""; }
  }
  const said = step.expect === undefined ? "" : status === step.expect ? " - as the story says" : ` - the story says ${step.expect}`;
  answer.textContent = `→ ${status}${said}${bodyMessage(text) ? `: ${bodyMessage(text)}` : ""}`;
  answer.classList.toggle("unexpected", step.expect !== undefined && status !== step.expect);
  li.classList.remove("next");
  li.classList.add("done");
  const following = li.nextElementSibling;
  if (following) following.classList.add("next");
  refresh();
}

// -- the live feed and a request opened ----------------------------------------------------------------------
function decidedBy(r) {
  const reason = r.reason || r.rule;  // entries journaled before the sandbox said it in words have the rule only
  return r.status === null ? `${reason}: dropped` : reason;
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
  showChanges(r.changes || []);
  $("request-detail").hidden = false;
}
// Each record the request changed, before and after, the changed fields' lines marked.
function showChanges(changes) {
  $("detail-changes").hidden = !changes.length;
  $("detail-change-list").replaceChildren(...changes.map((c) => {
    const box = document.createElement("div"); box.className = "change";
    const title = document.createElement("h4");
    const what = c.before === null ? "created" : c.after === null ? "deleted" : `changed: ${c.changed.join(", ")}`;
    title.textContent = `${c.collection} ${c.key} - ${what}`;
    box.append(title);
    if (c.cut) {
      const note = document.createElement("p"); note.className = "hint";
      note.textContent = "Too large to keep whole in the journal: only the changed fields' names are kept.";
      box.append(note);
      return box;
    }
    const pair = document.createElement("div"); pair.className = "pair";
    pair.append(recordView("before", c.before, c.changed), recordView("after", c.after, c.changed));
    box.append(pair);
    return box;
  }));
}
function recordView(label, record, changed) {
  const side = document.createElement("div");
  const heading = document.createElement("h5"); heading.textContent = label;
  const pre = document.createElement("pre"); pre.className = "record";
  if (record === null) { pre.textContent = "(none)"; side.append(heading, pre); return side; }
  // One line per leaf field, its dotted path first, so that a changed field is one marked line.
  const lines = [];
  const walk = (value, path) => {
    if (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length) {
      for (const [k, v] of Object.entries(value)) walk(v, path ? `${path}.${k}` : k);
    } else lines.push([path, JSON.stringify(value)]);
  };
  walk(record, "");
  pre.replaceChildren(...lines.map(([path, value]) => {
    const line = document.createElement("span");
    line.textContent = `${path}: ${value}\n`;
    if (changed.some((c) => path === c || path.startsWith(`${c}.`))) line.className = "changed";
    return line;
  }));
  side.append(heading, pre);
  return side;
}
$("detail-close").onclick = () => { selectedId = null; $("request-detail").hidden = true; loadFeed(); };
$("request-rows").addEventListener("click", (event) => {
  const row = event.target.closest("tr");
  if (!row || !row.dataset.id) return;
  selectedId = Number(row.dataset.id);
  const entry = requestsById.get(selectedId);
  if (entry) showDetail(entry);
  for (const tr of $("request-rows").querySelectorAll("tr")) tr.classList.toggle("selected", tr === row);
  feedShown = "";
});
$("request-rows").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && event.target.closest("tr")) event.target.closest("tr").click();
});

let feedShown = "";  // what the feed shows (ids, statuses, the row opened): redrawn only when that changes
function timeCell(time) {
  const td = cell(time.slice(11, 19), "time");
  const fraction = document.createElement("span"); fraction.className = "fraction"; fraction.textContent = time.slice(19, 23);
  td.append(fraction);
  return td;
}
async function loadFeed() {
  const {data} = await api("GET", "/requests");
  journalSize = data.requests.length;
  const newest = data.requests.slice(-50).reverse();
  requestsById = new Map(newest.map((r) => [r.id, r]));
  const shown = `${$("world").value}|${selectedId}|` + newest.map((r) => `${r.id}:${r.status}`).join(",");
  if (shown === feedShown) return;
  feedShown = shown;
  fill($("request-rows"), newest.map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.id = r.id; tr.tabIndex = 0; tr.className = "clickable" + (r.id === selectedId ? " selected" : "");
    const status = cell(r.status === null ? "dropped" : r.status, "status " + (r.status !== null && r.status < 400 ? "status-ok" : "status-error"));
    const path = cell("", "path"); path.append(...pathNodes(r.path));
    const decider = cell(decidedBy(r), "decider"); decider.title = decidedBy(r);
    tr.append(timeCell(r.time), cell(r.method, "method"), path, status, decider, cell(r.durationMs, "ms"));
    return tr;
  }));
}

async function loadEvents() {
  const {data} = await api("GET", "/events");
  eventCount = data.events.length;
  fill($("event-rows"), data.events.slice(-30).reverse().map((e) => {
    const details = Object.entries(e.payload || {}).map(([k, v]) => `${k}: ${short(v)}`).join(" · ");
    return [timeCell(e.time), cell(e.name), cell(details)];
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
