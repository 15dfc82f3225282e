/* The job page's log: follow the tail and filter by host. htmx appends the new lines (the
   poller in jobs/htmx/log.html); this file only watches the box. No inline script: the page's
   CSP forbids it. Without JavaScript the log still grows and the download link works; the
   filter and the Follow toggle stay hidden, as they would do nothing. */
(function () {
  "use strict";
  var BOTTOM_SLACK_PX = 4; // sub-pixel rounding leaves scrollTop a pixel short of the bottom

  function start(log, tools) {
    var follow = document.getElementById("log-follow");
    var select = document.getElementById("log-host");
    var following = true;

    function atBottom() {
      return log.scrollHeight - log.scrollTop - log.clientHeight <= BOTTOM_SLACK_PX;
    }
    function setFollowing(on) {
      following = on;
      follow.setAttribute("aria-pressed", String(on));
      if (on) log.scrollTop = log.scrollHeight;
    }
    function show(line) {
      var host = select.value;
      line.hidden = host !== "*" && line.getAttribute("data-host") !== host;
    }
    function known(host) {
      return Array.prototype.some.call(select.options, function (o) { return o.value === host; });
    }
    function addHost(host) {
      if (known(host)) return;
      var option = document.createElement("option");
      option.value = host;
      option.textContent = host || "console (no host)";
      select.appendChild(option);
    }

    tools.hidden = false;
    follow.addEventListener("click", function () { setFollowing(!following); });
    select.addEventListener("change", function () {
      log.querySelectorAll(".line[data-host]").forEach(show);
      if (following) log.scrollTop = log.scrollHeight;
    });
    // Scrolling up stops following; coming back to the bottom starts it again. Our own
    // scrolls always land on the bottom, so they never turn it off.
    log.addEventListener("scroll", function () {
      if (atBottom() !== following) setFollowing(atBottom());
    });
    // Each poll swaps the poller for the new lines and a new poller.
    new MutationObserver(function (changes) {
      changes.forEach(function (change) {
        change.addedNodes.forEach(function (node) {
          if (node.nodeType !== 1 || !node.hasAttribute("data-host")) return;
          addHost(node.getAttribute("data-host"));
          show(node);
        });
      });
      if (following) log.scrollTop = log.scrollHeight;
    }).observe(log, { childList: true });
    log.querySelectorAll(".line[data-host]").forEach(function (line) {
      addHost(line.getAttribute("data-host"));
    });
    setFollowing(true);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var log = document.getElementById("log");
    var tools = document.querySelector(".log-live-tools");
    if (log && tools) start(log, tools);
  });
})();
