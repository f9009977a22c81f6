// The trainers' page: everything here goes through the control API, like any other client would.
const $ = (id) => document.getElementById(id);
const tokenInput = $("admin-token");
tokenInput.value = localStorage.getItem("sandboxAdminToken") || "";
tokenInput.addEventListener("change", () => localStorage.setItem("sandboxAdminToken", tokenInput.value));

async function api(method, path, body) {
  const headers = {"Content-Type": "application/json"};
  if (tokenInput.value) headers["X-Sandbox-Admin-Token"] = tokenInput.value;
  const response = await fetch(`/_sandbox${path}`, {method, headers, body: body ? JSON.stringify(body) : undefined});
  return response.json();
}

const cell = (text) => { const td = document.createElement("td"); td.textContent = text; return td; };
function fill(tbody, rows) {
  tbody.replaceChildren(...rows.map((cells) => { const tr = document.createElement("tr"); tr.append(...cells); return tr; }));
}

async function loadVendors() {
  fill($("vendor-rows"), VENDORS.map((name) => {
    const link = document.createElement("a");
    link.href = `/_sandbox/specs/${name}.yaml`; link.textContent = `${name}.yaml`;
    const specCell = document.createElement("td"); specCell.append(link);
    const base = {"returning-ai": "/returning-ai/v1", "fabric": "/fabric/v3", "capillary": "/capillary"}[name] || `/${name}`;
    return [cell(name), cell(location.origin + base), specCell];
  }));
}

async function loadCredentials() {
  const {credentials} = await api("GET", "/credentials");
  fill($("credential-rows"), credentials.map((c) => [cell(c.vendor), cell(c.tenant), cell(c.purpose),
    cell(Object.entries(c.headers).map(([k, v]) => `${k}: ${v}`).join("\n"))]));
}

let catalogue = [];
async function loadCatalogue() {
  ({vendors: catalogue} = await api("GET", "/faults/catalogue"));
  $("fault-vendor").replaceChildren(...catalogue.map((v) => new Option(v.vendor, v.vendor)));
  updateFaultNames();
}
function updateFaultNames() {
  const vendor = catalogue.find((v) => v.vendor === $("fault-vendor").value);
  const generic = vendor ? vendor.faults.filter((f) => f.scope === "generic") : [];
  $("fault-name").replaceChildren(...generic.map((f) => new Option(f.name, f.name)));
}
$("fault-vendor").addEventListener("change", updateFaultNames);

async function loadFaults() {
  const {rules} = await api("GET", "/faults");
  fill($("fault-rows"), rules.map((r) => {
    const off = document.createElement("button");
    off.textContent = "off"; off.className = "off";
    off.onclick = async () => { await api("DELETE", `/faults/${r.id}`); refresh(); };
    const td = document.createElement("td"); td.append(off);
    return [cell(r.vendor), cell(r.operation), cell(r.fault), cell(r.probability), cell(r.fired), td];
  }));
}

$("fault-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  await api("POST", "/faults", {vendor: $("fault-vendor").value, fault: $("fault-name").value,
                                 probability: Number($("fault-probability").value)});
  refresh();
});

$("reset").onclick = async () => { await api("POST", "/reset"); $("story").textContent = "World reset to its seed."; refresh(); };
$("create-workspace").onclick = async () => {
  const ws = await api("POST", "/workspaces", {size: 20});
  $("workspace-result").textContent = `Workspace ${ws.id}: ` +
    ws.credentials.map((c) => `${c.vendor} ${Object.values(c.headers)[0]}`).slice(0, 3).join(" · ");
};

async function loadScenarios() {
  const {scenarios} = await api("GET", "/scenarios");
  $("scenario-buttons").replaceChildren(...scenarios.map((s) => {
    const button = document.createElement("button");
    button.textContent = s.title;
    button.onclick = async () => { const loaded = await api("POST", `/scenarios/${s.name}`); $("story").textContent = loaded.story; refresh(); };
    return button;
  }));
}

async function loadFeed() {
  const {requests} = await api("GET", "/requests");
  fill($("request-rows"), requests.slice(-20).reverse().map((r) => {
    const status = cell(r.status); status.className = r.status < 400 ? "status-ok" : "status-error";
    return [cell(r.time.slice(11, 23)), cell(r.vendor), cell(r.operation), status, cell(r.rule), cell(r.durationMs)];
  }));
  const {events} = await api("GET", "/events");
  $("event-rows").replaceChildren(...events.slice(-15).reverse().map((e) => {
    const li = document.createElement("li"); li.textContent = `${e.time.slice(11, 23)} ${e.name} ${JSON.stringify(e.payload)}`;
    return li;
  }));
}

function refresh() { loadFaults(); loadFeed(); }
loadVendors(); loadCredentials(); loadCatalogue(); loadScenarios(); refresh();
setInterval(refresh, 1000);  // the live feed
