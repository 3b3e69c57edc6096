// Progressive enhancement only: every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // "Select all" checkbox for bulk replay.
  for (const all of document.querySelectorAll("input[data-select-all]")) {
    all.addEventListener("change", () => {
      for (const box of document.querySelectorAll(`input[type=checkbox][name="${all.dataset.selectAll}"]`)) {
        box.checked = all.checked;
      }
    });
  }
  // Picking a sample in the sandbox loads it right away.
  const picker = document.querySelector("select[data-sample-picker]");
  if (picker) {
    picker.addEventListener("change", () => {
      if (picker.value) {
        document.getElementById("document").value = "";
        const url = new URL(window.location.href);
        url.searchParams.set("sample", picker.value);
        url.searchParams.set("mapping_id", document.getElementById("mapping-id").value);
        window.location.assign(url.toString());
      }
    });
  }
  // Live KPI panels: fetch the server-rendered fragment and swap it in.
  const live = document.querySelector("[data-live]");
  if (live) {
    const refresh = async () => {
      try {
        const response = await fetch(live.dataset.live, { credentials: "same-origin" });
        if (response.ok) live.innerHTML = await response.text();
      } catch (_) { /* keep the last figures; the next tick retries */ }
    };
    setInterval(refresh, 5000);
  }
});
