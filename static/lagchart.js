/* The cluster page's replication lag chart: uPlot (static/vendor/uplot) fed by the page's
   JSON endpoint, which reads only the database. No inline script: the page's CSP forbids it.
   Without JavaScript the links still work and the page says where the history comes from. */
(function () {
  "use strict";
  var REFRESH_MS = 10000;
  var COLOURS = ["#0969da", "#bf3989", "#1a7f37", "#9a6700", "#8250df", "#cf222e"];

  function bytes(v) {
    if (v == null) return "—";
    var units = ["B", "KB", "MB", "GB", "TB"], i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(1) : v) + " " + units[i];
  }

  function options(data, width) {
    var series = [{}];
    data.nodes.forEach(function (name, i) {
      var colour = COLOURS[i % COLOURS.length];
      series.push({ label: name + " lag", scale: "bytes", stroke: colour, width: 2,
                    value: function (u, v) { return bytes(v); } });
      series.push({ label: name + " seconds", scale: "s", stroke: colour, width: 1, dash: [4, 4],
                    value: function (u, v) { return v == null ? "—" : v.toFixed(1) + " s"; } });
    });
    return {
      width: width, height: 260, series: series,
      scales: { bytes: { range: function (u, min, max) { return [0, Math.max(max, 1024)]; } },
                s: { range: function (u, min, max) { return [0, Math.max(max, 1)]; } } },
      axes: [{}, { scale: "bytes", values: function (u, vals) { return vals.map(bytes); }, size: 70 },
             { scale: "s", side: 1, grid: { show: false }, values: function (u, vals) {
               return vals.map(function (v) { return v + " s"; }); } }]
    };
  }

  function columns(data) {
    var cols = [data.t];
    data.nodes.forEach(function (_name, i) { cols.push(data.bytes[i]); cols.push(data.seconds[i]); });
    return cols;
  }

  function start(box) {
    var plot = null, range = box.dataset.range || "1h", timer = null;
    var empty = box.querySelector(".chart-empty");

    function load() {
      fetch(box.dataset.url + "?range=" + encodeURIComponent(range), { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (data) {
          var has = data.t.length > 0;
          if (empty) empty.hidden = has;
          box.dataset.points = String(data.t.length);
          if (!has) { if (plot) { plot.destroy(); plot = null; } return; }
          if (plot && plot.series.length === 1 + 2 * data.nodes.length) {
            plot.setData(columns(data));
          } else {
            if (plot) plot.destroy();
            plot = new uPlot(options(data, box.clientWidth || 600), columns(data), box);
          }
        })
        .catch(function (err) { if (empty) { empty.hidden = false; empty.textContent = "Could not load the lag history (" + err.message + ")."; } });
    }

    document.querySelectorAll(".chart-tools a.range").forEach(function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        range = link.dataset.range;
        document.querySelectorAll(".chart-tools a.range").forEach(function (other) {
          other.setAttribute("aria-pressed", String(other === link));
        });
        if (plot) { plot.destroy(); plot = null; }
        load();
      });
    });
    window.addEventListener("resize", function () {
      if (plot) plot.setSize({ width: box.clientWidth, height: 260 });
    });
    load();
    timer = window.setInterval(load, REFRESH_MS);
    return timer;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("lag-chart");
    if (box && window.uPlot) start(box);
  });
})();
