/* Lobby big screen: live numbers and a clock; nothing to touch. */
(function () {
  "use strict";
  var F = window.Footfall;
  var clock = document.getElementById("clock");

  function tick() {
    if (clock) clock.textContent = F.formatTime(new Date().toISOString(), false);
  }

  tick();
  setInterval(tick, 10000);
  F.connect(null);
})();
