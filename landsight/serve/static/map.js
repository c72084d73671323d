// landsight map page: the server's imagery and predicted tiles, fetched with the bearer token when one is set.
(function () {
  "use strict";
  const status = document.getElementById("status");
  const token = () => sessionStorage.getItem("landsight-token") || "";
  const headers = () => (token() ? { Authorization: "Bearer " + token() } : {});

  // Tiles come through fetch() so that the Authorization header can travel with them.
  const FetchTiles = L.TileLayer.extend({
    createTile: function (coords, done) {
      const img = document.createElement("img");
      img.alt = "";
      fetch(this.getTileUrl(coords), { headers: headers() })
        .then((r) => (r.ok ? r.blob() : Promise.reject(new Error("tile " + r.status))))
        .then((blob) => {
          img.onload = () => { URL.revokeObjectURL(img.src); done(null, img); };
          img.src = URL.createObjectURL(blob);
        })
        .catch((err) => { status.textContent = String(err); done(err, img); });
      return img;
    },
  });

  async function getJson(url) {
    const r = await fetch(url, { headers: headers() });
    if (r.status === 401) {
      const form = document.getElementById("token-form");
      form.hidden = false;
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        sessionStorage.setItem("landsight-token", document.getElementById("token").value);
        location.reload();
      });
      throw new Error("this server needs a bearer token");
    }
    if (!r.ok) throw new Error(url + ": " + r.status);
    return r.json();
  }

  async function main() {
    const [sources, models] = await Promise.all([getJson("/v1/sources"), getJson("/v1/models")]);
    const map = L.map("map", { zoomControl: true });
    window.landsightMap = map;
    const overlays = {};
    let pending = 0;
    const loaded = () => { pending -= 1; if (pending === 0) document.body.dataset.ready = "true"; };
    sources.forEach((s, i) => {
      const [w, south, e, north] = s.bounds;
      const bounds = L.latLngBounds([south, w], [north, e]);
      const options = { bounds: bounds, maxZoom: s.max_zoom, maxNativeZoom: s.max_zoom, tileSize: 256 };
      const imagery = new FetchTiles("/v1/sources/" + s.name + "/tiles/{z}/{x}/{y}.png", options);
      overlays["imagery: " + s.name] = imagery;
      if (i === 0) { imagery.addTo(map); pending += 1; imagery.once("load", loaded); }
      models.filter((m) => m.task === "segmentation").forEach((m, j) => {
        const layer = new FetchTiles("/v1/models/" + m.name + "/tiles/{z}/{x}/{y}.png?source=" + s.name,
          Object.assign({}, options, { minZoom: s.min_zoom }));
        overlays[m.name + " on " + s.name] = layer;
        if (i === 0 && j === 0) { layer.addTo(map); pending += 1; layer.once("load", loaded); }
      });
      if (i === 0) map.fitBounds(bounds);
    });
    if (!sources.length) {
      status.textContent = "no imagery source: start the server with --source NAME=RASTER";
      map.setView([0, 0], 2);
      document.body.dataset.ready = "true";
    }
    L.control.layers(null, overlays, { collapsed: false }).addTo(map);
  }

  main().catch((err) => { status.textContent = String(err); });
})();
