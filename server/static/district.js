// District pages: refresh the live part (#live) every data-refresh-s seconds without reloading the page, so a
// sort choice and the scroll position stay. A failed fetch keeps the figures and says so.
(function () {
  var live = document.getElementById("live");
  if (!live) return;
  var every = parseInt(live.getAttribute("data-refresh-s"), 10) || 20;
  function refresh() {
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (fresh) { live.innerHTML = fresh.innerHTML; live.removeAttribute("data-stale"); }
      })
      .catch(function () { live.setAttribute("data-stale", "true"); });
  }
  setInterval(refresh, every * 1000);
})();
