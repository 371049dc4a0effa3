// The inbox's player: the waveform with the speech marked, click to seek, 1× / 1.5× / 2×,
// skip silence, «последние 2 минуты», and the keys that let a head review without the mouse.
// The server computed the waveform and the speech segments when the recording arrived; every
// label is in the page (this file holds no text).
(function () {
  "use strict";

  var RATES = [1, 1.5, 2];
  var STEP_S = 10;
  var LAST_S = 120;
  // Silence shorter than this is not skipped: pauses between words belong to the speech.
  var MIN_SKIP_S = 1.5;

  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    if (tag !== "INPUT") return target.isContentEditable === true;
    var type = (target.getAttribute("type") || "text").toLowerCase();
    return type !== "radio" && type !== "checkbox" && type !== "button" && type !== "submit";
  }

  function setUp() {
    var form = document.getElementById("verdict-form");
    var next = document.getElementById("inbox-next");
    var audio = document.getElementById("player-audio");
    var section = document.getElementById("player");
    var analysis = null;
    if (section && section.getAttribute("data-analysis")) {
      try {
        analysis = JSON.parse(section.getAttribute("data-analysis"));
      } catch (e) {
        analysis = null;
      }
    }
    var canvas = document.getElementById("player-waveform");
    var rateText = document.getElementById("player-rate");
    var skip = document.getElementById("player-skip");
    var lang = document.documentElement.lang || undefined;

    function duration() {
      if (audio && isFinite(audio.duration) && audio.duration > 0) return audio.duration;
      return analysis ? analysis.duration_ms / 1000 : 0;
    }

    function seek(seconds) {
      if (!audio) return;
      var end = duration();
      audio.currentTime = Math.max(0, end > 0 ? Math.min(seconds, end) : seconds);
      draw();
    }

    function togglePlay() {
      if (!audio) return;
      if (audio.paused) {
        var playing = audio.play();
        if (playing && playing.catch) playing.catch(function () {});
      } else {
        audio.pause();
      }
    }

    function showRate() {
      if (rateText && audio) rateText.textContent = audio.playbackRate.toLocaleString(lang) + "×";
    }

    function nextRate() {
      if (!audio) return;
      var index = RATES.indexOf(audio.playbackRate);
      audio.playbackRate = RATES[(index + 1) % RATES.length];
      showRate();
    }

    function lastMinutes() {
      seek(Math.max(0, duration() - LAST_S));
      togglePlayIfPaused();
    }

    function togglePlayIfPaused() {
      if (audio && audio.paused) togglePlay();
    }

    // The start of the speech after `t`, if `t` is in a silence worth skipping.
    function speechAfterSilence(t) {
      if (!analysis || !analysis.speech) return null;
      var segments = analysis.speech;
      for (var i = 0; i < segments.length; i++) {
        var start = segments[i].start_ms / 1000;
        var end = segments[i].end_ms / 1000;
        if (t < start) return start - t >= MIN_SKIP_S ? start : null;
        if (t <= end) return null;
      }
      return null;
    }

    function draw() {
      if (!canvas || !analysis) return;
      var context = canvas.getContext("2d");
      if (!context) return;
      var width = canvas.width;
      var height = canvas.height;
      var total = analysis.duration_ms || 1;
      context.clearRect(0, 0, width, height);
      context.fillStyle = "#dbe8f6";
      analysis.speech.forEach(function (segment) {
        var x = (segment.start_ms / total) * width;
        var w = Math.max(1, ((segment.end_ms - segment.start_ms) / total) * width);
        context.fillRect(x, 0, w, height);
      });
      var columns = analysis.waveform.length || 1;
      var barWidth = width / columns;
      context.fillStyle = "#2f6db5";
      analysis.waveform.forEach(function (level, i) {
        var h = Math.max(1, (level / 255) * (height - 4));
        context.fillRect(i * barWidth, (height - h) / 2, Math.max(1, barWidth - 0.5), h);
      });
      if (audio) {
        var x = (audio.currentTime / (total / 1000)) * width;
        context.fillStyle = "#c43d4b";
        context.fillRect(Math.min(width - 2, x), 0, 2, height);
      }
    }

    if (audio) {
      audio.addEventListener("timeupdate", function () {
        if (skip && skip.checked && !audio.paused) {
          var to = speechAfterSilence(audio.currentTime);
          if (to !== null) audio.currentTime = to;
        }
        draw();
      });
      audio.addEventListener("seeked", draw);
      audio.addEventListener("loadedmetadata", draw);
    }
    if (canvas) {
      canvas.addEventListener("click", function (event) {
        var box = canvas.getBoundingClientRect();
        if (box.width > 0) seek(((event.clientX - box.left) / box.width) * duration());
      });
      draw();
    }

    document.addEventListener("click", function (event) {
      var button = event.target.closest && event.target.closest("button[data-player]");
      if (!button) return;
      var what = button.getAttribute("data-player");
      if (what === "play") togglePlay();
      else if (what === "back") seek((audio ? audio.currentTime : 0) - STEP_S);
      else if (what === "forward") seek((audio ? audio.currentTime : 0) + STEP_S);
      else if (what === "speed") nextRate();
      else if (what === "end") lastMinutes();
    });

    function choose(value) {
      if (!form) return;
      var radio = form.querySelector('input[name="correct"][value="' + value + '"]');
      if (radio) {
        radio.checked = true;
        form.setAttribute("data-dirty", "1");
      }
    }

    function submit() {
      if (!form) return;
      if (form.requestSubmit) form.requestSubmit();
      else form.submit();
    }

    document.addEventListener("keydown", function (event) {
      if (event.altKey || event.metaKey || event.isComposing) return;
      var target = event.target;
      if (typing(target)) {
        // Ctrl+Enter saves from the comment; everything else there is typing.
        var enter = event.code === "Enter" || event.code === "NumpadEnter";
        if (event.ctrlKey && enter && target.tagName === "TEXTAREA") {
          event.preventDefault();
          submit();
        }
        return;
      }
      if (event.ctrlKey) return;
      var onControl = target && (target.tagName === "A" || target.tagName === "BUTTON");
      var handled = true;
      switch (event.code) {
        case "Space":
          togglePlay();
          break;
        case "ArrowLeft":
          seek((audio ? audio.currentTime : 0) - STEP_S);
          break;
        case "ArrowRight":
          seek((audio ? audio.currentTime : 0) + STEP_S);
          break;
        case "KeyS":
          nextRate();
          break;
        case "KeyT":
          if (skip) skip.checked = !skip.checked;
          break;
        case "KeyE":
          lastMinutes();
          break;
        case "Digit1":
        case "Numpad1":
          choose("yes");
          break;
        case "Digit2":
        case "Numpad2":
          choose("no");
          break;
        case "Enter":
        case "NumpadEnter":
          // A focused link or button does what it says.
          if (onControl) handled = false;
          else submit();
          break;
        case "KeyN":
          if (next) window.location.assign(next.getAttribute("href"));
          break;
        default:
          handled = false;
      }
      if (handled) event.preventDefault();
    });
    showRate();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
