/* landsight review map: layers, a list of items (worst tiles, largest changes) to walk with the keyboard,
   review marks kept in localStorage and exported as GeoJSON. No network access: everything is in the page. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("landsight-data").textContent);
  var map = L.map("map", { keyboard: false, zoomSnap: 0.25, preferCanvas: false });
  var overlays = {};
  var extent = L.latLngBounds([]);

  function label(name, color) {
    return color ? '<span class="swatch" style="background:' + color + '"></span>' + name : name;
  }

  function popupFor(title, props) {
    var root = document.createElement("div");
    var head = document.createElement("strong");
    head.textContent = title;
    root.appendChild(head);
    var table = document.createElement("table");
    table.className = "popup-table";
    Object.keys(props).forEach(function (key) {
      var value = props[key];
      if (value === null || value === "" || typeof value === "object") { return; }
      var row = table.insertRow();
      row.insertCell().textContent = key;
      row.insertCell().textContent = String(value);
    });
    root.appendChild(table);
    return root;
  }

  data.images.forEach(function (img) {
    var layer = L.imageOverlay(img.href, img.bounds, { opacity: img.opacity, className: "overlay-image" });
    if (img.visible) { layer.addTo(map); }
    overlays[label(img.name, null)] = layer;
    extent.extend(img.bounds);
  });

  data.layers.forEach(function (spec) {
    var layer = L.geoJSON(spec.data, {
      style: function () {
        return { color: spec.color, weight: spec.weight, fillColor: spec.color, fillOpacity: spec.fill, fill: spec.fill > 0 };
      },
      onEachFeature: function (feature, lyr) { lyr.bindPopup(popupFor(spec.name, feature.properties || {})); }
    });
    layer.landsightName = spec.name;
    if (spec.visible) { layer.addTo(map); }
    overlays[label(spec.name, spec.color)] = layer;
    if (spec.data.features.length) { extent.extend(layer.getBounds()); }
  });

  var items = data.items.data.features;
  var highlight = L.geoJSON(null, { style: { color: "#ff0000", weight: 3, fill: false }, interactive: false });
  highlight.addTo(map);
  overlays[label(data.items.title + " (outline)", "#ff0000")] = highlight;
  L.control.layers(null, overlays, { collapsed: false }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);
  if (extent.isValid()) { map.fitBounds(extent, { animate: false }); } else { map.setView([0, 0], 2); }

  var storageKey = "landsight-review:" + data.storage_key;
  var marks = {};
  try { marks = JSON.parse(window.localStorage.getItem(storageKey) || "{}"); } catch (err) { marks = {}; }
  function saveMarks() {
    try { window.localStorage.setItem(storageKey, JSON.stringify(marks)); } catch (err) { /* storage disabled */ }
  }

  var list = document.getElementById("items");
  var status = document.getElementById("status");
  document.getElementById("items-title").textContent = data.items.title + " (" + items.length + ")";
  document.getElementById("provenance-text").textContent = JSON.stringify(data.provenance, null, 2);
  var current = -1;

  function itemText(feature) {
    var props = feature.properties;
    var parts = data.items.label_keys.map(function (key) { return key + " " + props[key]; });
    return props.id + (parts.length ? " \u2013 " + parts.join(", ") : "");
  }

  function renderRow(i) {
    var li = list.children[i];
    var mark = marks[items[i].properties.id];
    li.className = (i === current ? "current " : "") + (mark ? mark.mark : "");
  }

  items.forEach(function (feature, i) {
    var li = document.createElement("li");
    li.textContent = itemText(feature);
    li.dataset.index = String(i);
    li.dataset.id = feature.properties.id;
    li.addEventListener("click", function () { select(i); });
    list.appendChild(li);
    renderRow(i);
  });

  function select(i) {
    if (!items.length) { status.textContent = "nothing to review"; return; }
    var previous = current;
    current = ((i % items.length) + items.length) % items.length;
    if (previous >= 0) { renderRow(previous); }
    renderRow(current);
    highlight.clearLayers();
    highlight.addData(items[current]);
    map.fitBounds(highlight.getBounds(), { padding: [40, 40], maxZoom: data.items.max_zoom, animate: false });
    list.children[current].scrollIntoView({ block: "nearest" });
    status.textContent = "item " + (current + 1) + " of " + items.length + ": " + items[current].properties.id;
  }

  function mark(kind) {
    if (current < 0) { status.textContent = "select an item first (n)"; return; }
    var id = items[current].properties.id;
    if (kind) { marks[id] = { mark: kind, marked_utc: new Date().toISOString() }; } else { delete marks[id]; }
    saveMarks();
    renderRow(current);
    status.textContent = id + ": " + (kind || "mark cleared");
  }

  function marksCollection() {
    var features = items.filter(function (f) { return marks[f.properties.id]; }).map(function (f) {
      var props = Object.assign({}, f.properties, marks[f.properties.id]);
      return { type: "Feature", geometry: f.geometry, properties: props };
    });
    return { type: "FeatureCollection", name: "review-marks", features: features };
  }

  function exportMarks() {
    var text = JSON.stringify(marksCollection(), null, 1);
    var blob = new Blob([text], { type: "application/geo+json" });
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "review-marks.geojson";
    document.body.appendChild(link);
    link.click();
    link.remove();
    window.setTimeout(function () { URL.revokeObjectURL(link.href); }, 10000);
    status.textContent = "exported " + Object.keys(marks).length + " mark(s)";
  }

  var actions = {
    n: function () { select(current + 1); }, j: function () { select(current + 1); },
    ArrowDown: function () { select(current + 1); },
    p: function () { select(current - 1); }, k: function () { select(current - 1); },
    ArrowUp: function () { select(current - 1); },
    r: function () { mark("reviewed"); }, i: function () { mark("ignore"); }, u: function () { mark(null); },
    e: exportMarks
  };
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var tag = event.target && event.target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA") { return; }
    var action = actions[event.key];
    if (!action) { return; }
    event.preventDefault();
    action();
  });
  document.getElementById("btn-next").addEventListener("click", actions.n);
  document.getElementById("btn-prev").addEventListener("click", actions.p);
  document.getElementById("btn-reviewed").addEventListener("click", actions.r);
  document.getElementById("btn-ignore").addEventListener("click", actions.i);
  document.getElementById("btn-export").addEventListener("click", exportMarks);

  window.landsightReview = {
    map: map, select: select, current: function () { return current; }, marks: marksCollection,
    layers: function () { return Object.keys(overlays); }
  };
  document.body.dataset.ready = "true";
}());
