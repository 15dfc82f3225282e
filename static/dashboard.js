/* The dashboard's tab: its title and favicon carry the clusters that need someone ("2 down ·
   1 degraded · HA Center", a red or yellow dot), after every refresh, so a tab in the background
   still tells the on-call operator. The server draws both at page load and puts the current
   ones on the strip of counts (#triage-counts: data-title, data-favicon), which the refresh
   replaces when the counts move; this file only copies them to the tab. It also stamps the
   "Updated" time when a refresh found nothing new (204: nothing is swapped in). No inline
   script: the page's CSP forbids it. */
(function () {
  "use strict";

  function syncTab() {
    var strip = document.getElementById("triage-counts");
    if (!strip) return;
    var title = strip.getAttribute("data-title");
    if (title && document.title !== title) document.title = title;
    var href = strip.getAttribute("data-favicon");
    var icon = document.querySelector('link[rel="icon"]');
    if (href && icon && icon.getAttribute("href") !== href) icon.setAttribute("href", href);
  }

  function stampChecked(event) {
    var poll = event.detail && event.detail.elt;
    if (!poll || poll.id !== "dashboard-poll" || event.detail.xhr.status !== 204) return;
    var checked = poll.querySelector(".checked");
    if (checked) checked.textContent = "Updated " + new Date().toISOString().slice(11, 19) + " UTC";
  }

  document.addEventListener("DOMContentLoaded", syncTab);
  // htmx:load fires for every element htmx adds, out-of-band swaps included.
  document.addEventListener("htmx:load", syncTab);
  document.addEventListener("htmx:afterRequest", stampChecked);
})();
