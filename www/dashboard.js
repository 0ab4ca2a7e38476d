// The demo dashboard: embeds the widget through its plain JavaScript entry, `mount`, as a
// dashboard in any framework would, and lists the account's numbers through the host.
// No token is involved anywhere on this page: the widget host holds it server-side.

let currentQr = null;
let currentCode = null;

async function refreshNumbers() {
  const response = await fetch("/widget/numbers");
  if (!response.ok) return;
  const { data } = await response.json();
  const table = document.getElementById("numbers");
  const body = table.querySelector("tbody");
  body.replaceChildren(
    ...data.map((n) => {
      const row = document.createElement("tr");
      row.dataset.channel = n.channel_id;
      for (const text of [n.name, n.phone_number, n.push_name || "—", n.status]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    }),
  );
  table.hidden = data.length === 0;
  document.getElementById("numbers-empty").hidden = data.length !== 0;
}

// The simulated phone panel exists only when the server runs the simulated linker.
async function setUpSimulatedPhone() {
  const probe = await fetch("/sim/messages?channel_id=ch_00000000000000000000000000000000");
  if (probe.status === 404 && (await probe.json()).error?.code === "NOT_FOUND") return;
  const panel = document.getElementById("sim-phone");
  panel.hidden = false;
  // The phone's answer: it scans or types what the widget shows, as a successful link.
  const phone = (path, fields) =>
    fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        ...fields,
        push_name: document.getElementById("sim-name").value,
        outcome: "success",
      }),
    });
  const button = document.getElementById("sim-scan");
  button.addEventListener("click", () => {
    if (currentQr) {
      phone("/sim/scan", { qr: currentQr, phone_number: document.getElementById("sim-number").value });
    }
  });
  // A code for a phone number: the simulated phone types it (as the number it was asked for).
  const type = document.getElementById("sim-enter-code");
  type.addEventListener("click", () => {
    if (currentCode) {
      phone("/sim/enter-code", { code: currentCode.code, phone_number: currentCode.phone_number });
    }
  });
  // Follow the code on screen: the widget's canvas is redrawn for each code; the panel reads
  // the current one from the same stream the widget uses (see onQr and onPairingCode below).
  setInterval(() => {
    button.disabled = !currentQr || !!currentCode;
    type.disabled = !currentCode;
  }, 250);
}

addEventListener("TrunkApplicationStarted", () => {
  const { mount } = window.wasmBindings;
  mount(document.getElementById("whatsapp-connect"), {
    onConnected: () => {
      currentQr = currentCode = null;
      refreshNumbers();
    },
    onFailed: () => (currentQr = currentCode = null),
    onQr: (qr) => (currentQr = qr),
    onPairingCode: (code) => (currentCode = code),
  });
  refreshNumbers();
  setUpSimulatedPhone();
});
