// Small helpers only; every page works without JavaScript.
document.addEventListener("DOMContentLoaded", () => {
  // Filter a table's rows by the text typed into an input with data-filter="tableId".
  document.querySelectorAll("input[data-filter]").forEach((input) => {
    const table = document.getElementById(input.dataset.filter);
    if (!table) return;
    input.addEventListener("input", () => {
      const needle = input.value.trim().toLowerCase();
      table.querySelectorAll("tbody tr").forEach((row) => {
        row.hidden = needle !== "" && !row.textContent.toLowerCase().includes(needle);
      });
    });
  });
});

/* issue 18 — custodian18 */
// A long-running form (desensitization) says it is working and cannot be sent twice while the page waits.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button[data-busy]").forEach((button) => {
    const form = button.form;
    if (!form) return;
    form.addEventListener("submit", () => {
      button.textContent = button.dataset.busy;
      button.setAttribute("aria-busy", "true");
      setTimeout(() => { button.disabled = true; }, 0);
    });
  });
});
