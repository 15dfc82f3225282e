/* The cluster page's replication lag chart: uPlot (static/vendor/uplot) fed by the page's
   JSON endpoint, which reads only the database. No inline script: the page's CSP forbids it.
   The server works out the axes (clusters/web/lag_chart.py: round binary byte ticks, time
   ticks that fit the width, the date once per day) and inserts nulls where the monitor has no
   sample, so this file only draws: the lines, the alert threshold and a marker per failover
   or switchover. Those two are HTML elements over the plot (not canvas pixels) so they can
   carry a title and be read by assistive technology and by the browser tests.
   Without JavaScript the links still work and the page says where the history comes from. */
(function (root) {
  "use strict";
  var REFRESH_MS = 10000;
  var COLOURS = ["#0969da", "#bf3989", "#1a7f37", "#9a6700", "#8250df", "#cf222e"];
  var UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

  /* Bytes for people, the same rules as clusters/inventory/units.py size_text (a unit test
     runs both on the same numbers): binary units, at most three significant figures, below
     10 one decimal unless it is 0. */
  function sizeText(n) {
    if (n == null) return "—";
    var sign = n < 0 ? "-" : "", value = Math.abs(n), unit = 0;
    while (value >= 1024 && unit < UNITS.length - 1) { value /= 1024; unit++; }
    if (unit === 0) return sign + Math.floor(value) + " B";
    var text = value < 10 ? pyRound(value, 1) : pyRound(value, 0);
    if (text === "1024" && unit < UNITS.length - 1) { text = "1"; unit++; }
    if (text.slice(-2) === ".0") text = text.slice(0, -2);
    return sign + text + " " + UNITS[unit];
  }

  /* Python's f"{x:.Nf}" for N = 0 or 1. Both round the exact binary value; they differ only
     on an exact tie, which Python rounds to even and toFixed away from zero. The only exact
     ties are odd multiples of 0.5 (N = 0) and of 0.25 (N = 1, as 0.25 = 2.5 tenths). */
  function pyRound(x, digits) {
    var tie = (x * (digits ? 4 : 2)) % 2 === 1;
    if (!tie) return x.toFixed(digits);
    var scaled = x * Math.pow(10, digits), down = Math.floor(scaled);
    return ((down % 2 === 0 ? down : down + 1) / Math.pow(10, digits)).toFixed(digits);
  }

  root.HACenterUnits = { sizeText: sizeText };
  if (typeof document === "undefined") return; // loaded by the unit test under node

  function labelled(ticks, labels) {
    var byTick = {};
    ticks.forEach(function (t, i) { byTick[t] = labels[i]; });
    return byTick;
  }

  function options(state, width) {
    var data = state.data;
    var series = [{}];
    data.nodes.forEach(function (name, i) {
      var colour = COLOURS[i % COLOURS.length];
      series.push({ label: name + " lag", scale: "bytes", stroke: colour, width: 2,
                    value: function (u, v) { return sizeText(v); } });
      series.push({ label: name + " seconds", scale: "s", stroke: colour, width: 1, dash: [4, 4],
                    value: function (u, v) { return v == null ? "—" : v.toFixed(1) + " s"; } });
    });
    var opts = {
      width: width, height: 260, series: series,
      scales: {
        x: { time: true, range: function () { return [state.data.from, state.data.to]; } },
        bytes: { range: function () { return [0, state.data.y.top]; } },
        s: { range: function (u, min, max) { return [0, Math.max(max || 0, 1)]; } }
      },
      axes: [
        { size: 48, splits: function () { return state.data.x.ticks; },
          values: function (u, splits) {
            var byTick = labelled(state.data.x.ticks, state.data.x.labels);
            return splits.map(function (t) { return byTick[t] || ""; });
          } },
        { scale: "bytes", size: 76, splits: function () { return state.data.y.ticks; },
          values: function (u, splits) {
            var byTick = labelled(state.data.y.ticks, state.data.y.labels);
            return splits.map(function (v) { return byTick[v] || ""; });
          } },
        { scale: "s", side: 1, grid: { show: false }, values: function (u, vals) {
          return vals.map(function (v) { return v + " s"; }); } }
      ],
      hooks: { draw: [function (u) { marks(u, state.data); }] }
    };
    if (data.tz && uPlot.tzDate) {
      opts.tzDate = function (ts) { return uPlot.tzDate(new Date(ts * 1000), state.data.tz); };
    }
    return opts;
  }

  /* The alert threshold (a horizontal line, or a note when it is above the scale) and one
     vertical marker per failover or switchover, redrawn with the plot. */
  function marks(u, data) {
    u.over.querySelectorAll(".chart-mark").forEach(function (old) { old.remove(); });
    var threshold = document.createElement("div");
    var label = document.createElement("span");
    label.textContent = data.threshold_label;
    threshold.appendChild(label);
    if (data.threshold_bytes <= data.y.top) {
      threshold.className = "chart-mark chart-threshold";
      threshold.style.top = u.valToPos(data.threshold_bytes, "bytes") + "px";
    } else {
      threshold.className = "chart-mark chart-threshold chart-threshold-above";
      label.textContent = data.threshold_label + " (above this scale)";
    }
    threshold.setAttribute("data-bytes", String(data.threshold_bytes));
    u.over.appendChild(threshold);
    data.events.forEach(function (event) {
      if (event.t < data.from || event.t > data.to) return;
      var marker = document.createElement("div");
      marker.className = "chart-mark chart-event chart-event-" + event.kind;
      marker.style.left = u.valToPos(event.t, "x") + "px";
      marker.title = event.summary;
      marker.setAttribute("data-kind", event.kind);
      marker.setAttribute("data-t", String(event.t));
      var tag = document.createElement("span");
      tag.textContent = event.kind;
      marker.appendChild(tag);
      u.over.appendChild(marker);
    });
  }

  function columns(data) {
    var cols = [data.t];
    data.nodes.forEach(function (_name, i) { cols.push(data.bytes[i]); cols.push(data.seconds[i]); });
    return cols;
  }

  /* How many time labels the width holds: one per 80 px of plot ("HH:MM" over "5 Dec"). */
  function tickCount(box) {
    return Math.max(2, Math.floor(((box.clientWidth || 600) - 140) / 80));
  }

  function start(box) {
    var plot = null, range = box.dataset.range || "1h", resizeTimer = null;
    var state = { data: null };
    var empty = box.querySelector(".chart-empty");

    function load() {
      var url = box.dataset.url + "?range=" + encodeURIComponent(range) + "&ticks=" + tickCount(box);
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (data) {
          var has = data.t.length > 0;
          if (empty) empty.hidden = has;
          box.dataset.points = String(data.t.length);
          state.data = data;
          if (!has) { if (plot) { plot.destroy(); plot = null; } return; }
          if (plot && plot.series.length === 1 + 2 * data.nodes.length) {
            plot.setData(columns(data));
          } else {
            if (plot) plot.destroy();
            plot = new uPlot(options(state, box.clientWidth || 600), columns(data), box);
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
      // The time ticks were worked out for the old width: ask again once resizing stops.
      window.clearTimeout(resizeTimer);
      resizeTimer = window.setTimeout(load, 300);
    });
    load();
    return window.setInterval(load, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("lag-chart");
    if (box && window.uPlot) start(box);
  });
})(typeof window !== "undefined" ? window : globalThis);
