/* Rightsflow portal: progressive enhancement only; every page works without it.
   Loaded under CSP script-src 'self': no eval, no inline handlers. */
(function () {
  'use strict';

  /* ---- a) Remember the visitor's time zone in the rf_tz cookie ---- */
  var TZ_COOKIE = 'rf_tz';
  var TZ_PATTERN = /^[A-Za-z_+\-\/0-9]{1,64}$/;

  function readCookie(name) {
    var parts = document.cookie ? document.cookie.split(';') : [];
    for (var i = 0; i < parts.length; i++) {
      var part = parts[i].trim();
      if (part.indexOf(name + '=') === 0) {
        return part.slice(name.length + 1);
      }
    }
    return null;
  }

  function rememberTimeZone() {
    if (readCookie(TZ_COOKIE) !== null) return;
    var tz = '';
    try {
      tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    } catch (e) {
      return;
    }
    if (typeof tz !== 'string' || tz === '' || !TZ_PATTERN.test(tz)) return;
    document.cookie = TZ_COOKIE + '=' + encodeURIComponent(tz) +
      '; path=/; max-age=31536000; SameSite=Lax';
    // Reload once, and only if the cookie really stuck (no loop when cookies are blocked).
    var body = document.body;
    if (body && body.getAttribute('data-tz-reload') === '1' && readCookie(TZ_COOKIE) !== null) {
      window.location.reload();
    }
  }

  /* ---- b) Countdown on "resend code" buttons ---- */
  function startCountdown(button) {
    var seconds = parseInt(button.getAttribute('data-resend-after'), 10);
    if (!(seconds > 0)) return;
    var originalText = button.textContent;
    var label = button.getAttribute('data-countdown-label');
    var endsAt = Date.now() + seconds * 1000;
    var timer = null;

    function render(left) {
      button.textContent = label ? label.split('{s}').join(String(left)) : originalText;
    }

    function tick() {
      var left = Math.ceil((endsAt - Date.now()) / 1000);
      if (left <= 0) {
        window.clearInterval(timer);
        button.disabled = false;
        button.removeAttribute('aria-disabled');
        button.textContent = originalText;
        return;
      }
      render(left);
    }

    button.disabled = true;
    button.setAttribute('aria-disabled', 'true');
    render(seconds);
    timer = window.setInterval(tick, 1000);
  }

  function init() {
    rememberTimeZone();
    var buttons = document.querySelectorAll('button[data-resend-after]');
    for (var i = 0; i < buttons.length; i++) startCountdown(buttons[i]);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
