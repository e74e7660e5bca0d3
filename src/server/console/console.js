// The poortwachter console's only script: small enhancements. Every page works without it
// (served from /ui/static/console.js under a CSP that allows no inline script).
(function () {
  'use strict';
  var lang = document.documentElement.lang === 'nl' ? 'nl-NL' : 'en-GB';

  // Times are shown in UTC; hovering one shows it in the browser's own time zone.
  document.querySelectorAll('time[datetime]').forEach(function (el) {
    var d = new Date(el.getAttribute('datetime'));
    if (!isNaN(d.getTime())) {
      el.title = d.toLocaleString(lang, { timeZoneName: 'short' });
    }
  });

  // Copy buttons (hidden without this script).
  document.querySelectorAll('button.copy[data-copy]').forEach(function (b) {
    if (!navigator.clipboard) return;
    b.hidden = false;
    b.addEventListener('click', function () {
      navigator.clipboard.writeText(b.getAttribute('data-copy')).then(function () {
        var text = b.textContent;
        b.textContent = b.getAttribute('data-done');
        setTimeout(function () { b.textContent = text; }, 1500);
      });
    });
  });

  // Forms that ask before they are sent (ending a token).
  document.querySelectorAll('form[data-confirm]').forEach(function (f) {
    f.addEventListener('submit', function (e) {
      if (!window.confirm(f.getAttribute('data-confirm'))) {
        e.preventDefault();
      }
    });
  });
})();
